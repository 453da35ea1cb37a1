/* proxy/install.h — `mesh install`: the collector's Kubernetes manifests
 * (Namespace, ServiceAccount, Service, Deployment) on stdout, so that
 * `mesh install | kubectl apply -f -` sets up what `mesh inject`'s sidecars
 * send their tap events to. Text only: nothing here talks to a cluster.
 */
#ifndef MESH_INSTALL_H
#define MESH_INSTALL_H

#include "mesh/buf.h"

/* The manifests for namespace |ns| and image |image|, appended to |out|. */
int mesh_install_render(const char *ns, const char *image, struct mesh_buf *out);

/* `mesh install ARGS` (argv[0] is "install"): an exit status. */
int mesh_install_main(int argc, char **argv);

#endif
