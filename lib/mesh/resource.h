/* mesh/resource.h — Linkerd-style resources and how events group under them.
 *
 * A resource is TYPE/NAME or TYPE (every NAME of the type): ns/emojivoto,
 * deploy/web, deploy, po/web-0, au/web.emojivoto:80. Types accept Linkerd's
 * spellings (ns, namespace(s); deploy, deployment(s); po, pod(s); au,
 * authority). Matching reads an event's labels (or authority) on one side:
 * rows are keyed by the destination, or by the source when `--to` is given.
 */
#ifndef MESH_RESOURCE_H
#define MESH_RESOURCE_H

#include <stddef.h>

#include "mesh/evt.h"

enum mesh_rtype { MESH_RT_NONE = 0, MESH_RT_NS, MESH_RT_DEPLOY, MESH_RT_POD, MESH_RT_AUTH };

struct mesh_resource {
    enum mesh_rtype type;
    const char *name;       /* NULL = every resource of the type; borrowed */
    const char *ns;         /* namespace restriction, NULL = any; borrowed */
};

enum mesh_rtype mesh_rtype_parse(const char *word);
const char *mesh_rtype_name(enum mesh_rtype type); /* "ns", "deploy", "po", "au" */
/* Parses "TYPE/NAME" or "TYPE" (|arg| is modified: the slash becomes NUL).
 * Returns 0 or MESH_EINVAL with *err_desc set. */
int mesh_resource_parse(char *arg, struct mesh_resource *res, const char **err_desc);

/* The name of the resource of type |type| that |evt| belongs to on the
 * destination side (|src_side| = 0) or the source side (1); NULL when the
 * event carries no such label. */
const char *mesh_resource_of(const struct mesh_evt *evt, enum mesh_rtype type, int src_side);
/* 1 when |evt| belongs to |res| on the given side. */
int mesh_resource_match(const struct mesh_resource *res, const struct mesh_evt *evt, int src_side);

#endif
