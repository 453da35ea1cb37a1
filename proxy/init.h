/* proxy/init.h — `mesh init`: the iptables NAT rules of a Linkerd-style
 * proxy-init, so that a transparent mesh-proxy gets every TCP connection of
 * its pod without the application knowing.
 *
 * mesh_init_plan() is the whole policy and does no I/O (testable, and what
 * --dry-run prints); mesh_init_main() reads the current rules with
 * iptables-save, runs the plan's commands one by one (no shell) and logs the
 * rules before and after. Only the network namespace it runs in is touched.
 */
#ifndef MESH_INIT_H
#define MESH_INIT_H

#include "mesh/buf.h"

struct mesh_init_cfg {
    unsigned inbound_port, outbound_port; /* 4143, 4140 */
    unsigned proxy_uid;                   /* 2102: its traffic leaves untouched */
    const char *inbound_ignore_ports;     /* "4190,4191", ranges "A-B"; NULL: none */
    const char *outbound_ignore_ports;
    const char *inbound_ignore_subnets;   /* "10.0.0.0/8,fd00::/8" (source); NULL: none */
    const char *outbound_ignore_subnets;  /* (destination) */
    const char *mode;                     /* NULL ("iptables"), "nft" or "legacy" */
};

/* The commands for |family| (4: iptables, 6: ip6tables), one per line with
 * arguments separated by single spaces, appended to |out|. |saved| is what
 * `iptables-save -t nat` printed (NULL: a namespace without rules): chains
 * that exist are flushed instead of created and hooks that exist are kept,
 * so running the plan again changes nothing. 0, or MESH_EINVAL with one line
 * in |err| naming a bad port or subnet. */
int mesh_init_plan(const struct mesh_init_cfg *cfg, int family, const char *saved,
                   struct mesh_buf *out, char *err, size_t errlen);

/* `mesh init ARGS` (argv[0] is "init"): an exit status. */
int mesh_init_main(int argc, char **argv);

#endif
