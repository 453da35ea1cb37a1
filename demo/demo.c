/* demo/demo.c — `mesh demo`: start, watch and stop the meshed emojivoto.
 *
 * Every child gets its own process group (Ctrl-C reaches only us, and we stop them in
 * order: the bot first, the collector last so that the final events land), an empty
 * signal mask (ours blocks what we wait for with sigtimedwait, and a mask survives exec),
 * and PR_SET_PDEATHSIG, so that nothing outlives us even if we are killed with SIGKILL.
 * Ports: 8088 for the collector when free; every other port is one the kernel just gave
 * a socket bound to port 0 and that nothing listens on; logs and the store go into a
 * directory of our own that is removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "demo.h"
#include "mesh/err.h"
#include "mesh/fmt.h"
#include "mesh/loop.h"

#define MAX_PROCS      16
#define READY_TIMEOUT  30000 /* ms; a busy machine, a sanitizer build */
#define STOP_TIMEOUT   5000  /* ms between SIGTERM and SIGKILL */
#define NS             "emojivoto"

struct proc {
    const char *name;
    pid_t pid; /* 0 once reaped */
    int status;
    char log[PATH_MAX];
};

struct demo {
    char self[PATH_MAX], proxy[PATH_MAX], dir[1024], db[PATH_MAX], state[PATH_MAX];
    char targets[PATH_MAX + 16]; /* Prometheus file_sd: the sidecars' admin addresses */
    const char *argv0;
    struct proc procs[MAX_PROCS];
    size_t nprocs;
    int ports[32];
    size_t nports;
    int collector_port;
    int stop_signal; /* SIGINT/SIGTERM/SIGHUP received */
    int keep_db;
    sigset_t waited; /* blocked, taken with sigtimedwait */
};

/* --- the state file ----------------------------------------------------------------------- */

void mesh_demo_state_path(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg != NULL && xdg[0] == '/')
        snprintf(buf, len, "%s/mesh/demo.addr", xdg);
    else
        snprintf(buf, len, "/tmp/mesh-demo-%u.addr", (unsigned)getuid());
}

/* 1 when |pid| is a live `mesh demo` (not a reused pid). */
static int demo_alive(pid_t pid)
{
    char path[64], cmd[256];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, cmd, sizeof(cmd) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    cmd[n] = 0;
    const char *arg1 = cmd + strlen(cmd) + 1; /* argv[1] */
    return arg1 < cmd + n && strcmp(arg1, "demo") == 0;
}

int mesh_demo_collector(char *buf, size_t len)
{
    char path[PATH_MAX], line[128], addr[96];
    mesh_demo_state_path(path, sizeof(path));
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    int pid = 0;
    int ok = fgets(line, sizeof(line), f) != NULL && sscanf(line, "%95s %d", addr, &pid) == 2;
    fclose(f);
    if (!ok || pid <= 0 || !demo_alive(pid))
        return -1;
    snprintf(buf, len, "%s", addr);
    return 0;
}

static int write_state(struct demo *d)
{
    char tmp[PATH_MAX + 8], dir[PATH_MAX];
    mesh_demo_state_path(d->state, sizeof(d->state));
    snprintf(dir, sizeof(dir), "%s", d->state);
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = 0;
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return -1;
    }
    snprintf(tmp, sizeof(tmp), "%s.%d", d->state, (int)getpid());
    FILE *f = fopen(tmp, "we");
    if (f == NULL)
        return -1;
    fprintf(f, "127.0.0.1:%d %d\n", d->collector_port, (int)getpid());
    if (fclose(f) != 0 || rename(tmp, d->state) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Removes the state file if it is still ours (another demo may have started since). */
static void remove_state(struct demo *d)
{
    char line[128], addr[96];
    int pid = 0;
    if (d->state[0] == 0)
        return;
    FILE *f = fopen(d->state, "re");
    if (f == NULL)
        return;
    int ours = fgets(line, sizeof(line), f) != NULL &&
               sscanf(line, "%95s %d", addr, &pid) == 2 && pid == (int)getpid();
    fclose(f);
    if (ours) {
        unlink(d->state);
        if (d->targets[0])
            unlink(d->targets);
    }
}

/* The state file's neighbour for Prometheus (dashboards/prometheus/prometheus.yml):
 * demo.addr → demo-targets.json, mesh-demo-0.addr → mesh-demo-0-targets.json. */
static void targets_path(const struct demo *d, char *buf, size_t len)
{
    size_t n = strlen(d->state);
    if (n > 5 && strcmp(d->state + n - 5, ".addr") == 0)
        n -= 5;
    snprintf(buf, len, "%.*s-targets.json", (int)n, d->state);
}

struct target {
    const char *deploy, *pod;
    int admin_port;
};

/* Writes the file_sd targets (one group per sidecar, its workload as labels) and
 * replaces the file at once, so Prometheus never reads half of it. */
static int write_targets(struct demo *d, const struct target *t, size_t n)
{
    char tmp[PATH_MAX + 32];
    targets_path(d, d->targets, sizeof(d->targets));
    snprintf(tmp, sizeof(tmp), "%s.%d", d->targets, (int)getpid());
    FILE *f = fopen(tmp, "we");
    if (f == NULL) {
        fprintf(stderr, "mesh demo: %s: %s (no Prometheus targets)\n", tmp, strerror(errno));
        d->targets[0] = 0; /* not ours to remove at the end */
        return -1;
    }
    fputs("[\n", f);
    for (size_t i = 0; i < n; i++)
        fprintf(f,
                "  {\"targets\": [\"127.0.0.1:%d\"], \"labels\": {\"namespace\": \"" NS "\", "
                "\"deployment\": \"%s\", \"pod\": \"%s\"}}%s\n",
                t[i].admin_port, t[i].deploy, t[i].pod, i + 1 < n ? "," : "");
    fputs("]\n", f);
    if (fclose(f) != 0 || rename(tmp, d->targets) != 0) {
        fprintf(stderr, "mesh demo: %s: %s (no Prometheus targets)\n", d->targets, strerror(errno));
        unlink(tmp);
        d->targets[0] = 0;
        return -1;
    }
    return 0;
}

/* --- ports -------------------------------------------------------------------------------- */

static int port_taken(const struct demo *d, int port)
{
    for (size_t i = 0; i < d->nports; i++)
        if (d->ports[i] == port)
            return 1;
    return 0;
}

/* Binds 127.0.0.1:|port| (0: any) and closes: the port, or -1 if it is in use. */
static int try_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int rv = -1;
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
        rv = ntohs(sin.sin_port);
    close(fd);
    return rv;
}

static int pick_port(struct demo *d)
{
    for (int tries = 0; tries < 100; tries++) {
        int port = try_port(0);
        if (port > 0 && !port_taken(d, port) && d->nports < sizeof(d->ports) / sizeof(d->ports[0])) {
            d->ports[d->nports++] = port;
            return port;
        }
    }
    return -1;
}

/* --- processes ---------------------------------------------------------------------------- */

static struct proc *spawn(struct demo *d, const char *name, char *const argv[])
{
    if (d->nprocs == MAX_PROCS)
        return NULL;
    struct proc *p = &d->procs[d->nprocs];
    memset(p, 0, sizeof(*p));
    p->name = name;
    snprintf(p->log, sizeof(p->log), "%s/%s.log", d->dir, name);
    int logfd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (logfd < 0 || nullfd < 0) {
        fprintf(stderr, "mesh demo: %s: %s\n", p->log, strerror(errno));
        goto fail;
    }
    pid_t parent = getpid();
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "mesh demo: fork: %s\n", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* we died before prctl took */
            _exit(1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        dup2(nullfd, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        execv(argv[0], argv);
        fprintf(stderr, "mesh demo: %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(logfd);
    close(nullfd);
    p->pid = pid;
    d->nprocs++;
    return p;
fail:
    if (logfd >= 0)
        close(logfd);
    if (nullfd >= 0)
        close(nullfd);
    return NULL;
}

/* Reaps children that ended. Returns the first of ours that did, or NULL. */
static struct proc *reap(struct demo *d)
{
    struct proc *ended = NULL;
    for (size_t i = 0; i < d->nprocs; i++) {
        struct proc *p = &d->procs[i];
        if (p->pid > 0 && waitpid(p->pid, &p->status, WNOHANG) == p->pid) {
            p->pid = 0;
            if (ended == NULL)
                ended = p;
        }
    }
    return ended;
}

/* Sleeps up to |ms|, waking for a signal; notes SIGINT/SIGTERM/SIGHUP. */
static void nap(struct demo *d, unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    int sig = sigtimedwait(&d->waited, NULL, &ts);
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)
        d->stop_signal = sig;
}

static void describe_exit(const struct proc *p, char *buf, size_t len)
{
    if (WIFEXITED(p->status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(p->status));
    else if (WIFSIGNALED(p->status))
        snprintf(buf, len, "killed by %s", strsignal(WTERMSIG(p->status)));
    else
        snprintf(buf, len, "ended");
}

/* Prints the last lines of |p|'s log, to say why it failed. */
static void show_log(const struct proc *p)
{
    char buf[2048];
    int fd = open(p->log, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, from);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = 0;
    fprintf(stderr, "---- %s (last lines) ----\n%s%s", p->log, buf, buf[n - 1] == '\n' ? "" : "\n");
}

static int log_has(const struct proc *p, const char *needle, char *line, size_t linelen)
{
    static char buf[65536];
    int fd = open(p->log, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    const char *at = strstr(buf, needle);
    if (at == NULL)
        return 0;
    if (line != NULL) {
        while (at > buf && at[-1] != '\n')
            at--;
        size_t len = strcspn(at, "\n");
        snprintf(line, linelen, "%.*s", (int)len, at);
    }
    return 1;
}

/* Waits until |p| logs |needle| (its line into |line|) or, with |admin_port|, until its
 * /ready answers 200. 0; -1 when it ended, timed out or we were told to stop. */
static int wait_ready(struct demo *d, struct proc *p, const char *needle, int admin_port,
                      char *line, size_t linelen)
{
    uint64_t deadline = mesh_loop_now_us() + READY_TIMEOUT * 1000ull;
    char addr[32], err[256];
    struct mesh_buf body;
    mesh_buf_init(&body, 4096);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", admin_port);
    int rv = -1;
    while (!d->stop_signal) {
        if (needle != NULL && log_has(p, needle, line, linelen)) {
            rv = 0;
            break;
        }
        if (admin_port > 0) {
            int fd = -1;
            int status = demo_http_get(&fd, addr, addr, "/ready", &body, 1000, err, sizeof(err));
            if (fd >= 0)
                close(fd);
            if (status == 200) {
                rv = 0;
                break;
            }
        }
        struct proc *ended = reap(d);
        if (ended != NULL) {
            char how[96];
            describe_exit(ended, how, sizeof(how));
            fprintf(stderr, "mesh demo: %s %s while starting\n", ended->name, how);
            show_log(ended);
            break;
        }
        if (mesh_loop_now_us() > deadline) {
            fprintf(stderr, "mesh demo: %s not ready after %d s\n", p->name, READY_TIMEOUT / 1000);
            show_log(p);
            break;
        }
        nap(d, 50);
    }
    mesh_buf_free(&body);
    return rv;
}

/* SIGTERM to procs [from, to) (newest first), then SIGKILL after STOP_TIMEOUT. */
static void stop_range(struct demo *d, size_t from, size_t to)
{
    for (size_t i = to; i-- > from;)
        if (d->procs[i].pid > 0)
            kill(d->procs[i].pid, SIGTERM);
    uint64_t deadline = mesh_loop_now_us() + STOP_TIMEOUT * 1000ull;
    int killed = 0;
    for (;;) {
        reap(d);
        size_t left = 0;
        for (size_t i = from; i < to; i++)
            left += d->procs[i].pid > 0;
        if (left == 0)
            return;
        int again = d->stop_signal;
        d->stop_signal = 0;
        if (!killed && (mesh_loop_now_us() > deadline || again)) {
            /* out of patience, or a second Ctrl-C */
            for (size_t i = from; i < to; i++)
                if (d->procs[i].pid > 0)
                    kill(d->procs[i].pid, SIGKILL);
            killed = 1;
        }
        nap(d, 20);
    }
}

static void stop_all(struct demo *d)
{
    d->stop_signal = 0;
    if (d->nprocs > 1)
        stop_range(d, 1, d->nprocs); /* the workloads and their sidecars */
    stop_range(d, 0, d->nprocs > 0 ? 1 : 0); /* the collector, once they sent their last events */
}

static void remove_dir(struct demo *d)
{
    if (d->dir[0] == 0)
        return;
    for (size_t i = 0; i < d->nprocs; i++)
        unlink(d->procs[i].log);
    if (!d->keep_db) {
        char path[PATH_MAX + 8];
        static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
        for (size_t i = 0; i < 4; i++) {
            snprintf(path, sizeof(path), "%s%s", d->db, sfx[i]);
            unlink(path);
        }
    }
    rmdir(d->dir);
}

/* --- the workloads ------------------------------------------------------------------------ */

struct workload {
    const char *name;
    int app_port, in_port, out_port, admin_port;
    char pod[48];
    struct proc *app, *sidecar;
};

static void pod_name(const char *name, char *buf, size_t len)
{
    static const char chars[] = "bcdfghjklmnpqrstvwxz2456789";
    unsigned char rnd[5];
    if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
        memset(rnd, (int)getpid(), sizeof(rnd));
    char suffix[6];
    for (size_t i = 0; i < 5; i++)
        suffix[i] = chars[rnd[i] % (sizeof(chars) - 1)];
    suffix[5] = 0;
    snprintf(buf, len, "%s-%s", name, suffix);
}

/* Starts |w|'s sidecar: inbound to the app when it has a port, outbound with |routes|. */
static int start_sidecar(struct demo *d, struct workload *w, const char *const *routes,
                         size_t nroutes)
{
    char inbound[32], inbound_to[32], outbound[32], admin[32], collector[32];
    static char names[8][40];
    static size_t nnames;
    char *name = names[nnames++ % 8];
    snprintf(name, 40, "%s-proxy", w->name);
    snprintf(inbound, sizeof(inbound), "127.0.0.1:%d", w->in_port);
    snprintf(inbound_to, sizeof(inbound_to), "127.0.0.1:%d", w->app_port);
    snprintf(outbound, sizeof(outbound), "127.0.0.1:%d", w->out_port);
    snprintf(admin, sizeof(admin), "127.0.0.1:%d", w->admin_port);
    snprintf(collector, sizeof(collector), "127.0.0.1:%d", d->collector_port);
    pod_name(w->name, w->pod, sizeof(w->pod));
    const char *argv[32];
    size_t n = 0;
    argv[n++] = d->proxy;
    if (w->app_port > 0) {
        argv[n++] = "--inbound";
        argv[n++] = inbound;
        argv[n++] = "--inbound-to";
        argv[n++] = inbound_to;
    }
    argv[n++] = "--outbound";
    argv[n++] = w->out_port > 0 ? outbound : "off";
    for (size_t i = 0; i < nroutes; i++) {
        argv[n++] = "--route";
        argv[n++] = routes[i];
    }
    argv[n++] = "--admin";
    argv[n++] = admin;
    argv[n++] = "--collector";
    argv[n++] = collector;
    argv[n++] = "--namespace";
    argv[n++] = NS;
    argv[n++] = "--deployment";
    argv[n++] = w->name;
    argv[n++] = "--pod";
    argv[n++] = w->pod;
    argv[n++] = "--drain-timeout";
    argv[n++] = "2s";
    argv[n++] = "--tap-header"; /* shown by mesh tap and the dashboard: who calls, and why a call failed */
    argv[n++] = "user-agent,grpc-message";
    argv[n] = NULL;
    w->sidecar = spawn(d, name, (char *const *)argv);
    return w->sidecar != NULL ? 0 : -1;
}

static int start_app(struct demo *d, struct workload *w, const char *const *args)
{
    const char *argv[16];
    size_t n = 0;
    argv[n++] = d->self;
    argv[n++] = "demo-app";
    argv[n++] = w->name;
    for (; *args != NULL && n < 15; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    w->app = spawn(d, w->name, (char *const *)argv);
    return w->app != NULL ? 0 : -1;
}

static int start_collector(struct demo *d)
{
    char listen[32];
    for (int attempt = 0; attempt < 3; attempt++) {
        d->collector_port = attempt == 0 && try_port(8088) == 8088 ? 8088 : pick_port(d);
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", d->collector_port);
        const char *argv[] = {d->self, "collector", "--listen", listen, "--db", d->db, NULL};
        d->nprocs = 0;
        struct proc *p = spawn(d, "collector", (char *const *)argv);
        if (p == NULL)
            return -1;
        uint64_t deadline = mesh_loop_now_us() + READY_TIMEOUT * 1000ull;
        while (!d->stop_signal && mesh_loop_now_us() < deadline) {
            if (log_has(p, "listening on", NULL, 0))
                return 0;
            if (reap(d) != NULL)
                break;
            nap(d, 50);
        }
        if (d->stop_signal || p->pid > 0 || !log_has(p, "in use", NULL, 0)) {
            fprintf(stderr, "mesh demo: the collector did not start\n");
            show_log(p);
            return -1;
        }
        unlink(p->log); /* the port was taken meanwhile: another one */
    }
    return -1;
}

static int start_all(struct demo *d, const char *rate)
{
    struct workload emoji = {.name = "emoji"}, voting = {.name = "voting"}, web = {.name = "web"},
                    bot = {.name = "vote-bot"};
    struct workload *servers[] = {&emoji, &voting, &web};
    char line[256];
    if (start_collector(d) != 0)
        return -1;
    if (write_state(d) != 0)
        fprintf(stderr, "mesh demo: %s: %s (other terminals need --collector 127.0.0.1:%d)\n",
                d->state, strerror(errno), d->collector_port);
    for (size_t i = 0; i < 3; i++) {
        struct workload *w = servers[i];
        if ((w->app_port = pick_port(d)) < 0 || (w->in_port = pick_port(d)) < 0 ||
            (w->admin_port = pick_port(d)) < 0)
            goto no_ports;
    }
    if ((web.out_port = pick_port(d)) < 0 || (bot.out_port = pick_port(d)) < 0 ||
        (bot.admin_port = pick_port(d)) < 0)
        goto no_ports;

    char listen[3][32], web_out[32], bot_out[32];
    for (size_t i = 0; i < 3; i++)
        snprintf(listen[i], sizeof(listen[i]), "127.0.0.1:%d", servers[i]->app_port);
    snprintf(web_out, sizeof(web_out), "127.0.0.1:%d", web.out_port);
    snprintf(bot_out, sizeof(bot_out), "127.0.0.1:%d", bot.out_port);
    const char *emoji_args[] = {"--listen", listen[0], NULL};
    const char *voting_args[] = {"--listen", listen[1], NULL};
    const char *web_args[] = {"--listen", listen[2], "--emoji", web_out, "--voting", web_out,
                              "--emoji-authority", "emoji-svc." NS ":8080",
                              "--voting-authority", "voting-svc." NS ":8080", NULL};
    const char *bot_args[] = {"--web", bot_out, "--host", "web-svc." NS ":80", "--rate", rate, NULL};
    char route_emoji[96], route_voting[96], route_web[96];
    snprintf(route_emoji, sizeof(route_emoji), "emoji-svc." NS ":8080=127.0.0.1:%d@" NS "/emoji",
             emoji.in_port);
    snprintf(route_voting, sizeof(route_voting),
             "voting-svc." NS ":8080=127.0.0.1:%d@" NS "/voting", voting.in_port);
    snprintf(route_web, sizeof(route_web), "web-svc." NS ":80=127.0.0.1:%d@" NS "/web",
             web.in_port);
    const char *web_routes[] = {route_emoji, route_voting};
    const char *bot_routes[] = {route_web};

    if (start_app(d, &emoji, emoji_args) != 0 || start_sidecar(d, &emoji, NULL, 0) != 0 ||
        start_app(d, &voting, voting_args) != 0 || start_sidecar(d, &voting, NULL, 0) != 0 ||
        start_app(d, &web, web_args) != 0 || start_sidecar(d, &web, web_routes, 2) != 0)
        return -1;
    for (size_t i = 0; i < 3; i++) {
        struct workload *w = servers[i];
        if (wait_ready(d, w->app, ": ready", 0, line, sizeof(line)) != 0 ||
            wait_ready(d, w->sidecar, NULL, w->admin_port, NULL, 0) != 0)
            return -1;
    }
    /* the bot last: its first vote finds everything up */
    if (start_sidecar(d, &bot, bot_routes, 1) != 0 ||
        wait_ready(d, bot.sidecar, NULL, bot.admin_port, NULL, 0) != 0 ||
        start_app(d, &bot, bot_args) != 0 ||
        wait_ready(d, bot.app, ": ready", 0, line, sizeof(line)) != 0)
        return -1;
    const struct target targets[] = {{emoji.name, emoji.pod, emoji.admin_port},
                                     {voting.name, voting.pod, voting.admin_port},
                                     {web.name, web.pod, web.admin_port},
                                     {bot.name, bot.pod, bot.admin_port}};
    write_targets(d, targets, 4); /* Prometheus is optional: a failure is only told */

    const char *mesh = strchr(d->argv0, '/') != NULL ? d->argv0 : "mesh";
    printf("mesh demo: emojivoto is running on this machine, every workload with its own mesh-proxy\n"
           "\n"
           "  collector  127.0.0.1:%d   store %s\n"
           "  web        http://127.0.0.1:%d/   (through web's sidecar; the vote bot votes there too)\n"
           "  emoji      gRPC, sidecar inbound 127.0.0.1:%d\n"
           "  voting     gRPC, sidecar inbound 127.0.0.1:%d\n"
           "  vote-bot   %s votes a second, 15%% for :doughnut: (which fails)\n"
           "  logs       %s/\n"
           "  prometheus %s   (file_sd: the sidecars' /metrics)\n"
           "\n"
           "Try, in another terminal (they find this demo's collector by themselves):\n"
           "  %s stat ns/emojivoto\n"
           "  %s stat deploy -n emojivoto\n"
           "  %s top deploy/voting\n"
           "  %s tap deploy/web\n"
           "\n",
           d->collector_port, d->db, web.in_port, emoji.in_port, voting.in_port, rate, d->dir,
           d->targets[0] ? d->targets : "-", mesh, mesh, mesh, mesh);
    fflush(stdout);
    return 0;
no_ports:
    fprintf(stderr, "mesh demo: no free loopback port found\n");
    return -1;
}

/* --- the command -------------------------------------------------------------------------- */

static const char usage[] =
    "Usage: mesh demo [--duration D] [--db FILE] [--rate N]\n"
    "\n"
    "Runs Linkerd's emojivoto demo on this machine, meshed: a collector, and the web,\n"
    "emoji, voting and vote-bot workloads, each behind its own mesh-proxy sidecar\n"
    "(namespace emojivoto), on free loopback ports. The vote bot picks :doughnut: about\n"
    "15%% of the time, and voting for it fails: web and voting stay below 100%% success.\n"
    "Runs until Ctrl-C (or for D), then stops everything it started.\n"
    "\n"
    "While it runs, `mesh stat`, `top` and `tap` in other terminals find its collector\n"
    "without --collector (through the state file %s).\n"
    "\n"
    "Options:\n"
    "      --duration D   stop after D (like 10m; default: until Ctrl-C)\n"
    "      --db FILE      keep the events in FILE (default: a temporary store, removed)\n"
    "      --rate N       votes per second of the vote bot [4]\n";

int mesh_demo_main(int argc, char **argv, const char *argv0)
{
    static const struct option opts[] = {
        {"duration", required_argument, NULL, 'd'},
        {"db", required_argument, NULL, 'b'},
        {"rate", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static struct demo demo;
    struct demo *d = &demo;
    uint64_t duration_us = 0;
    const char *db = NULL, *rate = "4", *duration = NULL;
    char *end;
    int opt;
    d->argv0 = argv0;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            duration = optarg;
            if (mesh_parse_duration_us(optarg, &duration_us) != 0 || duration_us < 1000000) {
                fprintf(stderr, "mesh demo: --duration %s: not a duration of 1s or more (like 10m)\n", optarg);
                return MESH_EXIT_USAGE;
            }
            break;
        case 'b':
            if (strlen(optarg) >= PATH_MAX) {
                fprintf(stderr, "mesh demo: --db: path too long\n");
                return MESH_EXIT_USAGE;
            }
            db = optarg;
            break;
        case 'r': {
            double r = strtod(optarg, &end);
            if (end == optarg || *end != 0 || !(r > 0 && r <= 1000)) {
                fprintf(stderr, "mesh demo: --rate %s: not a rate between 0 and 1000\n", optarg);
                return MESH_EXIT_USAGE;
            }
            rate = optarg;
            break;
        }
        case 'h': {
            char state[PATH_MAX];
            mesh_demo_state_path(state, sizeof(state));
            printf(usage, state);
            return MESH_EXIT_OK;
        }
        default:
            fprintf(stderr, "mesh demo: %s: unknown option or missing value (see `mesh demo --help`)\n",
                    argv[optind - 1]);
            return MESH_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mesh demo: %s: unexpected argument (see `mesh demo --help`)\n", argv[optind]);
        return MESH_EXIT_USAGE;
    }
    /* the sidecar is the mesh-proxy built next to this mesh */
    ssize_t n = readlink("/proc/self/exe", d->self, sizeof(d->self) - 1);
    if (n <= 0) {
        fprintf(stderr, "mesh demo: /proc/self/exe: %s\n", strerror(errno));
        return MESH_EXIT_RUNTIME;
    }
    d->self[n] = 0;
    snprintf(d->proxy, sizeof(d->proxy), "%.*s/mesh-proxy",
             (int)(strrchr(d->self, '/') - d->self), d->self);
    if (access(d->proxy, X_OK) != 0) {
        fprintf(stderr, "mesh demo: %s: %s (build it: cmake --build build)\n", d->proxy,
                strerror(errno));
        return MESH_EXIT_RUNTIME;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(d->dir, sizeof(d->dir), "%s/mesh-demo-XXXXXX", tmp && *tmp == '/' ? tmp : "/tmp");
    if (mkdtemp(d->dir) == NULL) {
        fprintf(stderr, "mesh demo: %s: %s\n", d->dir, strerror(errno));
        return MESH_EXIT_RUNTIME;
    }
    d->keep_db = db != NULL;
    if (db != NULL && strlen(db) < sizeof(d->db))
        memcpy(d->db, db, strlen(db) + 1);
    else
        snprintf(d->db, sizeof(d->db), "%.1000s/mesh.db", d->dir);

    sigemptyset(&d->waited);
    sigaddset(&d->waited, SIGINT);
    sigaddset(&d->waited, SIGTERM);
    sigaddset(&d->waited, SIGHUP);
    sigaddset(&d->waited, SIGCHLD);
    sigprocmask(SIG_BLOCK, &d->waited, NULL);

    int status = MESH_EXIT_RUNTIME;
    if (start_all(d, rate) == 0) {
        uint64_t deadline = duration_us ? mesh_loop_now_us() + duration_us : 0;
        if (duration_us)
            printf("Running for %s; Ctrl-C stops it sooner.\n", duration);
        else
            printf("Ctrl-C stops it.\n");
        fflush(stdout);
        status = MESH_EXIT_OK;
        for (;;) {
            if (d->stop_signal) {
                printf("\nmesh demo: %s: stopping\n", strsignal(d->stop_signal));
                break;
            }
            if (deadline && mesh_loop_now_us() >= deadline) {
                printf("mesh demo: time is up: stopping\n");
                break;
            }
            struct proc *ended = reap(d);
            if (ended != NULL) {
                char how[96];
                describe_exit(ended, how, sizeof(how));
                fprintf(stderr, "mesh demo: %s %s; stopping\n", ended->name, how);
                show_log(ended);
                status = MESH_EXIT_RUNTIME;
                break;
            }
            nap(d, 200);
        }
        fflush(stdout);
    } else if (d->stop_signal) {
        status = MESH_EXIT_OK;
    }
    stop_all(d);
    remove_state(d);
    remove_dir(d);
    printf("mesh demo: stopped %zu processes%s%s\n", d->nprocs, d->keep_db ? "; events kept in " : "",
           d->keep_db ? d->db : "");
    fflush(stdout);
    return status;
}
