/* mesh — the command line: replay, stat, top, tap.
 *
 * Thin on purpose (STYLE.md): parses arguments into the options of a view
 * and a source, then runs the source through the view. Usage errors print
 * one line naming the argument and exit 2.
 */
#include <getopt.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "mesh/err.h"
#include "mesh/filter.h"
#include "mesh/fmt.h"
#include "mesh/grpc.h"
#include "mesh/loop.h"
#include "mesh/source.h"
#include "demo/demo.h"
#include "proxy/check.h"
#include "proxy/init.h"
#include "proxy/inject.h"
#include "proxy/install.h"
#include "stat/stat.h"
#include "store/collector.h"
#include "store/dashboard.h"
#include "store/export.h"
#include "store/remote.h"
#include "tap/tap.h"
#include "top/top.h"
#include "top/screen.h"

#define MESH_VERSION "0.1.0"

static const char usage_main[] =
    "mesh — service-mesh observability: tap, top and stat for live traffic and captures\n"
    "\n"
    "Usage: mesh COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  replay FILE…     rebuild tap events from pcap/pcapng captures\n"
    "  stat [RES…]      success rate, RPS and latency per resource\n"
    "  top [RES]        requests grouped by source, destination, method and path\n"
    "  tap [RES]        every request, as it happened\n"
    "  collector        receive tap events over gRPC and keep them in SQLite\n"
    "  demo             run the emojivoto demo here, meshed, until Ctrl-C\n"
    "  dashboard        the web dashboard: stat, top and a live tap in a browser\n"
    "  init             install the iptables rules of a transparent proxy (init container)\n"
    "  inject FILE|-    add the mesh to the workloads in Kubernetes YAML\n"
    "  install          print the collector's Kubernetes manifests\n"
    "  check [--pre]    check that the mesh can run, or runs, here\n"
    "  version          print the version\n"
    "\n"
    "Run `mesh COMMAND --help` for a command's options and examples.\n"
    "\n"
    "Every command that talks to a collector (replay --collector, stat, top, tap,\n"
    "dashboard, check) takes --token-file FILE [MESH_TOKEN_FILE]: it sends\n"
    "authorization: Bearer TOKEN, TOKEN the first line of FILE; and --tls-ca FILE\n"
    "[MESH_TLS_CA]: it speaks TLS and checks the collector's certificate against FILE.\n";

static const char usage_replay[] =
    "Usage: mesh replay FILE… [-o tap|json] [--labels MAP] [--db PATH | --collector ADDR]\n"
    "\n"
    "Reads pcap or pcapng captures (Ethernet, 802.1Q, Linux cooked v1/v2, BSD loopback,\n"
    "raw IP; IPv4 and IPv6), reassembles TCP, finds HTTP/1.x, HTTP/2 and gRPC by content\n"
    "and prints one event per request/response exchange. A summary per file goes to\n"
    "stderr. FILE `-` reads a capture from stdin.\n"
    "\n"
    "Options:\n"
    "  -o, --output tap|json   tap lines (default) or one JSON object per line\n"
    "      --labels MAP        lines `IP:PORT namespace/deployment[/pod]` naming workloads\n"
    "  -q, --quiet             no summary on stderr\n"
    "      --db PATH           store the events in a SQLite store instead of printing\n"
    "      --collector ADDR    send them to a collector, as a proxy would\n"
    "      --tap-header NAME,… the events carry these request and final response headers\n"
    "                          and trailers ('*': all), as mesh-proxy --tap-header;\n"
    "                          never stored\n"
    "      --redact-header NAME,…  by name only, like authorization, cookie, set-cookie\n"
    "                          and proxy-authorization always are ('*': every one)\n"
    "\n"
    "Examples:\n"
    "  mesh replay capture.pcap\n"
    "  mesh replay capture.pcapng -o json | jq .path\n"
    "  tcpdump -i lo -w - port 8080 | mesh replay -\n"
    "  mesh replay capture.pcap --collector 127.0.0.1:8088\n"
    "  mesh replay capture.pcap --tap-header user-agent,x-request-id\n";

static const char usage_stat[] =
    "Usage: mesh stat [RESOURCE…] [--collector ADDR | --db PATH | --pcap FILE] [options]\n"
    "\n"
    "Resources: TYPE/NAME or TYPE [NAME]: ns/emojivoto, deploy, deploy/web, po/web-0,\n"
    "au/web.emojivoto:80. Without one, rows are authorities (au).\n"
    "\n"
    "Options:\n"
    "  -n, --namespace NS        only this namespace (default: all)\n"
    "  -A, --all-namespaces      every namespace\n"
    "      --from RES            only requests from RES (--from-namespace NS)\n"
    "      --to RES              rows for traffic sent to RES (--to-namespace NS)\n"
    "  -o, --output table|wide|json\n"
    "  -t, --time-window 1m      the last minute (default), or --since T [--until T]:\n"
    "                            Unix seconds, 2026-11-24T05:00:00Z, or 10m (ago)\n"
    "      --collector ADDR      ask a collector (default: $MESH_COLLECTOR, else a running\n"
    "                            `mesh demo`'s, else 127.0.0.1:8088)\n"
    "      --db PATH             read a store file instead\n"
    "      --pcap FILE           read a capture (repeatable); --labels MAP names workloads\n"
    "      --watch               again every second: on a terminal a live screen, sorted,\n"
    "                            failing rows red (\"!\" with NO_COLOR); else the plain\n"
    "                            output every second until Ctrl-C\n"
    "\n"
    "Keys (--watch screen): q quit · space pause · ↑↓ PgUp PgDn j k g G scroll ·\n"
    "  sort by N namespace, n name, s success, r rps, 1 2 3 latency p50 p95 p99,\n"
    "  t tcp_conn, i o bytes/s (wide); the same key again reverses; < > move the sort\n"
    "\n"
    "Examples:\n"
    "  mesh stat deploy -n emojivoto\n"
    "  mesh stat deploy -n emojivoto --watch\n"
    "  mesh stat au --watch --since 0 -o json > stat.jsonl   # an array per second\n"
    "  mesh stat au/web:80 --db mesh.db --since 2026-11-24T05:00:00Z -o json\n"
    "  mesh stat --pcap capture.pcap\n"
    "  mesh stat deploy -n emojivoto --pcap capture.pcap --labels labels.map\n"
    "  mesh stat ns/emojivoto --pcap capture.pcap --labels labels.map -o json\n";

static const char usage_top[] =
    "Usage: mesh top [RESOURCE] [--collector ADDR | --db PATH | --pcap FILE] [options]\n"
    "\n"
    "Requests grouped by source, destination, method and path, most frequent first.\n"
    "On a terminal, a live screen asking the collector (or store) again every second\n"
    "over the window (-t 1m: the last minute; --since 0: everything); rows with\n"
    "failures in red (\"!\" with NO_COLOR). Otherwise, or with -o json, one snapshot.\n"
    "\n"
    "Options:\n"
    "  --to RES, --from RES, --method M, --path PREFIX, --authority A,\n"
    "  --status 5xx|4xx|NNN, --min-latency 100ms   filters (as tap)\n"
    "  --hide-sources            do not split rows by source\n"
    "  --sort count|best|worst|last|success|path|source|destination|method\n"
    "  -o, --output table|json   -n NS   -t 1m | --since T [--until T] (as stat)\n"
    "  --collector ADDR | --db PATH | --pcap FILE [--labels MAP]   (as stat)\n"
    "\n"
    "Keys: q quit · space pause · ↑↓ PgUp PgDn j k g G scroll · sort by s source,\n"
    "  d destination, m method, p path, c count, b best, w worst, l last, r success\n"
    "  rate; the same key again reverses; < > move the sort column\n"
    "\n"
    "Examples:\n"
    "  mesh top deploy/web -n emojivoto\n"
    "  mesh top --since 0 --sort worst | head      # a snapshot, worst latency first\n"
    "  mesh top --pcap capture.pcap\n"
    "  mesh top deploy/voting --pcap capture.pcap --labels labels.map\n";

static const char usage_tap[] =
    "Usage: mesh tap [RESOURCE] [--collector ADDR | --db PATH | --pcap FILE] [options]\n"
    "\n"
    "Every request to or from RESOURCE: req, rsp and end lines. From a collector\n"
    "(the default: $MESH_COLLECTOR, else a running `mesh demo`'s, else 127.0.0.1:8088)\n"
    "live until Ctrl-C; from a\n"
    "store, the window's requests (-t 1m by default, or --since/--until); from a\n"
    "capture, all of them. On a terminal (not -o json), a screen of one line per\n"
    "exchange, failures in red (\"!\" with NO_COLOR), headers last (\"> \" the request's,\n"
    "\"< \" the response's), with counters of the events shown,\n"
    "missed (--max-rps, or the collector's queue) and held while paused; the newest\n"
    "10000 lines are kept.\n"
    "\n"
    "Options:\n"
    "  --to RES, --from RES      only requests to / from RES\n"
    "  --method M, --path PREFIX, --authority A\n"
    "  --status 5xx|4xx|NNN      only responses with this status or class\n"
    "  --min-latency DURATION    only responses slower than this (e.g. 100ms)\n"
    "  --max-rps N               show at most N requests per second\n"
    "  -o, --output wide|json    labels too, or one JSON object per line\n"
    "  --collector ADDR | --db PATH | --pcap FILE [--labels MAP]   -n NS\n"
    "  --tap-header NAME,…, --redact-header NAME,…   with --pcap: the headers to show,\n"
    "                            as `mesh replay` (a proxy's are its own --tap-header)\n"
    "\n"
    "Keys: q quit · space pause/resume · ↑↓ PgUp PgDn j k g G scroll (scrolling back\n"
    "  pauses)\n"
    "\n"
    "Examples:\n"
    "  mesh tap deploy/web --status 5xx\n"
    "  mesh tap deploy/web -o json | jq .path        # plain: not a terminal\n"
    "  mesh tap --pcap capture.pcap --status 5xx\n"
    "  mesh tap deploy/web --to deploy/voting --pcap capture.pcap --labels labels.map -o json\n";

enum {
    OPT_PCAP = 256, OPT_LABELS, OPT_FROM, OPT_TO, OPT_FROM_NS, OPT_TO_NS, OPT_METHOD, OPT_PATH,
    OPT_AUTHORITY, OPT_STATUS, OPT_MIN_LATENCY, OPT_MAX_RPS, OPT_HIDE_SOURCES, OPT_SORT,
    OPT_COLLECTOR, OPT_DB, OPT_WATCH, OPT_SINCE, OPT_UNTIL, OPT_TAP_HEADER, OPT_REDACT_HEADER,
};

static const struct option long_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {"output", required_argument, NULL, 'o'},
    {"namespace", required_argument, NULL, 'n'},
    {"all-namespaces", no_argument, NULL, 'A'},
    {"time-window", required_argument, NULL, 't'},
    {"quiet", no_argument, NULL, 'q'},
    {"pcap", required_argument, NULL, OPT_PCAP},
    {"labels", required_argument, NULL, OPT_LABELS},
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {"from-namespace", required_argument, NULL, OPT_FROM_NS},
    {"to-namespace", required_argument, NULL, OPT_TO_NS},
    {"method", required_argument, NULL, OPT_METHOD},
    {"path", required_argument, NULL, OPT_PATH},
    {"authority", required_argument, NULL, OPT_AUTHORITY},
    {"status", required_argument, NULL, OPT_STATUS},
    {"min-latency", required_argument, NULL, OPT_MIN_LATENCY},
    {"max-rps", required_argument, NULL, OPT_MAX_RPS},
    {"hide-sources", no_argument, NULL, OPT_HIDE_SOURCES},
    {"sort", required_argument, NULL, OPT_SORT},
    {"collector", required_argument, NULL, OPT_COLLECTOR},
    {"db", required_argument, NULL, OPT_DB},
    {"watch", no_argument, NULL, OPT_WATCH},
    {"since", required_argument, NULL, OPT_SINCE},
    {"until", required_argument, NULL, OPT_UNTIL},
    {"tap-header", required_argument, NULL, OPT_TAP_HEADER},
    {"redact-header", required_argument, NULL, OPT_REDACT_HEADER},
    {NULL, 0, NULL, 0},
};

/* Everything a command line can say; each command reads what it needs. */
struct cli {
    const char *cmd;
    const char *usage;
    struct mesh_source src;
    struct mesh_filter filter;
    struct mesh_resource res[MESH_STAT_MAX_RES];
    size_t nres;
    const char *ns, *from_ns, *to_ns;
    enum mesh_output output;
    int output_set;
    int hide_sources;
    enum mesh_top_sort sort;
    double max_rps;
    const char *db, *collector;
    struct mesh_remote remote;
    int window_set;             /* --since or --until given */
    int watch;                  /* stat --watch */
    const char *header_opt;     /* the first --tap-header/--redact-header given */
};

/* --since/--until: Unix seconds ("1700000000.5"), a UTC time
 * ("2026-11-24T05:00:00Z"), or a duration ago ("10m"). */
static int parse_time_us(const char *arg, uint64_t *us)
{
    char *end;
    double secs = strtod(arg, &end);
    if (end != arg && *end == '\0' && secs >= 0) {
        *us = (uint64_t)(secs * 1e6);
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    end = strptime(arg, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end != NULL && (*end == '\0' || strcmp(end, "Z") == 0)) {
        *us = (uint64_t)timegm(&tm) * 1000000u;
        return 0;
    }
    uint64_t ago;
    if (mesh_parse_duration_us(arg, &ago) == 0) {
        uint64_t now = mesh_wall_now_us();
        *us = ago < now ? now - ago : 0;
        return 0;
    }
    return MESH_EINVAL;
}

static int usage_error(const struct cli *c, const char *what, const char *problem)
{
    fprintf(stderr, "mesh %s: %s: %s (see `mesh %s --help`)\n", c->cmd, what, problem, c->cmd);
    return MESH_EXIT_USAGE;
}

static int parse_resource_arg(struct cli *c, char *arg, struct mesh_resource *res)
{
    const char *desc;
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", arg);
    if (mesh_resource_parse(arg, res, &desc) != 0)
        return usage_error(c, copy, desc);
    return 0;
}

static int parse_output(struct cli *c, const char *arg)
{
    static const struct {
        const char *name;
        enum mesh_output out;
    } outs[] = {{"table", MESH_OUT_TABLE}, {"wide", MESH_OUT_WIDE}, {"json", MESH_OUT_JSON},
                {"tap", MESH_OUT_TAP}};
    for (size_t i = 0; i < sizeof(outs) / sizeof(outs[0]); i++) {
        if (strcmp(arg, outs[i].name) == 0) {
            c->output = outs[i].out;
            c->output_set = 1;
            return 0;
        }
    }
    return usage_error(c, arg, "unknown output format");
}

/* Without --collector: $MESH_COLLECTOR, else a running `mesh demo`'s, else the default. */
static const char *default_collector(void)
{
    const char *env = getenv("MESH_COLLECTOR");
    static char demo_addr[96]; /* a running `mesh demo` says where its collector is */
    return env && *env                                             ? env
           : mesh_demo_collector(demo_addr, sizeof(demo_addr)) == 0 ? demo_addr
                                                                    : "127.0.0.1:8088";
}

static int parse_args(struct cli *c, int argc, char **argv)
{
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "ho:n:At:q", long_opts, NULL)) != -1) {
        int rv = 0;
        uint64_t us;
        char *end;
        switch (opt) {
        case 'h': fputs(c->usage, stdout); exit(MESH_EXIT_OK);
        case 'o': rv = parse_output(c, optarg); break;
        case 'n': c->ns = optarg; break;
        case 'A': c->ns = NULL; break;
        case 't':
            if (mesh_parse_duration_us(optarg, &us) != 0 || us < 1000000)
                return usage_error(c, optarg, "not a time window of 1s or more");
            c->remote.last_us = us; /* a capture is read whole; windows apply to stores */
            break;
        case OPT_SINCE:
            if (parse_time_us(optarg, &c->remote.since_us) != 0)
                return usage_error(c, optarg, "not a time (Unix seconds, 2026-11-24T05:00:00Z, or 10m ago)");
            c->window_set = 1; /* --since 0: from the first event on */
            break;
        case OPT_UNTIL:
            if (parse_time_us(optarg, &c->remote.until_us) != 0)
                return usage_error(c, optarg, "not a time (Unix seconds, 2026-11-24T05:00:00Z, or 10m ago)");
            c->window_set = 1;
            break;
        case 'q': c->src.summary = 0; break;
        case OPT_PCAP:
            if (c->src.nfiles == MESH_SOURCE_MAX_FILES)
                return usage_error(c, optarg, "too many captures");
            c->src.files[c->src.nfiles++] = optarg;
            break;
        case OPT_LABELS: c->src.labels_path = optarg; break;
        case OPT_FROM: rv = parse_resource_arg(c, optarg, &c->filter.from); break;
        case OPT_TO: rv = parse_resource_arg(c, optarg, &c->filter.to); break;
        case OPT_FROM_NS: c->from_ns = optarg; break;
        case OPT_TO_NS: c->to_ns = optarg; break;
        case OPT_METHOD: c->filter.method = optarg; break;
        case OPT_PATH: c->filter.path_prefix = optarg; break;
        case OPT_AUTHORITY: c->filter.authority = optarg; break;
        case OPT_STATUS:
            if (mesh_filter_set_status(&c->filter, optarg) != 0)
                return usage_error(c, optarg, "not a status (5xx, 4xx or a code like 404)");
            break;
        case OPT_MIN_LATENCY:
            if (mesh_parse_duration_us(optarg, &c->filter.min_latency_us) != 0)
                return usage_error(c, optarg, "not a duration (like 100ms)");
            break;
        case OPT_MAX_RPS:
            c->max_rps = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || c->max_rps <= 0)
                return usage_error(c, optarg, "not a positive rate");
            break;
        case OPT_HIDE_SOURCES: c->hide_sources = 1; break;
        case OPT_SORT: {
            static const char *const keys[] = {"count", "best", "worst", "last", "success",
                                               "path", "source", "destination", "method"};
            size_t k, nkeys = sizeof(keys) / sizeof(keys[0]);
            for (k = 0; k < nkeys && strcmp(optarg, keys[k]) != 0; k++)
                ;
            if (k == nkeys)
                return usage_error(c, optarg, "unknown sort key");
            c->sort = (enum mesh_top_sort)k;
            break;
        }
        case OPT_COLLECTOR: c->collector = optarg; break;
        case OPT_DB: c->db = optarg; break;
        case OPT_WATCH: c->watch = 1; break;
        case OPT_TAP_HEADER:
        case OPT_REDACT_HEADER: {
            const char *why;
            struct mesh_hdr_names *names =
                opt == OPT_TAP_HEADER ? &c->src.headers.tap : &c->src.headers.redact;
            if (mesh_hdr_names_add(names, optarg, &why) != 0)
                return usage_error(c, optarg, why);
            if (c->header_opt == NULL)
                c->header_opt = opt == OPT_TAP_HEADER ? "--tap-header" : "--redact-header";
            break;
        }
        case '?':
        default:
            return usage_error(c, argv[optind - 1], optopt ? "option needs a value" : "unknown option");
        }
        if (rv != 0)
            return rv;
    }
    /* positionals: files for replay; resources for the views */
    for (int i = optind; i < argc; i++) {
        if (strcmp(c->cmd, "replay") == 0) {
            if (c->src.nfiles == MESH_SOURCE_MAX_FILES)
                return usage_error(c, argv[i], "too many captures");
            c->src.files[c->src.nfiles++] = argv[i];
            continue;
        }
        if (c->nres == MESH_STAT_MAX_RES)
            return usage_error(c, argv[i], "too many resources");
        struct mesh_resource *res = &c->res[c->nres];
        int rv = parse_resource_arg(c, argv[i], res);
        if (rv != 0)
            return rv;
        /* `TYPE NAME`: a bare type followed by a word that is not a type */
        if (res->name == NULL && i + 1 < argc && strchr(argv[i + 1], '/') == NULL &&
            mesh_rtype_parse(argv[i + 1]) == MESH_RT_NONE)
            res->name = argv[++i];
        c->nres++;
    }
    for (size_t i = 0; i < c->nres; i++)
        c->res[i].ns = c->ns;
    if (c->filter.from.type != MESH_RT_NONE)
        c->filter.from.ns = c->from_ns ? c->from_ns : c->ns;
    if (c->filter.to.type != MESH_RT_NONE)
        c->filter.to.ns = c->to_ns ? c->to_ns : c->ns;
    /* headers are read from captures; a proxy chooses its own (mesh-proxy
     * --tap-header) and a store never keeps any */
    if (c->header_opt != NULL) {
        if (strcmp(c->cmd, "replay") != 0 && strcmp(c->cmd, "tap") != 0)
            return usage_error(c, c->header_opt, "only mesh tap and mesh replay show headers");
        if (c->src.nfiles == 0 && strcmp(c->cmd, "tap") == 0)
            return usage_error(c, c->header_opt,
                               "reads headers from a capture (--pcap); a proxy's events carry "
                               "what its own --tap-header chose");
        if (c->db != NULL && strcmp(c->cmd, "replay") == 0)
            return usage_error(c, c->header_opt, "a store never keeps headers (give -o or --collector)");
    }
    if (strcmp(c->cmd, "replay") == 0)
        return 0;
    /* the views read one source: captures, a store, or a collector */
    if ((c->src.nfiles > 0) + (c->db != NULL) + (c->collector != NULL) > 1)
        return usage_error(c, "--pcap/--db/--collector", "give one source");
    if (c->remote.last_us && c->window_set)
        return usage_error(c, "-t", "give -t or --since/--until, not both");
    if (c->src.nfiles == 0 && c->db == NULL && c->collector == NULL) {
        c->collector = default_collector();
    }
    if (!c->remote.last_us && !c->window_set)
        c->remote.last_us = 60000000; /* Linkerd's default window: 1m */
    c->remote.db = c->db;
    c->remote.collector = c->collector;
    return 0;
}

/* DESIGN.md "CLI": screens on a terminal, plain text otherwise or with -o json. */
static int on_terminal(const struct cli *c)
{
    return c->output != MESH_OUT_JSON && isatty(STDOUT_FILENO);
}

static void capture_status(struct mesh_ui *ui, char *buf, size_t len, void *ctx)
{
    const struct cli *c = ctx;
    snprintf(buf, len, "%s%s", c->src.files[0], c->src.nfiles > 1 ? " and more" : "");
}

/* A capture's rows on a screen that stays until q: there is nothing to refresh. */
static int show_capture(struct cli *c, struct mesh_ui_opts *o,
                        void (*fill)(struct mesh_ui *ui, void *ctx), void *ctx)
{
    char err[512];
    o->status = capture_status;
    o->ctx = c;
    struct mesh_ui *ui = mesh_ui_open(o, err, sizeof(err));
    if (ui == NULL) {
        fprintf(stderr, "mesh %s: %s\n", c->cmd, err);
        return MESH_EXIT_RUNTIME;
    }
    fill(ui, ctx);
    int status = mesh_ui_run(ui);
    mesh_ui_close(ui);
    return status;
}

struct fill_top {
    struct mesh_top_row *rows;
    size_t n;
    const struct mesh_top_opts *opts;
};

static void fill_top(struct mesh_ui *ui, void *ctx)
{
    struct fill_top *f = ctx;
    mesh_top_ui_rows(ui, f->rows, f->n, f->opts);
}

struct fill_stat {
    struct mesh_stat_row *rows;
    size_t n;
    enum mesh_output output;
};

static void fill_stat(struct mesh_ui *ui, void *ctx)
{
    struct fill_stat *f = ctx;
    mesh_stat_ui_rows(ui, f->rows, f->n, f->output);
}

static void on_tap(void *ctx, const struct mesh_evt *evt)
{
    mesh_tap_add(ctx, evt);
}

static void on_stat(void *ctx, const struct mesh_evt *evt)
{
    mesh_stat_add(ctx, evt);
}

static void on_top(void *ctx, const struct mesh_evt *evt)
{
    mesh_top_add(ctx, evt);
}

static int run_tap(struct cli *c)
{
    if (c->output == MESH_OUT_TAP)
        c->output = MESH_OUT_TABLE;
    if (c->nres > 1)
        return usage_error(c, "RESOURCE", "tap takes one resource");
    struct mesh_tap_opts opts = {.filter = c->filter, .output = c->output, .max_rps = c->max_rps};
    if (c->nres == 1)
        opts.filter.res = c->res[0];
    struct mesh_tap tap;
    opts.live = strcmp(c->cmd, "tap") == 0 && on_terminal(c);
    mesh_tap_init(&tap, &opts, stdout);
    int status;
    if (c->src.nfiles && opts.live) {
        char err[512];
        if (mesh_tap_ui_open(&tap, c->src.files[0], err, sizeof(err)) == NULL) {
            fprintf(stderr, "mesh %s: %s\n", c->cmd, err);
            mesh_tap_free(&tap);
            return MESH_EXIT_RUNTIME;
        }
        status = mesh_source_run(&c->src, c->cmd, on_tap, &tap);
        if (status == MESH_EXIT_OK)
            status = mesh_ui_run(tap.ui);
        mesh_ui_close(tap.ui); /* the terminal is back before any error line */
        tap.ui = NULL;
    } else {
        status = c->src.nfiles ? mesh_source_run(&c->src, c->cmd, on_tap, &tap)
                               : mesh_remote_tap(&c->remote, c->cmd, &tap);
    }
    if (tap.missed > 0 && !opts.live)
        fprintf(stderr, "mesh %s: %llu requests not shown (--max-rps)\n", c->cmd,
                (unsigned long long)tap.missed);
    mesh_tap_free(&tap);
    return status;
}

static int run_stat(struct cli *c)
{
    struct mesh_stat_opts opts = {.output = c->output, .to = c->filter.to, .from = c->filter.from,
                                  .watch = c->watch, .live = c->watch && on_terminal(c)};
    if (c->output == MESH_OUT_TAP)
        return usage_error(c, "tap", "stat prints table, wide or json");
    memcpy(opts.res, c->res, c->nres * sizeof(c->res[0]));
    opts.nres = c->nres;
    if (opts.nres == 0) {
        opts.res[0].type = MESH_RT_AUTH;
        opts.nres = 1;
    }
    if (c->src.nfiles == 0)
        return mesh_remote_stat(&c->remote, c->cmd, &opts);
    struct mesh_stat *st = mesh_stat_new(&opts);
    if (st == NULL)
        return MESH_EXIT_RUNTIME;
    int status = mesh_source_run(&c->src, c->cmd, on_stat, st);
    if (status == MESH_EXIT_OK && opts.live) {
        struct fill_stat f = {.output = opts.output};
        struct mesh_ui_opts o = {.title = "mesh stat --watch", .sort = -1};
        o.cols = mesh_stat_ui_cols(opts.output, &o.ncols);
        if ((f.rows = mesh_stat_rows(st, &f.n)) == NULL)
            status = MESH_EXIT_RUNTIME;
        else
            status = show_capture(c, &o, fill_stat, &f);
        free(f.rows);
    } else if (status == MESH_EXIT_OK) {
        mesh_stat_render(st, stdout); /* a capture does not change: once, even with --watch */
    }
    mesh_stat_free(st);
    return status;
}

static int run_top(struct cli *c)
{
    if (c->output == MESH_OUT_TAP || c->output == MESH_OUT_WIDE)
        return usage_error(c, c->output == MESH_OUT_TAP ? "tap" : "wide", "top prints table or json");
    if (c->nres > 1)
        return usage_error(c, "RESOURCE", "top takes one resource");
    struct mesh_top_opts opts = {.filter = c->filter, .hide_sources = c->hide_sources,
                                 .output = c->output, .sort = c->sort, .live = on_terminal(c)};
    if (c->nres == 1)
        opts.filter.res = c->res[0];
    if (c->src.nfiles == 0)
        return mesh_remote_top(&c->remote, c->cmd, &opts);
    struct mesh_top *top = mesh_top_new(&opts);
    if (top == NULL)
        return MESH_EXIT_RUNTIME;
    int status = mesh_source_run(&c->src, c->cmd, on_top, top);
    if (status == MESH_EXIT_OK && opts.live) {
        struct fill_top f = {.opts = &opts};
        uint64_t over_cap;
        struct mesh_ui_opts o = {.title = "mesh top"};
        o.cols = mesh_top_ui_cols(&opts, &o.ncols, &o.sort);
        if ((f.rows = mesh_top_rows(top, &f.n, &over_cap)) == NULL)
            status = MESH_EXIT_RUNTIME;
        else
            status = show_capture(c, &o, fill_top, &f);
        free(f.rows);
    } else if (status == MESH_EXIT_OK) {
        mesh_top_render(top, stdout);
    }
    mesh_top_free(top);
    return status;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    /* output goes to pipes and files in bulk: large writes, not a line at a time */
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
    if (argc < 2) {
        fputs(usage_main, stderr);
        return MESH_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return MESH_EXIT_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("mesh %s\n", MESH_VERSION);
        return MESH_EXIT_OK;
    }
    /* --token-file FILE / $MESH_TOKEN_FILE: the collector checks it (its own
     * option); every other command is a client and sends it */
    if (strcmp(cmd, "collector") != 0) {
        const char *token_file = getenv("MESH_TOKEN_FILE"), *tls_ca = getenv("MESH_TLS_CA");
        int out = 1;
        for (int i = 1; i < argc; i++) {
            if (strcmp(argv[i], "--token-file") == 0 && i + 1 < argc)
                token_file = argv[++i];
            else if (strncmp(argv[i], "--token-file=", 13) == 0)
                token_file = argv[i] + 13;
            else if (strcmp(argv[i], "--tls-ca") == 0 && i + 1 < argc)
                tls_ca = argv[++i];
            else if (strncmp(argv[i], "--tls-ca=", 9) == 0)
                tls_ca = argv[i] + 9;
            else if (strcmp(argv[i], "--") == 0) {
                while (i < argc)
                    argv[out++] = argv[i++];
                break;
            } else
                argv[out++] = argv[i];
        }
        argc = out;
        argv[argc] = NULL;
        if (token_file != NULL && token_file[0] != '\0') {
            static char token[MESH_GRPC_TOKEN_MAX + 1];
            char why[512];
            if (mesh_grpc_token_read(token_file, token, sizeof(token), why, sizeof(why)) != 0) {
                fprintf(stderr, "mesh: --token-file: %s\n", why);
                return MESH_EXIT_USAGE;
            }
            if (mesh_grpc_client_set_token(token) != 0)
                return MESH_EXIT_RUNTIME;
        }
        char why[512];
        if (tls_ca != NULL && tls_ca[0] != '\0' &&
            mesh_grpc_client_set_tls(tls_ca, why, sizeof(why)) != 0) {
            fprintf(stderr, "mesh: --tls-ca: %s\n", why);
            return MESH_EXIT_USAGE;
        }
    }
    if (strcmp(cmd, "demo") == 0)
        return mesh_demo_main(argc - 1, argv + 1, argv[0]);
    if (strcmp(cmd, "dashboard") == 0)
        return mesh_dashboard_main(argc - 1, argv + 1, default_collector());
    if (strcmp(cmd, "demo-app") == 0) /* hidden: the demo's workloads */
        return mesh_demo_app_main(argc - 1, argv + 1);
    if (strcmp(cmd, "collector") == 0)
        return mesh_collector_main(argc - 1, argv + 1);
    if (strcmp(cmd, "init") == 0)
        return mesh_init_main(argc - 1, argv + 1);
    if (strcmp(cmd, "inject") == 0)
        return mesh_inject_main(argc - 1, argv + 1);
    if (strcmp(cmd, "install") == 0)
        return mesh_install_main(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return mesh_check_main(argc - 1, argv + 1);
    static struct cli c;
    memset(&c, 0, sizeof(c));
    c.cmd = cmd;
    c.src.summary = 1;
    mesh_filter_init(&c.filter);
    if (strcmp(cmd, "replay") == 0) {
        c.usage = usage_replay;
        c.output = MESH_OUT_TAP;
    } else if (strcmp(cmd, "stat") == 0) {
        c.usage = usage_stat;
        c.src.summary = 0;
    } else if (strcmp(cmd, "top") == 0) {
        c.usage = usage_top;
        c.src.summary = 0;
    } else if (strcmp(cmd, "tap") == 0) {
        c.usage = usage_tap;
        c.src.summary = 0;
    } else {
        fprintf(stderr, "mesh: %s: unknown command (see `mesh --help`)\n", cmd);
        return MESH_EXIT_USAGE;
    }
    int rv = parse_args(&c, argc - 1, argv + 1);
    if (rv != 0)
        return rv;
    if (strcmp(cmd, "replay") == 0) {
        if (c.src.nfiles == 0)
            return usage_error(&c, "FILE", "no capture given");
        if (c.output != MESH_OUT_TAP && c.output != MESH_OUT_JSON && c.output != MESH_OUT_WIDE)
            return usage_error(&c, "table", "replay prints tap, wide or json");
        /* for replay, --db and --collector say where the events go */
        const char *db = c.db, *collector = c.collector;
        if (db != NULL && collector != NULL)
            return usage_error(&c, "--db", "give --db or --collector, not both");
        if (db != NULL)
            return mesh_export_db(&c.src, c.cmd, db);
        if (collector != NULL)
            return mesh_export_collector(&c.src, c.cmd, collector, 10000);
        return run_tap(&c);
    }
    if (strcmp(cmd, "stat") == 0)
        return run_stat(&c);
    if (strcmp(cmd, "top") == 0)
        return run_top(&c);
    return run_tap(&c);
}
