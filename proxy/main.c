/* proxy/main.c — the mesh-proxy binary: options (each also from the
 * environment, as a Kubernetes downward API supplies them), signals, the loop.
 * Everything else is in the mesh_proxy library (proxy.h).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/err.h"
#include "mesh/fmt.h"
#include "mesh/grpc.h"
#include "mesh/tapsend.h"
#include "proxy.h"

#define MAX_ROUTES 4096
#define MAX_ROUTE_FILE (4u << 20)

static const char USAGE[] =
    "Usage: mesh-proxy [options]\n"
    "\n"
    "The mesh sidecar: forwards HTTP/1.1, HTTP/2, gRPC and TCP, and sends one tap\n"
    "event per request to a collector. The protocol of each connection is detected\n"
    "from its first bytes. Every option can also come from the environment variable\n"
    "named after it.\n"
    "\n"
    "Listeners (an address of \"off\" turns one off):\n"
    "      --inbound ADDR         inbound listener [MESH_PROXY_INBOUND, 0.0.0.0:4143]\n"
    "      --inbound-to HOST:PORT the application; inbound is off without it\n"
    "                             [MESH_PROXY_INBOUND_TO]\n"
    "      --outbound ADDR        outbound listener [MESH_PROXY_OUTBOUND, 127.0.0.1:4140]\n"
    "      --admin ADDR           /metrics, /ready, /live [MESH_PROXY_ADMIN, 0.0.0.0:4191]\n"
    "      --transparent          connections come redirected by `mesh init` (iptables):\n"
    "                             outbound ones go to their original destination when\n"
    "                             no --route names the authority, inbound ones to the\n"
    "                             application on 127.0.0.1 (or ::1) at the original port;\n"
    "                             inbound needs no --inbound-to [MESH_PROXY_TRANSPARENT=1]\n"
    "Outbound routes, keyed by Host / :authority:\n"
    "      --route AUTHORITY=HOST:PORT[,HOST:PORT…][@NAMESPACE/DEPLOYMENT]\n"
    "                             repeatable; several endpoints are balanced (peak-EWMA,\n"
    "                             power of two choices); AUTHORITY \"*\" is the default,\n"
    "                             also for opaque TCP; @NS/DEPLOY labels the destination\n"
    "      --routes FILE          one route per line, # comments [MESH_PROXY_ROUTES]\n"
    "Tap and labels:\n"
    "      --collector ADDR       where tap events go [MESH_COLLECTOR]; without one, tap\n"
    "                             is off and events are only counted\n"
    "      --token-file FILE      send authorization: Bearer TOKEN (the first line of\n"
    "                             FILE) to the collector [MESH_TOKEN_FILE]\n"
    "      --tls-ca FILE          TLS to the collector, its certificate checked against\n"
    "                             the PEM certificates in FILE [MESH_TLS_CA]\n"
    "      --namespace NS         [MESH_NAMESPACE]\n"
    "      --deployment NAME      [MESH_DEPLOYMENT]\n"
    "      --pod NAME             [MESH_POD]\n"
    "      --tap-queue N          unacknowledged batches of 1000 events kept before\n"
    "                             events are dropped and counted [64]\n"
    "      --tap-header NAME[,NAME…]\n"
    "                             request and response headers (and the response's\n"
    "                             trailers) to put in tap events (repeatable; \"*\" is\n"
    "                             all of them); none by default; at most 16 of the\n"
    "                             request's and 16 of the response's per event, values\n"
    "                             cut at 256 bytes\n"
    "                             [MESH_PROXY_TAP_HEADERS]\n"
    "      --redact-header NAME[,NAME…]\n"
    "                             headers sent by name only, never their value: added to\n"
    "                             authorization, cookie, set-cookie, proxy-authorization;\n"
    "                             \"*\" sends every captured header by name only\n"
    "                             [MESH_PROXY_REDACT_HEADERS]\n"
    "Limits:\n"
    "      --max-conns N          accepted connections at once [10000]\n"
    "      --max-header-bytes N   request head / header list; more gets 431 [65536]\n"
    "      --max-streams N        concurrent HTTP/2 streams per connection [256]\n"
    "      --header-timeout D     first byte to complete request head [10s]\n"
    "      --idle-timeout D       a connection with nothing in flight [60s]\n"
    "      --detect-timeout D     silence before a connection is taken as opaque TCP [1s]\n"
    "      --connect-timeout D    upstream connect [3s]\n"
    "      --response-timeout D   from a request sent whole to its response head; then\n"
    "                             504 (gRPC: DEADLINE_EXCEEDED); 0 is none [0]\n"
    "      --drain-timeout D      SIGTERM: finish what is in flight for this long [10s]\n"
    "  -h, --help\n"
    "\n"
    "Examples:\n"
    "  mesh-proxy --inbound-to 127.0.0.1:8080 --namespace emojivoto --deployment web \\\n"
    "      --collector 127.0.0.1:8088\n"
    "  mesh-proxy --outbound 127.0.0.1:4140 --route 'voting-svc:8080=127.0.0.1:8081@emojivoto/voting'\n";

enum {
    OPT_INBOUND = 256, OPT_INBOUND_TO, OPT_OUTBOUND, OPT_ADMIN, OPT_ROUTE, OPT_ROUTES,
    OPT_COLLECTOR, OPT_NAMESPACE, OPT_DEPLOYMENT, OPT_POD, OPT_TAP_QUEUE, OPT_MAX_CONNS,
    OPT_MAX_HEADER, OPT_MAX_STREAMS, OPT_HEADER_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_DETECT_TIMEOUT,
    OPT_CONNECT_TIMEOUT, OPT_RESPONSE_TIMEOUT, OPT_DRAIN_TIMEOUT, OPT_TRANSPARENT, OPT_TOKEN_FILE, OPT_TLS_CA,
    OPT_TAP_HEADER, OPT_REDACT_HEADER,
};

static const struct option LONG_OPTS[] = {
    {"inbound", required_argument, NULL, OPT_INBOUND},
    {"inbound-to", required_argument, NULL, OPT_INBOUND_TO},
    {"outbound", required_argument, NULL, OPT_OUTBOUND},
    {"admin", required_argument, NULL, OPT_ADMIN},
    {"route", required_argument, NULL, OPT_ROUTE},
    {"routes", required_argument, NULL, OPT_ROUTES},
    {"collector", required_argument, NULL, OPT_COLLECTOR},
    {"namespace", required_argument, NULL, OPT_NAMESPACE},
    {"deployment", required_argument, NULL, OPT_DEPLOYMENT},
    {"pod", required_argument, NULL, OPT_POD},
    {"tap-queue", required_argument, NULL, OPT_TAP_QUEUE},
    {"tap-header", required_argument, NULL, OPT_TAP_HEADER},
    {"redact-header", required_argument, NULL, OPT_REDACT_HEADER},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"max-header-bytes", required_argument, NULL, OPT_MAX_HEADER},
    {"max-streams", required_argument, NULL, OPT_MAX_STREAMS},
    {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"detect-timeout", required_argument, NULL, OPT_DETECT_TIMEOUT},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"response-timeout", required_argument, NULL, OPT_RESPONSE_TIMEOUT},
    {"drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT},
    {"transparent", no_argument, NULL, OPT_TRANSPARENT},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The environment variable of each option that has one. */
static const struct {
    int opt;
    const char *env;
} ENV_OPTS[] = {
    {OPT_INBOUND, "MESH_PROXY_INBOUND"},   {OPT_INBOUND_TO, "MESH_PROXY_INBOUND_TO"},
    {OPT_OUTBOUND, "MESH_PROXY_OUTBOUND"}, {OPT_ADMIN, "MESH_PROXY_ADMIN"},
    {OPT_ROUTES, "MESH_PROXY_ROUTES"},     {OPT_COLLECTOR, "MESH_COLLECTOR"},
    {OPT_NAMESPACE, "MESH_NAMESPACE"},     {OPT_DEPLOYMENT, "MESH_DEPLOYMENT"},
    {OPT_POD, "MESH_POD"},                 {OPT_TRANSPARENT, "MESH_PROXY_TRANSPARENT"},
    {OPT_TOKEN_FILE, "MESH_TOKEN_FILE"},   {OPT_TLS_CA, "MESH_TLS_CA"},
    {OPT_TAP_HEADER, "MESH_PROXY_TAP_HEADERS"}, {OPT_REDACT_HEADER, "MESH_PROXY_REDACT_HEADERS"},
};

struct opts {
    struct px_cfg cfg;
    const char *routes_file;
    const char *route_specs[MAX_ROUTES];
    size_t nroute_specs;
    char *routes_text;
    const char *token_file, *tls_ca;
};

static int usage_error(const char *what, const char *why)
{
    fprintf(stderr, "mesh-proxy: %s: %s (see mesh-proxy --help)\n", what, why);
    return MESH_EXIT_USAGE;
}

static int parse_count(const char *name, const char *text, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    uint64_t mult = 1;
    if (strcmp(end, "k") == 0 || strcmp(end, "KiB") == 0)
        mult = 1024;
    else if (strcmp(end, "M") == 0 || strcmp(end, "MiB") == 0)
        mult = 1024 * 1024;
    else if (*end != 0)
        mult = 0;
    if (errno != 0 || end == text || mult == 0 || v == 0 || text[0] == '-' || v > max / mult) {
        char what[64];
        snprintf(what, sizeof(what), "%s %s", name, text);
        usage_error(what, "expected a positive number in range");
        return -1;
    }
    *out = v * mult;
    return 0;
}

static int parse_ms(const char *name, const char *text, unsigned *out)
{
    uint64_t us;
    if (mesh_parse_duration_us(text, &us) != 0 || us < 1000 || us > 86400ull * 1000000u) {
        char what[64];
        snprintf(what, sizeof(what), "%s %s", name, text);
        usage_error(what, "expected a duration between 1ms and 24h, like 500ms or 10s");
        return -1;
    }
    *out = (unsigned)(us / 1000);
    return 0;
}

/* An address option: "off", or one mesh_addr_parse() takes. */
static int addr_opt(const char *name, const char *text, int may_be_off, const char **out)
{
    char why[200];
    struct mesh_addr addr;
    if (may_be_off && strcmp(text, "off") == 0) {
        *out = NULL;
        return 0;
    }
    if (mesh_addr_parse(text, &addr, why, sizeof(why)) != 0) {
        usage_error(name, why);
        return -1;
    }
    *out = text;
    return 0;
}

/* Applies one option; -1 after printing a usage error. */
static int apply(struct opts *o, int opt, const char *arg)
{
    struct px_cfg *cfg = &o->cfg;
    struct px_limits *lim = &cfg->limits;
    uint64_t n;
    switch (opt) {
    case OPT_INBOUND: return addr_opt("--inbound", arg, 1, &cfg->inbound);
    case OPT_INBOUND_TO: return addr_opt("--inbound-to", arg, 0, &cfg->inbound_to);
    case OPT_OUTBOUND: return addr_opt("--outbound", arg, 1, &cfg->outbound);
    case OPT_ADMIN: return addr_opt("--admin", arg, 1, &cfg->admin);
    case OPT_ROUTES: o->routes_file = arg; return 0;
    case OPT_TOKEN_FILE: o->token_file = *arg ? arg : NULL; return 0;
    case OPT_TLS_CA: o->tls_ca = *arg ? arg : NULL; return 0;
    case OPT_TRANSPARENT:
        /* from the environment: "1"/"true" on, "0"/"false" off */
        if (arg != NULL && strcmp(arg, "1") != 0 && strcmp(arg, "true") != 0 &&
            strcmp(arg, "0") != 0 && strcmp(arg, "false") != 0)
            return usage_error("MESH_PROXY_TRANSPARENT", "expected 1, true, 0 or false"), -1;
        cfg->transparent = arg == NULL || strcmp(arg, "1") == 0 || strcmp(arg, "true") == 0;
        return 0;
    case OPT_COLLECTOR: cfg->collector = *arg ? arg : NULL; return 0;
    case OPT_NAMESPACE: cfg->self.ns = *arg ? arg : NULL; return 0;
    case OPT_DEPLOYMENT: cfg->self.deploy = *arg ? arg : NULL; return 0;
    case OPT_POD: cfg->self.pod = *arg ? arg : NULL; return 0;
    case OPT_ROUTE:
        if (o->nroute_specs == MAX_ROUTES) {
            usage_error("--route", "too many routes");
            return -1;
        }
        o->route_specs[o->nroute_specs++] = arg;
        return 0;
    case OPT_TAP_QUEUE:
        if (parse_count("--tap-queue", arg, 1u << 20, &n) != 0)
            return -1;
        cfg->tap_queue_batches = (size_t)n;
        return 0;
    case OPT_TAP_HEADER:
    case OPT_REDACT_HEADER: {
        const char *why = NULL;
        if (*arg == '\0')
            return 0; /* an empty variable */
        if (mesh_hdr_names_add(opt == OPT_TAP_HEADER ? &cfg->headers.tap : &cfg->headers.redact,
                             arg, &why) != 0) {
            char what[128];
            snprintf(what, sizeof(what), "%s %.100s",
                     opt == OPT_TAP_HEADER ? "--tap-header" : "--redact-header", arg);
            return usage_error(what, why), -1;
        }
        return 0;
    }
    case OPT_MAX_CONNS:
        if (parse_count("--max-conns", arg, 1u << 24, &n) != 0)
            return -1;
        lim->max_conns = (unsigned)n;
        return 0;
    case OPT_MAX_HEADER:
        if (parse_count("--max-header-bytes", arg, 16u << 20, &n) != 0)
            return -1;
        lim->max_header = (size_t)n;
        return 0;
    case OPT_MAX_STREAMS:
        if (parse_count("--max-streams", arg, 1u << 20, &n) != 0)
            return -1;
        lim->max_streams = (unsigned)n;
        return 0;
    case OPT_HEADER_TIMEOUT: return parse_ms("--header-timeout", arg, &lim->header_timeout_ms);
    case OPT_IDLE_TIMEOUT: return parse_ms("--idle-timeout", arg, &lim->idle_timeout_ms);
    case OPT_DETECT_TIMEOUT: return parse_ms("--detect-timeout", arg, &lim->detect_timeout_ms);
    case OPT_CONNECT_TIMEOUT: return parse_ms("--connect-timeout", arg, &lim->connect_timeout_ms);
    case OPT_RESPONSE_TIMEOUT:
        if (strcmp(arg, "0") == 0) {
            lim->response_timeout_ms = 0;
            return 0;
        }
        return parse_ms("--response-timeout", arg, &lim->response_timeout_ms);
    case OPT_DRAIN_TIMEOUT: return parse_ms("--drain-timeout", arg, &lim->drain_ms);
    default: return -1;
    }
}

static void set_defaults(struct px_cfg *cfg)
{
    cfg->inbound = "0.0.0.0:4143";
    cfg->outbound = "127.0.0.1:4140";
    cfg->admin = "0.0.0.0:4191";
    cfg->tap_queue_batches = 64;
    cfg->limits = (struct px_limits){
        .max_conns = 10000,
        .max_header = 64 * 1024,
        .header_timeout_ms = 10000,
        .idle_timeout_ms = 60000,
        .detect_timeout_ms = 1000,
        .connect_timeout_ms = 3000,
        .max_streams = 256,
        .drain_ms = 10000,
    };
}

/* Reads FILE's routes into o->route_specs (the text stays in o->routes_text). */
static int read_routes_file(struct opts *o)
{
    FILE *f = fopen(o->routes_file, "r");
    if (f == NULL)
        return usage_error(o->routes_file, strerror(errno)), -1;
    o->routes_text = malloc(MAX_ROUTE_FILE + 1);
    size_t len = o->routes_text ? fread(o->routes_text, 1, MAX_ROUTE_FILE + 1, f) : 0;
    int failed = ferror(f);
    fclose(f);
    if (o->routes_text == NULL || failed)
        return usage_error(o->routes_file, "cannot read it"), -1;
    if (len > MAX_ROUTE_FILE)
        return usage_error(o->routes_file, "over 4 MiB"), -1;
    o->routes_text[len] = 0;
    if (memchr(o->routes_text, 0, len) != NULL)
        return usage_error(o->routes_file, "holds a NUL byte: not a route file"), -1;
    char *save = NULL;
    for (char *line = strtok_r(o->routes_text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *hash = strchr(line, '#');
        if (hash != NULL)
            *hash = 0;
        while (*line == ' ' || *line == '\t')
            line++;
        char *end = line + strlen(line);
        while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
            *--end = 0;
        if (*line == 0)
            continue;
        if (o->nroute_specs == MAX_ROUTES)
            return usage_error(o->routes_file, "too many routes"), -1;
        o->route_specs[o->nroute_specs++] = line;
    }
    return 0;
}

static int build_routes(struct px *px, struct opts *o)
{
    char err[256];
    if (o->cfg.inbound_to != NULL) {
        char spec[300];
        snprintf(spec, sizeof(spec), "*=%s", o->cfg.inbound_to);
        if (px_route_parse(spec, &px->inbound_route, err, sizeof(err)) != 0)
            return usage_error("--inbound-to", err), -1;
    }
    px->routes = calloc(o->nroute_specs ? o->nroute_specs : 1, sizeof(*px->routes));
    if (px->routes == NULL)
        return usage_error("--route", "out of memory"), -1;
    for (size_t i = 0; i < o->nroute_specs; i++) {
        if (px_route_parse(o->route_specs[i], &px->routes[i], err, sizeof(err)) != 0)
            return usage_error("--route", err), -1;
        px->nroutes++;
    }
    return 0;
}

/* ---- running ------------------------------------------------------------------------------ */

struct run {
    struct px *px;
    int64_t deadline;
    int signals;
};

static int on_drain_deadline(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct run *run = ctx;
    run->deadline = 0;
    fprintf(stderr, "mesh-proxy: drain deadline: closing %u connection(s)\n", run->px->nconns);
    px_close_all(run->px);
    mesh_loop_stop(loop);
    return MESH_TIMER_DONE;
}

static void on_signal(struct mesh_loop *loop, int signo, void *ctx)
{
    struct run *run = ctx;
    if (run->signals++ > 0) {
        /* a second signal: the operator wants out now */
        px_close_all(run->px);
        mesh_loop_stop(loop);
        return;
    }
    fprintf(stderr, "mesh-proxy: %s: draining %u connection(s)\n", strsignal(signo),
            run->px->nconns);
    px_drain(run->px);
    run->deadline = mesh_loop_add_timer(loop, run->px->cfg.limits.drain_ms, on_drain_deadline, run);
    mesh_loop_wake(loop);
}

static void check_drained(struct mesh_loop *loop, void *ctx)
{
    struct run *run = ctx;
    if (run->px->draining && px_drained(run->px))
        mesh_loop_stop(loop);
}

static void print_listening(const struct px *px)
{
    const struct px_cfg *cfg = &px->cfg;
    if (px->inbound != NULL)
        fprintf(stderr, "mesh-proxy: inbound listening on %s, port %d, to %s\n", cfg->inbound,
                px_listener_port(px->inbound),
                cfg->inbound_to ? cfg->inbound_to : "the original port on loopback");
    if (cfg->transparent)
        fprintf(stderr, "mesh-proxy: transparent: original destinations from SO_ORIGINAL_DST\n");
    if (px->outbound != NULL)
        fprintf(stderr, "mesh-proxy: outbound listening on %s, port %d, %zu route(s)\n",
                cfg->outbound, px_listener_port(px->outbound), px->nroutes);
    if (cfg->admin != NULL)
        fprintf(stderr, "mesh-proxy: admin listening on %s, port %d\n", cfg->admin,
                px_admin_port(px));
    fprintf(stderr, "mesh-proxy: tap %s%s\n", cfg->collector ? "to " : "off (no --collector)",
            cfg->collector ? cfg->collector : "");
}

int main(int argc, char **argv)
{
    struct opts o;
    memset(&o, 0, sizeof(o));
    set_defaults(&o.cfg);
    for (size_t i = 0; i < sizeof(ENV_OPTS) / sizeof(ENV_OPTS[0]); i++) {
        const char *v = getenv(ENV_OPTS[i].env);
        if (v != NULL && *v != 0 && apply(&o, ENV_OPTS[i].opt, v) != 0)
            return MESH_EXIT_USAGE;
    }
    int opt;
    opterr = 0; /* one line of our own instead of getopt's */
    while ((opt = getopt_long(argc, argv, "h", LONG_OPTS, NULL)) != -1) {
        if (opt == 'h') {
            fputs(USAGE, stdout);
            return MESH_EXIT_OK;
        }
        if (opt == '?')
            return usage_error(argv[optind - 1], optopt ? "needs a value" : "unknown option");
        if (apply(&o, opt, optarg) != 0)
            return MESH_EXIT_USAGE;
    }
    if (optind < argc)
        return usage_error(argv[optind], "unexpected argument");
    if (o.cfg.inbound_to == NULL && !o.cfg.transparent)
        o.cfg.inbound = NULL; /* nowhere to send inbound traffic */
    if (o.cfg.inbound == NULL && o.cfg.outbound == NULL)
        return usage_error("listeners", "both inbound and outbound are off");
    if (o.routes_file != NULL && read_routes_file(&o) != 0)
        return MESH_EXIT_USAGE;
    if (o.token_file != NULL) {
        static char token[MESH_GRPC_TOKEN_MAX + 1];
        char why[512];
        if (mesh_grpc_token_read(o.token_file, token, sizeof(token), why, sizeof(why)) != 0)
            return usage_error("--token-file", why);
        if (mesh_grpc_client_set_token(token) != 0)
            return usage_error("--token-file", "out of memory");
    }
    if (o.tls_ca != NULL) {
        char why[512];
        if (mesh_grpc_client_set_tls(o.tls_ca, why, sizeof(why)) != 0)
            return usage_error("--tls-ca", why);
    }

    signal(SIGPIPE, SIG_IGN); /* a peer that left is seen as EPIPE on write */
    struct mesh_loop *loop = mesh_loop_new();
    if (loop == NULL) {
        fprintf(stderr, "mesh-proxy: cannot create the event loop\n");
        return MESH_EXIT_RUNTIME;
    }
    char err[512];
    int status = MESH_EXIT_RUNTIME;
    struct run run = {0};
    struct px *px = px_new(loop, &o.cfg, err, sizeof(err));
    if (px == NULL) {
        fprintf(stderr, "mesh-proxy: %s\n", err);
        status = MESH_EXIT_USAGE;
        goto out;
    }
    run.px = px;
    if (build_routes(px, &o) != 0) {
        status = MESH_EXIT_USAGE;
        goto out;
    }
    if (px_start(px, err, sizeof(err)) != 0) {
        fprintf(stderr, "mesh-proxy: %s\n", err);
        goto out;
    }
    if (mesh_loop_on_signal(loop, SIGTERM, on_signal, &run) != 0 ||
        mesh_loop_on_signal(loop, SIGINT, on_signal, &run) != 0 ||
        mesh_loop_on_before_sleep(loop, check_drained, &run) < 0) {
        fprintf(stderr, "mesh-proxy: cannot set up signal handling\n");
        goto out;
    }
    print_listening(px);
    if (mesh_loop_run(loop) != 0) {
        fprintf(stderr, "mesh-proxy: the event loop failed\n");
        goto out;
    }
    if (px->tap != NULL) {
        struct mesh_tapsend_counters c;
        mesh_tapsend_counters(px->tap, &c);
        fprintf(stderr, "mesh-proxy: stopped; tap events: %llu acknowledged, %llu dropped\n",
                (unsigned long long)c.acked, (unsigned long long)c.dropped);
    }
    status = MESH_EXIT_OK;
out:
    if (px != NULL) {
        px_close_all(px);
        px_free(px);
    }
    mesh_loop_free(loop);
    free(o.routes_text);
    return status;
}
