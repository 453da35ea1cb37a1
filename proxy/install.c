/* proxy/install.c — `mesh install` (contract in install.h).
 *
 * The collector listens on all addresses in its pod (the default is
 * loopback only), keeps its store on an emptyDir (tap data is recent by
 * nature; retention bounds it), runs as a non-root user, and its pod is
 * annotated mesh.io/inject: disabled: its own traffic is the tap stream.
 */
#include "install.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "mesh/err.h"

int mesh_install_render(const char *ns, const char *image, struct mesh_buf *out)
{
    return mesh_buf_printf(
        out,
        "---\n"
        "apiVersion: v1\n"
        "kind: Namespace\n"
        "metadata:\n"
        "  name: %1$s\n"
        "  annotations:\n"
        "    mesh.io/inject: disabled\n"
        "---\n"
        "apiVersion: v1\n"
        "kind: ServiceAccount\n"
        "metadata:\n"
        "  name: mesh-collector\n"
        "  namespace: %1$s\n"
        "  labels:\n"
        "    app.kubernetes.io/name: mesh-collector\n"
        "    app.kubernetes.io/part-of: mesh\n"
        "---\n"
        "apiVersion: v1\n"
        "kind: Service\n"
        "metadata:\n"
        "  name: mesh-collector\n"
        "  namespace: %1$s\n"
        "  labels:\n"
        "    app.kubernetes.io/name: mesh-collector\n"
        "    app.kubernetes.io/part-of: mesh\n"
        "spec:\n"
        "  type: ClusterIP\n"
        "  selector:\n"
        "    app.kubernetes.io/name: mesh-collector\n"
        "  ports:\n"
        "  - name: grpc\n"
        "    port: 8088\n"
        "    targetPort: 8088\n"
        "    appProtocol: kubernetes.io/h2c\n"
        "---\n"
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata:\n"
        "  name: mesh-collector\n"
        "  namespace: %1$s\n"
        "  labels:\n"
        "    app.kubernetes.io/name: mesh-collector\n"
        "    app.kubernetes.io/part-of: mesh\n"
        "spec:\n"
        "  replicas: 1\n"
        "  strategy:\n"
        "    type: Recreate\n"
        "  selector:\n"
        "    matchLabels:\n"
        "      app.kubernetes.io/name: mesh-collector\n"
        "  template:\n"
        "    metadata:\n"
        "      labels:\n"
        "        app.kubernetes.io/name: mesh-collector\n"
        "        app.kubernetes.io/part-of: mesh\n"
        "      annotations:\n"
        "        mesh.io/inject: disabled\n"
        "    spec:\n"
        "      serviceAccountName: mesh-collector\n"
        "      securityContext:\n"
        "        runAsNonRoot: true\n"
        "        runAsUser: 2103\n"
        "        fsGroup: 2103\n"
        "      containers:\n"
        "      - name: collector\n"
        "        image: %2$s\n"
        "        command:\n"
        "        - mesh\n"
        "        args:\n"
        "        - collector\n"
        "        - --listen\n"
        "        - 0.0.0.0:8088\n"
        "        - --db\n"
        "        - /var/lib/mesh/mesh.db\n"
        "        - --retention\n"
        "        - 6h\n"
        "        # the pod network reaches it without a token: guard it with a\n"
        "        # NetworkPolicy, or give it --token-file from a Secret\n"
        "        - --no-auth\n"
        "        ports:\n"
        "        - name: grpc\n"
        "          containerPort: 8088\n"
        "        readinessProbe:\n"
        "          tcpSocket:\n"
        "            port: 8088\n"
        "        livenessProbe:\n"
        "          tcpSocket:\n"
        "            port: 8088\n"
        "        resources:\n"
        "          requests:\n"
        "            cpu: 100m\n"
        "            memory: 64Mi\n"
        "          limits:\n"
        "            memory: 256Mi\n"
        "        securityContext:\n"
        "          allowPrivilegeEscalation: false\n"
        "          readOnlyRootFilesystem: true\n"
        "          capabilities:\n"
        "            drop:\n"
        "            - ALL\n"
        "        volumeMounts:\n"
        "        - name: store\n"
        "          mountPath: /var/lib/mesh\n"
        "      volumes:\n"
        "      - name: store\n"
        "        emptyDir: {}\n",
        ns, image);
}

static const char USAGE[] =
    "Usage: mesh install [--namespace NS] [--image IMAGE]\n"
    "\n"
    "Prints the Kubernetes manifests of the collector (Namespace, ServiceAccount,\n"
    "Service, Deployment). Sidecars added by `mesh inject` send their tap events to\n"
    "mesh-collector.NS.svc.cluster.local:8088.\n"
    "\n"
    "Options:\n"
    "  -n, --namespace NS   [mesh]\n"
    "      --image IMAGE    [ghcr.io/mesh/mesh:0.1.0]\n"
    "  -h, --help\n"
    "\n"
    "Examples:\n"
    "  mesh install | kubectl apply -f -\n"
    "  mesh inject app.yml | kubectl apply -f -\n";

/* A DNS-1123 label, as a namespace name must be. */
static int dns_label(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

int mesh_install_main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"namespace", required_argument, NULL, 'n'},
        {"image", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *ns = "mesh", *image = "ghcr.io/mesh/mesh:0.1.0";
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "hn:", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'h': fputs(USAGE, stdout); return MESH_EXIT_OK;
        case 'n': ns = optarg; break;
        case 'i': image = optarg; break;
        default:
            fprintf(stderr, "mesh install: %s: %s (see mesh install --help)\n",
                    argv[optind - 1], optopt ? "needs a value" : "unknown option");
            return MESH_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mesh install: %s: unexpected argument\n", argv[optind]);
        return MESH_EXIT_USAGE;
    }
    if (!dns_label(ns)) {
        fprintf(stderr, "mesh install: --namespace %s: not a DNS label (a-z, 0-9, -)\n", ns);
        return MESH_EXIT_USAGE;
    }
    if (*image == 0 || strpbrk(image, " \t\n\"'#") != NULL) {
        fprintf(stderr, "mesh install: --image %s: not an image reference\n", image);
        return MESH_EXIT_USAGE;
    }
    struct mesh_buf out;
    mesh_buf_init(&out, 1u << 20);
    int rv = mesh_install_render(ns, image, &out);
    if (rv == 0)
        fwrite(out.data, 1, out.len, stdout);
    mesh_buf_free(&out);
    if (rv != 0 || fflush(stdout) != 0) {
        fprintf(stderr, "mesh install: cannot write the manifests\n");
        return MESH_EXIT_RUNTIME;
    }
    return MESH_EXIT_OK;
}
