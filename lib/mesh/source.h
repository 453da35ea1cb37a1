/* mesh/source.h — events from captures (--pcap, `mesh replay FILE…`).
 *
 * Runs one or more captures, with an optional label map, through a callback.
 * Stores (--db) and collectors (--collector) answer the views' queries
 * themselves (store/remote.h): the views print the same rows from any of the
 * three.
 */
#ifndef MESH_SOURCE_H
#define MESH_SOURCE_H

#include <stddef.h>

#include "mesh/evt.h"
#include "mesh/hdrcap.h"

#define MESH_SOURCE_MAX_FILES 4096

struct mesh_source {
    const char *files[MESH_SOURCE_MAX_FILES];
    size_t nfiles;
    const char *labels_path;    /* NULL: none */
    struct mesh_hdr_sel headers; /* --tap-header, --redact-header: none by default */
    int summary;                /* print the replay summary on stderr */
};

typedef void (*mesh_source_cb)(void *ctx, const struct mesh_evt *evt);

/* Runs the source to its end, calling |cb| per event. Errors are printed on
 * stderr as one line naming |prog| and the input. Returns an exit status:
 * MESH_EXIT_OK, MESH_EXIT_USAGE (bad or unreadable input) or
 * MESH_EXIT_RUNTIME. Events read before an error have been delivered. */
int mesh_source_run(const struct mesh_source *src, const char *prog, mesh_source_cb cb, void *ctx);

#endif
