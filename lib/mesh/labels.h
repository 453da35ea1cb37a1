/* mesh/labels.h — which workload an address belongs to (`--labels MAP`).
 *
 * A map file has one entry a line: `IP:PORT namespace/deployment[/pod]` or
 * `IP namespace/deployment[/pod]` (any port); IPv6 as `[::1]:80` or `::1`;
 * `#` starts a comment. Lookups try IP:PORT first, then the IP alone. The
 * map owns its strings; the labels returned stay valid until it is freed.
 */
#ifndef MESH_LABELS_H
#define MESH_LABELS_H

#include <stddef.h>

#include "mesh/evt.h"

struct mesh_labelmap;

/* Loads |path|. Returns 0, MESH_EIO (cannot read) or MESH_EFORMAT (bad line);
 * on failure |err| holds "PATH:LINE: problem". */
int mesh_labelmap_load(const char *path, struct mesh_labelmap **out, char *err, size_t errlen);
/* |ip| is the printable address (no brackets). NULL when nothing matches. */
const struct mesh_labels *mesh_labelmap_find(const struct mesh_labelmap *map, const char *ip,
                                             unsigned port);
void mesh_labelmap_free(struct mesh_labelmap *map);

#endif
