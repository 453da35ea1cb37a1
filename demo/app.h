/* demo/app.h — what the demo's workloads share: how each runs, and a blocking HTTP client.
 *
 * Each workload is a `mesh demo-app NAME` process with one mesh_loop that stops on
 * SIGTERM/SIGINT, and prints one line "NAME: ready …" on stderr once it serves, which
 * `mesh demo` waits for. demo_http_get() is for the vote bot and the demo's readiness
 * checks: one request on a kept-alive connection, bounded by a timeout and a body cap.
 */
#ifndef MESH_DEMO_APP_H
#define MESH_DEMO_APP_H

#include "mesh/buf.h"
#include "mesh/loop.h"

int demo_emoji_main(int argc, char **argv);
int demo_voting_main(int argc, char **argv);
int demo_web_main(int argc, char **argv);
int demo_votebot_main(int argc, char **argv);

/* One line "demo-app NAME: WHAT: WHY" on stderr; returns 2 (usage). */
int demo_usage_error(const char *name, const char *what, const char *why);
/* Runs |loop| until SIGTERM or SIGINT. Returns 0, or 1 if the loop failed. */
int demo_run_loop(struct mesh_loop *loop);

/* GET |target| from |addr| ("127.0.0.1:8080") with Host |host|. |*fd| is a connection
 * kept from the last call or -1; it is left open for the next one, or -1 after a
 * failure or "Connection: close". Returns the HTTP status with the body in |body|
 * (reset first), or a negative MESH_E* with one line in |err|. */
int demo_http_get(int *fd, const char *addr, const char *host, const char *target,
                  struct mesh_buf *body, unsigned timeout_ms, char *err, size_t errlen);

#endif
