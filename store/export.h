/* store/export.h — `mesh replay FILE… --db PATH` and `--collector ADDR`.
 *
 * Runs a source (captures) and, instead of printing, writes its events into
 * a store directly (batches of 1000, one transaction each) or sends them to
 * a collector as a proxy would (Collector.Report, acknowledged batches,
 * resent after a reconnect). Both return an exit status and print one line
 * per problem on stderr.
 */
#ifndef MESH_EXPORT_H
#define MESH_EXPORT_H

#include "mesh/source.h"

int mesh_export_db(const struct mesh_source *src, const char *prog, const char *path);
/* Gives up when the collector acknowledges nothing for |patience_ms|. */
int mesh_export_collector(const struct mesh_source *src, const char *prog, const char *addr,
                          unsigned patience_ms);

#endif
