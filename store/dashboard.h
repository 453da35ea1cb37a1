/* store/dashboard.h — `mesh dashboard`: the web dashboard, a client of a collector.
 *
 * Serves dashboards/web/ (plain HTML, CSS, JS) and JSON over the collector's Query
 * service: GET /api/stat (Stat rows: namespaces, deployments), /api/top (a deployment's
 * paths), and server-sent events: /api/live (every deployment's stat, pushed every 2 s
 * from one shared query) and /api/tap (a deployment's live requests, one Watch per page).
 * Every query is asynchronous on one loop, so a slow collector stalls no page; an
 * unreachable one is reported in the answers, and the next query connects again.
 * Runs until SIGINT/SIGTERM.
 */
#ifndef MESH_DASHBOARD_H
#define MESH_DASHBOARD_H

/* `mesh dashboard [--address A] [--port P] [--collector ADDR] [--assets DIR] [-t 1m]`;
 * |default_collector| is used without --collector (the CLI's lookup). Returns an exit
 * status: 2 for bad usage, 1 when it cannot serve. */
int mesh_dashboard_main(int argc, char **argv, const char *default_collector);

#endif
