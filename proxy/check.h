/* proxy/check.h — `mesh check [--pre]`: the pre-flight and health checks,
 * in groups of ✓/× lines with a hint under each failure, as `linkerd check`.
 *
 * --pre asks "can the mesh run here?": kernel and iptables, the NET_ADMIN and
 * NET_RAW capabilities `mesh init` needs, the proxy's ports free, the
 * collector reachable, the store writable. Without --pre the ports must be
 * taken instead and every proxy admin endpoint must answer /ready. Exit
 * status 1 when any check fails, 2 for bad usage.
 */
#ifndef MESH_CHECK_H
#define MESH_CHECK_H

/* `mesh check ARGS` (argv[0] is "check"): an exit status. */
int mesh_check_main(int argc, char **argv);

#endif
