/* proxy/init.c — `mesh init` (contract in init.h).
 *
 * The rules are linkerd2-proxy-init's: PREROUTING jumps to PROXY_INIT_REDIRECT
 * (ignored inbound ports and source subnets return, other TCP goes to the
 * inbound port); OUTPUT jumps to PROXY_INIT_OUTPUT (the proxy's uid returns,
 * except towards non-loopback local addresses — the pod calling itself by its
 * IP — which takes the redirect chain; loopback returns; ignored outbound
 * ports and subnets return; other TCP goes to the outbound port). Commands are
 * plain iptables(8) invocations rather than one iptables-restore: the same
 * text works with the nft backend (Debian 12's default) and the legacy one,
 * and each failure names the one rule that failed.
 */
#define _GNU_SOURCE
#include "init.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mesh/err.h"

extern char **environ;

#define REDIRECT_CHAIN "PROXY_INIT_REDIRECT"
#define OUTPUT_CHAIN "PROXY_INIT_OUTPUT"
#define COMMENT "mesh-init"
#define MULTIPORT_MAX 15u /* iptables' multiport limit; a range counts twice */
#define MAX_SAVE (4u << 20)
#define MAX_ARGS 64

/* ---- the plan ------------------------------------------------------------------------------ */

static const char *binary(const struct mesh_init_cfg *cfg, int family, int save)
{
    static char name[64];
    const char *mode = cfg->mode;
    snprintf(name, sizeof(name), "%s%s%s%s", family == 6 ? "ip6tables" : "iptables",
             mode ? "-" : "", mode ? mode : "", save ? "-save" : "");
    return name;
}

static int parse_port(const char *text, size_t len, unsigned *port)
{
    if (len == 0 || len > 5)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(text[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

/* "4190,4191,5000-5010" into multiport rules of at most 15 ports each. */
static int put_port_rules(struct mesh_buf *out, const char *cmd, const char *chain,
                          const char *list, const char *what, char *err, size_t errlen)
{
    char group[512];
    size_t glen = 0;
    unsigned units = 0;
    for (const char *at = list; *at != 0;) {
        size_t len = strcspn(at, ",");
        const char *dash = memchr(at, '-', len);
        unsigned lo, hi;
        int bad = dash ? parse_port(at, (size_t)(dash - at), &lo) != 0 ||
                             parse_port(dash + 1, len - (size_t)(dash - at) - 1, &hi) != 0 ||
                             lo > hi
                       : parse_port(at, len, &lo) != 0;
        if (bad || len >= 16) {
            snprintf(err, errlen, "%s %s: expected ports or ranges like 4190,4191,5000-5010",
                     what, list);
            return MESH_EINVAL;
        }
        unsigned cost = dash ? 2 : 1;
        if (units + cost > MULTIPORT_MAX) {
            group[glen] = 0;
            mesh_buf_printf(out,
                            "%s -t nat -A %s -p tcp -m multiport --dports %s -m comment "
                            "--comment " COMMENT "/ignore-port-%s -j RETURN\n",
                            cmd, chain, group, group);
            glen = units = 0;
        }
        if (glen + len + 2 >= sizeof(group)) {
            snprintf(err, errlen, "%s %s: too long", what, list);
            return MESH_EINVAL;
        }
        if (glen > 0)
            group[glen++] = ',';
        memcpy(group + glen, at, len);
        if (dash != NULL)
            group[glen + (size_t)(dash - at)] = ':'; /* multiport writes ranges A:B */
        glen += len;
        group[glen] = 0;
        units += cost;
        at += len;
        if (*at == ',')
            at++;
        if (*at == 0 && at[-1] == ',') {
            snprintf(err, errlen, "%s %s: ends with a comma", what, list);
            return MESH_EINVAL;
        }
    }
    if (glen > 0)
        mesh_buf_printf(out,
                        "%s -t nat -A %s -p tcp -m multiport --dports %s -m comment "
                        "--comment " COMMENT "/ignore-port-%s -j RETURN\n",
                        cmd, chain, group, group);
    return 0;
}

/* "10.0.0.0/8,fd00::/8": the subnets of |family|, as RETURN rules matching
 * the source (-s) or the destination (-d). */
static int put_subnet_rules(struct mesh_buf *out, const char *cmd, const char *chain, int family,
                            const char *list, const char *flag, const char *what, char *err,
                            size_t errlen)
{
    for (const char *at = list; *at != 0;) {
        size_t len = strcspn(at, ",");
        char text[64], addr[64];
        unsigned char bin[16];
        const char *slash = memchr(at, '/', len);
        unsigned prefix = 0;
        int v6 = memchr(at, ':', len) != NULL;
        int ok = len > 0 && len < sizeof(text) && slash != NULL;
        if (ok) {
            memcpy(text, at, len);
            text[len] = 0;
            size_t alen = (size_t)(slash - at);
            memcpy(addr, at, alen);
            addr[alen] = 0;
            char *end;
            errno = 0;
            unsigned long p = strtoul(text + alen + 1, &end, 10);
            prefix = (unsigned)p;
            ok = *end == 0 && end != text + alen + 1 && errno == 0 && p <= (v6 ? 128u : 32u) &&
                 inet_pton(v6 ? AF_INET6 : AF_INET, addr, bin) == 1;
        }
        if (!ok) {
            snprintf(err, errlen, "%s %s: expected subnets like 10.0.0.0/8,fd00::/8", what, list);
            return MESH_EINVAL;
        }
        if ((family == 6) == v6)
            mesh_buf_printf(out,
                            "%s -t nat -A %s %s %s/%u -m comment --comment " COMMENT
                            "/ignore-subnet-%s/%u -j RETURN\n",
                            cmd, chain, flag, addr, prefix, addr, prefix);
        at += len;
        if (*at == ',' && *++at == 0) {
            snprintf(err, errlen, "%s %s: ends with a comma", what, list);
            return MESH_EINVAL;
        }
    }
    return 0;
}

/* Does |saved| (iptables-save text) hold a line starting with |prefix| and
 * containing |needle| (NULL: any)? */
static int saved_has(const char *saved, const char *prefix, const char *needle)
{
    if (saved == NULL)
        return 0;
    size_t plen = strlen(prefix);
    for (const char *line = saved; *line != 0;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len >= plen && memcmp(line, prefix, plen) == 0) {
            if (needle == NULL)
                return 1;
            size_t nlen = strlen(needle);
            for (size_t i = 0; i + nlen <= len; i++)
                if (memcmp(line + i, needle, nlen) == 0)
                    return 1;
        }
        line += len + (nl != NULL);
    }
    return 0;
}

/* A new chain, or the old one emptied: rules never pile up over runs. */
static void put_chain(struct mesh_buf *out, const char *cmd, const char *chain, const char *saved)
{
    char decl[64];
    snprintf(decl, sizeof(decl), ":%s ", chain);
    mesh_buf_printf(out, "%s -t nat -%s %s\n", cmd, saved_has(saved, decl, NULL) ? "F" : "N",
                    chain);
}

static void put_hook(struct mesh_buf *out, const char *cmd, const char *from, const char *chain,
                     const char *what, const char *saved)
{
    char prefix[64], jump[64];
    snprintf(prefix, sizeof(prefix), "-A %s ", from);
    snprintf(jump, sizeof(jump), "-j %s", chain);
    if (!saved_has(saved, prefix, jump))
        mesh_buf_printf(out, "%s -t nat -A %s -m comment --comment " COMMENT "/%s -j %s\n", cmd,
                        from, what, chain);
}

int mesh_init_plan(const struct mesh_init_cfg *cfg, int family, const char *saved,
                   struct mesh_buf *out, char *err, size_t errlen)
{
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "%s%s", binary(cfg, family, 0),
             cfg->mode && strcmp(cfg->mode, "legacy") == 0 ? " -w 5" : "");
    const char *loopback = family == 6 ? "::1/128" : "127.0.0.1/32";

    put_chain(out, cmd, REDIRECT_CHAIN, saved);
    if (cfg->inbound_ignore_ports && put_port_rules(out, cmd, REDIRECT_CHAIN,
                                                    cfg->inbound_ignore_ports,
                                                    "--inbound-ports-to-ignore", err, errlen))
        return MESH_EINVAL;
    if (cfg->inbound_ignore_subnets &&
        put_subnet_rules(out, cmd, REDIRECT_CHAIN, family, cfg->inbound_ignore_subnets, "-s",
                         "--subnets-to-ignore", err, errlen))
        return MESH_EINVAL;
    mesh_buf_printf(out,
                    "%s -t nat -A " REDIRECT_CHAIN " -p tcp -m comment --comment " COMMENT
                    "/redirect-all-incoming-to-proxy-port -j REDIRECT --to-port %u\n",
                    cmd, cfg->inbound_port);
    put_hook(out, cmd, "PREROUTING", REDIRECT_CHAIN, "install-proxy-init-prerouting", saved);

    put_chain(out, cmd, OUTPUT_CHAIN, saved);
    mesh_buf_printf(out,
                    "%s -t nat -A " OUTPUT_CHAIN " -o lo ! -d %s -m owner --uid-owner %u "
                    "-m comment --comment " COMMENT "/redirect-non-loopback-local-traffic "
                    "-j " REDIRECT_CHAIN "\n",
                    cmd, loopback, cfg->proxy_uid);
    mesh_buf_printf(out,
                    "%s -t nat -A " OUTPUT_CHAIN " -m owner --uid-owner %u -m comment "
                    "--comment " COMMENT "/ignore-proxy-user-id -j RETURN\n",
                    cmd, cfg->proxy_uid);
    mesh_buf_printf(out,
                    "%s -t nat -A " OUTPUT_CHAIN " -o lo -m comment --comment " COMMENT
                    "/ignore-loopback -j RETURN\n",
                    cmd);
    if (cfg->outbound_ignore_ports && put_port_rules(out, cmd, OUTPUT_CHAIN,
                                                     cfg->outbound_ignore_ports,
                                                     "--outbound-ports-to-ignore", err, errlen))
        return MESH_EINVAL;
    if (cfg->outbound_ignore_subnets &&
        put_subnet_rules(out, cmd, OUTPUT_CHAIN, family, cfg->outbound_ignore_subnets, "-d",
                         "--outbound-subnets-to-ignore", err, errlen))
        return MESH_EINVAL;
    mesh_buf_printf(out,
                    "%s -t nat -A " OUTPUT_CHAIN " -p tcp -m comment --comment " COMMENT
                    "/redirect-all-outgoing-to-proxy-port -j REDIRECT --to-port %u\n",
                    cmd, cfg->outbound_port);
    put_hook(out, cmd, "OUTPUT", OUTPUT_CHAIN, "install-proxy-init-output", saved);
    return 0;
}

/* ---- running iptables ------------------------------------------------------------------------ */

/* Runs |argv| (no shell). With |capture|, its stdout is appended there.
 * Returns the exit status, 127 when it could not be started. */
static int run(char *const argv[], struct mesh_buf *capture)
{
    int fds[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (capture != NULL) {
        if (pipe2(fds, O_CLOEXEC) != 0) {
            posix_spawn_file_actions_destroy(&fa);
            return 127;
        }
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    }
    pid_t pid;
    int rv = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (capture != NULL)
        close(fds[1]);
    if (rv != 0) {
        if (capture != NULL)
            close(fds[0]);
        errno = rv;
        return 127;
    }
    if (capture != NULL) {
        char chunk[4096];
        ssize_t n;
        while ((n = read(fds[0], chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR))
            if (n > 0)
                mesh_buf_append(capture, chunk, (size_t)n); /* past the cap: cut, not fatal */
        close(fds[0]);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 127;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The nat table of |family| into |out|; 0, or the failing status. */
static int save_rules(const struct mesh_init_cfg *cfg, int family, struct mesh_buf *out)
{
    char bin[64];
    snprintf(bin, sizeof(bin), "%s", binary(cfg, family, 1));
    char *argv[] = {bin, "-t", "nat", NULL};
    mesh_buf_reset(out);
    int status = run(argv, out);
    if (out->data == NULL)
        mesh_buf_append(out, "", 0);
    return status;
}

static void print_rules(const char *title, const char *bin, const struct mesh_buf *rules)
{
    printf("mesh init: %s (%s -t nat):\n", title, bin);
    for (const char *line = rules->data; line != NULL && *line != 0;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        printf("  %.*s\n", (int)len, line);
        line += len + (nl != NULL);
    }
}

/* Runs every line of |plan|, echoing it first. 0, or 1 after one line on stderr. */
static int run_plan(char *plan)
{
    char *save = NULL;
    for (char *line = strtok_r(plan, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char copy[1024];
        snprintf(copy, sizeof(copy), "%s", line);
        printf("+ %s\n", copy);
        fflush(stdout);
        char *argv[MAX_ARGS + 1], *arg_save = NULL;
        int argc = 0;
        for (char *arg = strtok_r(line, " ", &arg_save); arg != NULL && argc < MAX_ARGS;
             arg = strtok_r(NULL, " ", &arg_save))
            argv[argc++] = arg;
        argv[argc] = NULL;
        int status = run(argv, NULL);
        if (status != 0) {
            if (status == 127)
                fprintf(stderr, "mesh init: %s: cannot run it (%s; Debian: apt-get install "
                                "iptables)\n", argv[0], strerror(errno));
            else
                fprintf(stderr, "mesh init: `%s` failed with status %d\n", copy, status);
            return 1;
        }
    }
    return 0;
}

/* ---- the command ---------------------------------------------------------------------------- */

static const char USAGE[] =
    "Usage: mesh init [options]\n"
    "\n"
    "The init container's job: installs the iptables NAT rules that send every TCP\n"
    "connection of this network namespace through a transparent mesh-proxy\n"
    "(`mesh-proxy --transparent`), as Linkerd's proxy-init does. Chains\n"
    "PROXY_INIT_REDIRECT (from PREROUTING) and PROXY_INIT_OUTPUT (from OUTPUT), rules\n"
    "tagged with `mesh-init/…` comments; running it again flushes and refills the\n"
    "chains. The nat table is printed before and after. Needs NET_ADMIN and NET_RAW.\n"
    "\n"
    "Options:\n"
    "      --incoming-proxy-port PORT       the proxy's inbound listener [4143]\n"
    "      --outgoing-proxy-port PORT       the proxy's outbound listener [4140]\n"
    "      --proxy-uid UID                  the proxy's user: its traffic is not\n"
    "                                       redirected [2102]\n"
    "      --inbound-ports-to-ignore LIST   ports (and A-B ranges) not redirected\n"
    "                                       inbound [4190,4191]\n"
    "      --outbound-ports-to-ignore LIST  the same, outbound [none]\n"
    "      --subnets-to-ignore LIST         inbound from these subnets is not\n"
    "                                       redirected (10.0.0.0/8,fd00::/8) [none]\n"
    "      --outbound-subnets-to-ignore LIST  outbound to these is not [none]\n"
    "      --ipv6                           the same rules with ip6tables too\n"
    "      --iptables-mode nft|legacy       iptables-nft / iptables-legacy instead of\n"
    "                                       the system's `iptables`\n"
    "      --dry-run                        print the commands, change nothing\n"
    "      --rules-from FILE                with --dry-run: take FILE as the current\n"
    "                                       `iptables-save -t nat` output\n"
    "  -h, --help\n"
    "\n"
    "Examples:\n"
    "  mesh init --dry-run\n"
    "  mesh init --proxy-uid 2102 --outbound-ports-to-ignore 8088 --ipv6\n";

enum {
    OPT_IN_PORT = 256, OPT_OUT_PORT, OPT_UID, OPT_IN_IGNORE, OPT_OUT_IGNORE, OPT_SUBNETS,
    OPT_OUT_SUBNETS, OPT_IPV6, OPT_MODE, OPT_DRY_RUN, OPT_RULES_FROM,
};

static const struct option LONG_OPTS[] = {
    {"incoming-proxy-port", required_argument, NULL, OPT_IN_PORT},
    {"outgoing-proxy-port", required_argument, NULL, OPT_OUT_PORT},
    {"proxy-uid", required_argument, NULL, OPT_UID},
    {"inbound-ports-to-ignore", required_argument, NULL, OPT_IN_IGNORE},
    {"outbound-ports-to-ignore", required_argument, NULL, OPT_OUT_IGNORE},
    {"subnets-to-ignore", required_argument, NULL, OPT_SUBNETS},
    {"outbound-subnets-to-ignore", required_argument, NULL, OPT_OUT_SUBNETS},
    {"ipv6", no_argument, NULL, OPT_IPV6},
    {"iptables-mode", required_argument, NULL, OPT_MODE},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"simulate", no_argument, NULL, OPT_DRY_RUN}, /* proxy-init's name */
    {"rules-from", required_argument, NULL, OPT_RULES_FROM},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int usage_error(const char *what, const char *why)
{
    fprintf(stderr, "mesh init: %s: %s (see mesh init --help)\n", what, why);
    return MESH_EXIT_USAGE;
}

static int number_opt(const char *name, const char *text, unsigned long max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != 0 || text[0] == '-' || v > max) {
        char what[96];
        snprintf(what, sizeof(what), "%s %s", name, text);
        usage_error(what, "expected a number in range");
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static int read_file(const char *path, struct mesh_buf *out)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return usage_error(path, strerror(errno)), -1;
    char chunk[4096];
    size_t n;
    int rv = 0;
    while (rv == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rv = mesh_buf_append(out, chunk, n);
    if (rv == 0 && out->data == NULL)
        rv = mesh_buf_append(out, "", 0);
    int failed = ferror(f) || rv != 0;
    fclose(f);
    if (failed)
        return usage_error(path, "cannot read it (over 4 MiB?)"), -1;
    return 0;
}

int mesh_init_main(int argc, char **argv)
{
    struct mesh_init_cfg cfg = {
        .inbound_port = 4143, .outbound_port = 4140, .proxy_uid = 2102,
        .inbound_ignore_ports = "4190,4191",
    };
    int dry_run = 0, ipv6 = 0, opt;
    const char *rules_from = NULL;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", LONG_OPTS, NULL)) != -1) {
        switch (opt) {
        case 'h': fputs(USAGE, stdout); return MESH_EXIT_OK;
        case OPT_IN_PORT:
            if (number_opt("--incoming-proxy-port", optarg, 65535, &cfg.inbound_port) ||
                cfg.inbound_port == 0)
                return MESH_EXIT_USAGE;
            break;
        case OPT_OUT_PORT:
            if (number_opt("--outgoing-proxy-port", optarg, 65535, &cfg.outbound_port) ||
                cfg.outbound_port == 0)
                return MESH_EXIT_USAGE;
            break;
        case OPT_UID:
            if (number_opt("--proxy-uid", optarg, 4294967294ul, &cfg.proxy_uid))
                return MESH_EXIT_USAGE;
            break;
        case OPT_IN_IGNORE: cfg.inbound_ignore_ports = *optarg ? optarg : NULL; break;
        case OPT_OUT_IGNORE: cfg.outbound_ignore_ports = *optarg ? optarg : NULL; break;
        case OPT_SUBNETS: cfg.inbound_ignore_subnets = *optarg ? optarg : NULL; break;
        case OPT_OUT_SUBNETS: cfg.outbound_ignore_subnets = *optarg ? optarg : NULL; break;
        case OPT_IPV6: ipv6 = 1; break;
        case OPT_MODE:
            if (strcmp(optarg, "nft") != 0 && strcmp(optarg, "legacy") != 0)
                return usage_error(optarg, "--iptables-mode is nft or legacy");
            cfg.mode = optarg;
            break;
        case OPT_DRY_RUN: dry_run = 1; break;
        case OPT_RULES_FROM: rules_from = optarg; break;
        default:
            return usage_error(argv[optind - 1], optopt ? "needs a value" : "unknown option");
        }
    }
    if (optind < argc)
        return usage_error(argv[optind], "unexpected argument");
    if (rules_from != NULL && !dry_run)
        return usage_error("--rules-from", "only with --dry-run");

    int status = MESH_EXIT_OK;
    struct mesh_buf saved, plan;
    mesh_buf_init(&saved, MAX_SAVE);
    mesh_buf_init(&plan, 1u << 20);
    for (int family = 4; family <= 6 && status == MESH_EXIT_OK; family += ipv6 ? 2 : 3) {
        char err[300], save_bin[64];
        snprintf(save_bin, sizeof(save_bin), "%s", binary(&cfg, family, 1));
        mesh_buf_reset(&plan);
        mesh_buf_reset(&saved);
        const char *state = NULL;
        if (rules_from != NULL) {
            if (read_file(rules_from, &saved) != 0) {
                status = MESH_EXIT_USAGE;
                break;
            }
            state = saved.data;
        } else if (save_rules(&cfg, family, &saved) == 0) {
            state = saved.data;
        } else if (!dry_run) {
            fprintf(stderr, "mesh init: %s -t nat failed: cannot read the current rules "
                            "(root, or NET_ADMIN, needed; Debian: apt-get install iptables)\n",
                    save_bin);
            status = MESH_EXIT_RUNTIME;
            break;
        } else {
            fprintf(stderr, "mesh init: %s -t nat failed: planning for a namespace without "
                            "rules\n", save_bin);
        }
        if (mesh_init_plan(&cfg, family, state, &plan, err, sizeof(err)) != 0) {
            fprintf(stderr, "mesh init: %s\n", err);
            status = MESH_EXIT_USAGE;
            break;
        }
        if (dry_run) {
            fputs(plan.data ? plan.data : "", stdout);
            continue;
        }
        print_rules("nat rules before", save_bin, &saved);
        if (run_plan(plan.data) != 0) {
            status = MESH_EXIT_RUNTIME;
            break;
        }
        if (save_rules(&cfg, family, &saved) == 0)
            print_rules("nat rules after", save_bin, &saved);
    }
    fflush(stdout);
    mesh_buf_free(&saved);
    mesh_buf_free(&plan);
    return status;
}
