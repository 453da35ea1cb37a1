/* demo/demo.h — `mesh demo`: the emojivoto demo, meshed, on one machine.
 *
 * mesh_demo_main() starts a collector and four workloads (emoji, voting, web, vote-bot),
 * each behind its own mesh-proxy, as child processes of its own, and stops every one of
 * them when it ends (duration, Ctrl-C, SIGTERM; if it is killed, PR_SET_PDEATHSIG does).
 * The workloads are hidden subcommands of `mesh` (mesh_demo_app_main). While it runs, a
 * state file names its collector so that `mesh stat` in another terminal finds it with no
 * flags: mesh_demo_collector() reads it, ignoring a file whose demo is gone.
 */
#ifndef MESH_DEMO_H
#define MESH_DEMO_H

#include <stddef.h>

/* `mesh demo [--duration D] [--db FILE] [--rate N]`; |argv0| is how mesh was called,
 * to print commands the user can paste. Returns an exit status. */
int mesh_demo_main(int argc, char **argv, const char *argv0);
/* `mesh demo-app emoji|voting|web|vote-bot [options]`. Returns an exit status. */
int mesh_demo_app_main(int argc, char **argv);

/* The state file: $XDG_RUNTIME_DIR/mesh/demo.addr, else /tmp/mesh-demo-UID.addr. */
void mesh_demo_state_path(char *buf, size_t len);
/* The running demo's collector ("127.0.0.1:8088") into |buf|: 0, or -1 when no demo runs. */
int mesh_demo_collector(char *buf, size_t len);

#endif
