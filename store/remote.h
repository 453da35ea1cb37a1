/* store/remote.h — stat, top and tap over a store (--db) or a collector
 * (--collector): the same rows and lines as over a capture, from
 * mesh_store_stat/top/events or from Query.Stat/Top/Watch.
 *
 * A window is the last |last_us| before now, or [since_us, until_us) (0 =
 * open end). Each function prints its output and returns an exit status,
 * with one line on stderr per problem.
 */
#ifndef MESH_REMOTE_H
#define MESH_REMOTE_H

#include <stdint.h>

#include "stat/stat.h"
#include "tap/tap.h"
#include "top/top.h"

struct mesh_remote {
    const char *db;             /* a store file, or */
    const char *collector;      /* a collector address */
    uint64_t last_us, since_us, until_us;
};

int mesh_remote_stat(const struct mesh_remote *rm, const char *prog,
                     const struct mesh_stat_opts *opts);
int mesh_remote_top(const struct mesh_remote *rm, const char *prog,
                    const struct mesh_top_opts *opts);
/* Over a store: the window's events, oldest first. Over a collector: live
 * events (Query.Watch) until the stream ends or SIGINT/SIGTERM. */
int mesh_remote_tap(const struct mesh_remote *rm, const char *prog, struct mesh_tap *tap);

#endif
