#include "mesh/source.h"

#include <stdio.h>

#include "mesh/err.h"
#include "mesh/labels.h"
#include "replay.h"

static void print_summary(const char *path, const struct mesh_replay_stats *s)
{
    fprintf(stderr,
            "%s: %llu packets, %llu flows (%llu http/1, %llu h2, %llu opaque, %llu began "
            "mid-connection), %llu requests (%llu incomplete, %llu not decodable), "
            "%llu undecodable directions, %llu gaps (%llu bytes), %llu expired flows, "
            "%llu packets skipped\n",
            path, (unsigned long long)s->packets, (unsigned long long)s->flows,
            (unsigned long long)s->flows_h1, (unsigned long long)s->flows_h2,
            (unsigned long long)s->flows_opaque, (unsigned long long)s->flows_midstream,
            (unsigned long long)s->requests, (unsigned long long)s->incomplete,
            (unsigned long long)s->dropped, (unsigned long long)s->undecodable,
            (unsigned long long)s->reasm.gaps, (unsigned long long)s->reasm.gap_bytes,
            (unsigned long long)s->expired, (unsigned long long)s->skipped);
}

int mesh_source_run(const struct mesh_source *src, const char *prog, mesh_source_cb cb, void *ctx)
{
    struct mesh_labelmap *labels = NULL;
    char err[512];
    if (src->nfiles == 0) {
        fprintf(stderr, "mesh %s: no input: give a capture with --pcap FILE\n", prog);
        return MESH_EXIT_USAGE;
    }
    if (src->labels_path != NULL &&
        mesh_labelmap_load(src->labels_path, &labels, err, sizeof(err)) != 0) {
        fprintf(stderr, "mesh %s: %s\n", prog, err);
        return MESH_EXIT_USAGE;
    }
    struct mesh_replay *rp = mesh_replay_new(labels, &src->headers, cb, ctx);
    if (rp == NULL) {
        fprintf(stderr, "mesh %s: out of memory\n", prog);
        mesh_labelmap_free(labels);
        return MESH_EXIT_RUNTIME;
    }
    int status = MESH_EXIT_OK;
    for (size_t i = 0; i < src->nfiles && status == MESH_EXIT_OK; i++) {
        const char *desc = NULL;
        int rv = mesh_replay_file(rp, src->files[i], &desc);
        if (src->summary)
            print_summary(src->files[i], mesh_replay_stats(rp));
        if (rv != 0) {
            fprintf(stderr, "mesh %s: %s: %s\n", prog, src->files[i],
                    desc ? desc : mesh_strerror(rv));
            status = MESH_EXIT_USAGE;
        }
    }
    mesh_replay_free(rp);
    mesh_labelmap_free(labels);
    return status;
}
