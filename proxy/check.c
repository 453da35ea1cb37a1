/* proxy/check.c — `mesh check` (contract in check.h).
 *
 * Every check is a function that says ok or not, with a hint; nothing is
 * changed on the machine (ports are bound and closed at once, the store's
 * directory gets a probe file that is removed). The collector has no version
 * RPC: a Query/Stat over the last second is the cheapest call that proves it
 * answers gRPC, so the version line says the collector does not report one.
 */
#define _GNU_SOURCE
#include "check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mesh/buf.h"
#include "mesh/err.h"
#include "mesh/grpc.h"
#include "mesh/tap/v1/tap.pb-c.h"

extern char **environ;

#define MAX_PORTS 16
#define MAX_ADMINS 16
#define TIMEOUT_MS 2000

struct check_run {
    int color;
    unsigned passed, failed;
};

static void group(const char *title)
{
    static int first = 1;
    printf("%s%s\n", first ? "" : "\n", title);
    for (size_t i = 0; title[i] != 0; i++)
        putchar('-');
    putchar('\n');
    first = 0;
}

/* One result line; |hint| (may be NULL) goes under a failure. */
static void result(struct check_run *cr, int ok, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void result(struct check_run *cr, int ok, const char *hint, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    const char *mark = ok ? "\u2713" : "\u00d7";
    if (cr->color)
        printf("\033[%sm%s\033[0m %s\n", ok ? "32" : "31", mark, what);
    else
        printf("%s %s\n", mark, what);
    if (!ok && hint != NULL)
        printf("    %s\n", hint);
    if (ok)
        cr->passed++;
    else
        cr->failed++;
}

/* ---- mesh-init: kernel, iptables, capabilities ------------------------------------------- */

/* Runs |argv| with stdout+stderr into |out| (first line kept); its status. */
static int run_capture(char *const argv[], char *out, size_t outlen)
{
    int fds[2];
    out[0] = 0;
    if (pipe2(fds, O_CLOEXEC) != 0)
        return 127;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    pid_t pid;
    int rv = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rv != 0) {
        close(fds[0]);
        return 127;
    }
    size_t len = 0;
    ssize_t n;
    char sink[512];
    while ((n = read(fds[0], len + 1 < outlen ? out + len : sink,
                     len + 1 < outlen ? outlen - 1 - len : sizeof(sink))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        if (len + 1 < outlen)
            len += (size_t)n;
    }
    out[len] = 0;
    out[strcspn(out, "\n")] = 0;
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 127;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void check_init(struct check_run *cr)
{
    group("mesh-init");
    struct utsname u;
    int linux_ok = uname(&u) == 0 && strcmp(u.sysname, "Linux") == 0;
    result(cr, linux_ok, "mesh init needs Linux's netfilter (iptables NAT, SO_ORIGINAL_DST)",
           "the kernel is %s %s", linux_ok ? u.sysname : "not Linux", linux_ok ? u.release : "");
    char version[256];
    char *argv[] = {"iptables", "--version", NULL};
    int status = run_capture(argv, version, sizeof(version));
    result(cr, status == 0, "install it (Debian: apt-get install iptables); mesh init runs it",
           status == 0 ? "iptables is installed: %s" : "iptables is installed%s",
           status == 0 ? version : "");
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    int have = syscall(SYS_capget, &hdr, data) == 0;
    static const struct {
        int cap;
        const char *name;
    } caps[] = {{CAP_NET_ADMIN, "NET_ADMIN"}, {CAP_NET_RAW, "NET_RAW"}};
    for (size_t i = 0; i < 2; i++) {
        int bit = caps[i].cap;
        int ok = have && (data[bit / 32].effective & (1u << (bit % 32))) != 0;
        char hint[200];
        snprintf(hint, sizeof(hint),
                 "mesh init changes iptables rules: run it as root or with "
                 "securityContext.capabilities.add: [%s]", caps[i].name);
        result(cr, ok, hint, "has the %s capability", caps[i].name);
    }
}

/* ---- mesh-proxy: ports, admin endpoints ----------------------------------------------------- */

/* 0 when |port| can be bound on every address, else the errno. */
static int port_taken(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_ANY);
    int err = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 ? 0 : errno;
    close(fd);
    return err;
}

/* GET /ready on |addr|: the HTTP status, or -1 with |why| set. */
static int http_ready(const char *addr_text, char *why, size_t whylen)
{
    struct mesh_addr addr;
    if (mesh_addr_parse(addr_text, &addr, why, whylen) != 0)
        return -1;
    int fd = socket(addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return -1;
    }
    int status = -1;
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    if (connect(fd, (struct sockaddr *)&addr.ss, addr.len) != 0 && errno != EINPROGRESS) {
        snprintf(why, whylen, "%s", strerror(errno));
        goto out;
    }
    int soerr = 0;
    socklen_t slen = sizeof(soerr);
    if (poll(&pfd, 1, TIMEOUT_MS) != 1 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) != 0 || soerr != 0) {
        snprintf(why, whylen, "%s", soerr ? strerror(soerr) : "connect timed out");
        goto out;
    }
    static const char req[] = "GET /ready HTTP/1.0\r\nConnection: close\r\n\r\n";
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        snprintf(why, whylen, "write: %s", strerror(errno));
        goto out;
    }
    char buf[64];
    size_t len = 0;
    pfd.events = POLLIN;
    while (len < sizeof(buf) - 1 && poll(&pfd, 1, TIMEOUT_MS) == 1) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = 0;
    int code;
    if (sscanf(buf, "HTTP/1.%*d %d", &code) == 1)
        status = code;
    else
        snprintf(why, whylen, "no HTTP response");
out:
    close(fd);
    return status;
}

/* ---- mesh-collector: gRPC, store --------------------------------------------------------- */

static void check_collector(struct check_run *cr, const char *collector)
{
    Mesh__Tap__V1__StatRequest req = MESH__TAP__V1__STAT_REQUEST__INIT;
    Mesh__Tap__V1__TimeWindow window = MESH__TAP__V1__TIME_WINDOW__INIT;
    window.has_last_us = 1;
    window.last_us = 1000000; /* the last second: as cheap as a Stat gets */
    req.window = &window;
    uint8_t packed[64];
    size_t plen = mesh__tap__v1__stat_request__pack(&req, packed);
    struct mesh_buf resp;
    mesh_buf_init(&resp, 1u << 20);
    char err[512];
    int status = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rv = mesh_grpc_unary(collector, "/mesh.tap.v1.Query/Stat", packed, plen, &resp,
                             TIMEOUT_MS, &status, err, sizeof(err));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    Mesh__Tap__V1__StatResponse *r =
        rv == 0 ? mesh__tap__v1__stat_response__unpack(NULL, resp.len, (uint8_t *)resp.data)
                : NULL;
    int reachable = rv == 0 || rv == MESH_EPROTO; /* an error status is still an answer */
    char hint[700];
    snprintf(hint, sizeof(hint), "%s; start one with `mesh collector --listen %s`, or point "
                                 "--collector / MESH_COLLECTOR at it", err, collector);
    result(cr, reachable, hint, "the collector at %s is reachable", collector);
    if (reachable) {
        snprintf(hint, sizeof(hint), "%s", rv != 0 ? err : "the answer is not a StatResponse");
        result(cr, r != NULL, hint,
               "the collector answers Query/Stat (%ld ms; its version: not reported, the "
               "collector has no version RPC)", ms);
    }
    if (r != NULL)
        mesh__tap__v1__stat_response__free_unpacked(r, NULL);
    mesh_buf_free(&resp);
}

/* SQLite writes PATH, PATH-wal and PATH-shm: the file and its directory. */
static void check_store(struct check_run *cr, const char *db)
{
    char dir[4096], why[1024] = "";
    snprintf(dir, sizeof(dir), "%s", db);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    int ok = 1;
    int fd = open(db, O_RDWR | O_CLOEXEC);
    if (fd >= 0)
        close(fd);
    else if (errno != ENOENT) {
        snprintf(why, sizeof(why), "%.300s: %s", db, strerror(errno));
        ok = 0;
    }
    if (ok) {
        char probe[4200];
        snprintf(probe, sizeof(probe), "%s/.mesh-check-XXXXXX", dir);
        fd = mkstemp(probe);
        if (fd < 0) {
            snprintf(why, sizeof(why),
                     "%.200s: %s (SQLite needs to create %.200s-wal and %.200s-shm beside the store)", dir,
                     strerror(errno), db, db);
            ok = 0;
        } else {
            close(fd);
            unlink(probe);
        }
    }
    result(cr, ok, why, "the store %s is writable", db);
}

/* ---- the command ------------------------------------------------------------------------------ */

static const char USAGE[] =
    "Usage: mesh check [--pre] [options]\n"
    "\n"
    "Checks, in groups, that the mesh can run (--pre) or is running here: the kernel\n"
    "and iptables, the NET_ADMIN and NET_RAW capabilities of `mesh init`, the\n"
    "proxy's ports (free with --pre, else its admin endpoints answering /ready),\n"
    "the collector answering gRPC, the store writable. ✓ or × per check, a hint under\n"
    "each ×; the exit status is 1 when any check fails. Colours on a terminal\n"
    "unless NO_COLOR is set.\n"
    "\n"
    "Options:\n"
    "      --pre               before installing: ports must be free\n"
    "      --ports LIST        the proxy's ports [4140,4143,4191]\n"
    "      --admin ADDR        a proxy admin endpoint (repeatable) [127.0.0.1:4191]\n"
    "      --collector ADDR    [$MESH_COLLECTOR, else 127.0.0.1:8088]\n"
    "      --db PATH           also check that this store is writable\n"
    "  -h, --help\n"
    "\n"
    "Examples:\n"
    "  mesh check --pre\n"
    "  mesh check --collector 127.0.0.1:8088 --admin 127.0.0.1:4191 --db /var/lib/mesh/mesh.db\n";

static int usage_error(const char *what, const char *why)
{
    fprintf(stderr, "mesh check: %s: %s (see mesh check --help)\n", what, why);
    return MESH_EXIT_USAGE;
}

static int parse_ports(const char *list, unsigned *ports, size_t *nports)
{
    *nports = 0;
    for (const char *at = list; *at != 0;) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(at, &end, 10);
        if (errno != 0 || end == at || v == 0 || v > 65535 || (*end != ',' && *end != 0) ||
            *nports == MAX_PORTS || (*end == ',' && end[1] == 0) || *at == '-' || *at == '+')
            return -1;
        ports[(*nports)++] = (unsigned)v;
        at = *end == ',' ? end + 1 : end;
    }
    return *nports > 0 ? 0 : -1;
}

int mesh_check_main(int argc, char **argv)
{
    enum { OPT_PRE = 256, OPT_PORTS, OPT_ADMIN, OPT_COLLECTOR, OPT_DB };
    static const struct option long_opts[] = {
        {"pre", no_argument, NULL, OPT_PRE},
        {"ports", required_argument, NULL, OPT_PORTS},
        {"admin", required_argument, NULL, OPT_ADMIN},
        {"collector", required_argument, NULL, OPT_COLLECTOR},
        {"db", required_argument, NULL, OPT_DB},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    unsigned ports[MAX_PORTS] = {4140, 4143, 4191};
    size_t nports = 3, nadmins = 0;
    const char *admins[MAX_ADMINS];
    const char *collector = getenv("MESH_COLLECTOR"), *db = NULL;
    if (collector == NULL || *collector == 0)
        collector = "127.0.0.1:8088";
    int pre = 0, opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        struct mesh_addr addr;
        char why[256];
        switch (opt) {
        case 'h': fputs(USAGE, stdout); return MESH_EXIT_OK;
        case OPT_PRE: pre = 1; break;
        case OPT_PORTS:
            if (parse_ports(optarg, ports, &nports) != 0)
                return usage_error(optarg, "--ports: expected up to 16 ports like 4140,4143,4191");
            break;
        case OPT_ADMIN:
            if (mesh_addr_parse(optarg, &addr, why, sizeof(why)) != 0)
                return usage_error("--admin", why);
            if (nadmins == MAX_ADMINS)
                return usage_error("--admin", "at most 16");
            admins[nadmins++] = optarg;
            break;
        case OPT_COLLECTOR:
            if (mesh_addr_parse(optarg, &addr, why, sizeof(why)) != 0)
                return usage_error("--collector", why);
            collector = optarg;
            break;
        case OPT_DB: db = optarg; break;
        default:
            return usage_error(argv[optind - 1], optopt ? "needs a value" : "unknown option");
        }
    }
    if (optind < argc)
        return usage_error(argv[optind], "unexpected argument");
    if (nadmins == 0)
        admins[nadmins++] = "127.0.0.1:4191";
    const char *no_color = getenv("NO_COLOR");
    struct check_run cr = {.color = isatty(STDOUT_FILENO) && (no_color == NULL || *no_color == 0)};

    check_init(&cr);
    group("mesh-proxy");
    if (pre) {
        for (size_t i = 0; i < nports; i++) {
            int err = port_taken(ports[i]);
            char hint[200];
            snprintf(hint, sizeof(hint), "%s: stop what listens there, or give the proxy "
                                         "other ports (and `mesh check --ports`)",
                     strerror(err));
            result(&cr, err == 0, hint, "port %u is free", ports[i]);
        }
    } else {
        for (size_t i = 0; i < nadmins; i++) {
            char why[300] = "", hint[400];
            int code = http_ready(admins[i], why, sizeof(why));
            if (code > 0)
                snprintf(why, sizeof(why), "answered %d", code);
            snprintf(hint, sizeof(hint), "%s: is mesh-proxy running with --admin %s? (503: it "
                                         "is draining)", why, admins[i]);
            result(&cr, code == 200, hint, "the proxy admin endpoint %s answers /ready",
                   admins[i]);
        }
    }
    group("mesh-collector");
    check_collector(&cr, collector);
    if (db != NULL)
        check_store(&cr, db);
    printf("\nStatus check results are %s\n", cr.failed ? "\u00d7" : "\u2713");
    fflush(stdout);
    return cr.failed ? MESH_EXIT_RUNTIME : MESH_EXIT_OK;
}
