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

#include <stddef.h>
#include <stdint.h>

struct mesh_store;

/* What Collector.Report does with one ReportRequest message (|len| bytes),
 * without the gRPC call and the batching: decodes it with the collector's
 * wire reader and stores it as one batch (mesh_store_ingest). For tests and
 * fuzzers (tests/fuzz/fuzz_report.c). 0, MESH_EPROTO (not a ReportRequest
 * with sender_id and seq), MESH_ENOMEM, or the store's error. */
int mesh_collector_ingest_report(struct mesh_store *st, const uint8_t *msg, size_t len,
                                 size_t *stored, int *duplicate);

/* Runs `mesh collector ARGS…` (argv[0] is "collector"). Returns an exit status. */
int mesh_collector_main(int argc, char **argv);

#endif
