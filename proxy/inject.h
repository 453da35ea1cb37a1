/* proxy/inject.h — `mesh inject`: adds the mesh to Kubernetes workloads, as
 * `linkerd inject` does, editing the user's YAML text rather than rewriting it.
 *
 * mesh_inject() does no I/O: bytes in, bytes out, one note per resource. It
 * parses with libyaml only to learn where things are (event marks), then
 * splices new text at those places, so comments, key order, quoting and
 * blank lines stay byte-for-byte. Injecting its own output changes nothing.
 */
#ifndef MESH_INJECT_H
#define MESH_INJECT_H

#include <stddef.h>

#include "mesh/buf.h"

struct mesh_inject_opts {
    const char *image;     /* the mesh image: `mesh init` and `mesh-proxy` */
    const char *collector; /* what the sidecars' MESH_COLLECTOR says */
    unsigned proxy_uid;    /* 2102 */
};

/* Injects every Deployment, StatefulSet, DaemonSet, Job and Pod of |in|
 * (|len| bytes, any number of documents, Lists looked into) and appends the
 * result to |out|; one line per resource to |notes| ("deployment/web
 * injected", "service/web-svc passed through: …"). 0; MESH_EFORMAT with
 * "LINE:COL: problem" in |err| when |in| is not YAML (|out| untouched);
 * MESH_ENOMEM / MESH_ETOOBIG when |out| cannot hold the result. */
int mesh_inject(const struct mesh_inject_opts *opts, const char *in, size_t len,
                struct mesh_buf *out, struct mesh_buf *notes, char *err, size_t errlen);

/* `mesh inject FILE|-` (argv[0] is "inject"): an exit status. */
int mesh_inject_main(int argc, char **argv);

#endif
