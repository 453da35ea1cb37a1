/* store/collector.h — `mesh collector`: gRPC ingest and queries over the store.
 *
 * One process, one event loop: Collector.Report batches are collected as they
 * arrive and committed together in the loop's before-sleep hook (one
 * transaction per loop iteration: per batch, or per few milliseconds under
 * load), and each batch is acknowledged only after its commit. Query.Stat and
 * Query.Top read the store; Query.Watch streams committed events to
 * subscribers, each behind its own bounded send queue, so a slow one misses
 * events (and is told how many) instead of slowing ingest.
 */
#ifndef MESH_COLLECTOR_H
#define MESH_COLLECTOR_H

/* Runs `mesh collector ARGS…` (argv[0] is "collector"). Returns an exit status. */
int mesh_collector_main(int argc, char **argv);

#endif
