/* demo/app.c — `mesh demo-app NAME`: dispatch, the signal-driven loop, the HTTP client. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "app.h"
#include "demo.h"
#include "mesh/err.h"
#include "mesh/grpc.h"
#include "mesh/h1.h"

int demo_usage_error(const char *name, const char *what, const char *why)
{
    fprintf(stderr, "mesh demo-app %s: %s: %s\n", name, what, why);
    return MESH_EXIT_USAGE;
}

static void on_stop(struct mesh_loop *loop, int signo, void *ctx)
{
    mesh_loop_stop(loop);
}

int demo_run_loop(struct mesh_loop *loop)
{
    if (mesh_loop_on_signal(loop, SIGTERM, on_stop, NULL) != 0 ||
        mesh_loop_on_signal(loop, SIGINT, on_stop, NULL) != 0)
        return 1;
    return mesh_loop_run(loop) == 0 ? 0 : 1;
}

int mesh_demo_app_main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*main)(int, char **);
    } apps[] = {{"emoji", demo_emoji_main},
                {"voting", demo_voting_main},
                {"web", demo_web_main},
                {"vote-bot", demo_votebot_main}};
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2)
        for (size_t i = 0; i < sizeof(apps) / sizeof(apps[0]); i++)
            if (strcmp(argv[1], apps[i].name) == 0)
                return apps[i].main(argc - 1, argv + 1);
    fprintf(stderr, "mesh demo-app: %s: expected emoji, voting, web or vote-bot\n",
            argc >= 2 ? argv[1] : "(nothing)");
    return MESH_EXIT_USAGE;
}

/* --- the blocking HTTP/1.1 client ----------------------------------------------------------- */

#define HTTPC_MAX_HEAD 16384u

static int wait_fd(int fd, short events, uint64_t deadline_us)
{
    for (;;) {
        uint64_t now = mesh_loop_now_us();
        if (now >= deadline_us)
            return MESH_EIO;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)((deadline_us - now + 999) / 1000));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return MESH_EIO;
    }
}

static int connect_to(const char *addr, uint64_t deadline_us, char *err, size_t errlen)
{
    struct mesh_addr a;
    if (mesh_addr_parse(addr, &a, err, errlen) != 0)
        return MESH_EINVAL;
    int fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s: socket: %s", addr, strerror(errno));
        return MESH_EIO;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a.ss, a.len) != 0 && errno != EINPROGRESS) {
        snprintf(err, errlen, "%s: connect: %s", addr, strerror(errno));
        close(fd);
        return MESH_EIO;
    }
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (wait_fd(fd, POLLOUT, deadline_us) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        snprintf(err, errlen, "%s: connect: %s", addr, soerr ? strerror(soerr) : "timed out");
        close(fd);
        return MESH_EIO;
    }
    return fd;
}

int demo_http_get(int *fd, const char *addr, const char *host, const char *target,
                  struct mesh_buf *body, unsigned timeout_ms, char *err, size_t errlen)
{
    uint64_t deadline = mesh_loop_now_us() + timeout_ms * 1000ull;
    char req[1024];
    int reqlen = snprintf(req, sizeof(req),
                          "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: mesh-demo/0.1\r\n"
                          "Accept: */*\r\n\r\n",
                          target, host);
    if (reqlen < 0 || (size_t)reqlen >= sizeof(req)) {
        snprintf(err, errlen, "%s: target too long", target);
        return MESH_EINVAL;
    }
    mesh_buf_reset(body);
    /* a kept connection the server closed meanwhile fails at once: retry once anew */
    for (int attempt = 0; attempt < 2; attempt++) {
        int fresh = *fd < 0;
        if (fresh && (*fd = connect_to(addr, deadline, err, errlen)) < 0) {
            int rv = *fd;
            *fd = -1;
            return rv;
        }
        int rv = MESH_EIO, status = 0, done = 0, close_after = 0, got_any = 0;
        size_t off = 0;
        while (off < (size_t)reqlen) {
            ssize_t n = send(*fd, req + off, (size_t)reqlen - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += (size_t)n;
            } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                if (wait_fd(*fd, POLLOUT, deadline) != 0)
                    break;
            } else {
                break;
            }
        }
        struct mesh_h1_parser p;
        mesh_h1_parser_init(&p, MESH_H1_RESPONSE, HTTPC_MAX_HEAD, 0);
        const char *why = "connection closed";
        while (off == (size_t)reqlen && !done) {
            uint8_t buf[8192];
            ssize_t n = recv(*fd, buf, sizeof(buf), 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                if (wait_fd(*fd, POLLIN, deadline) != 0) {
                    why = "timed out";
                    break;
                }
                continue;
            }
            if (n < 0)
                why = strerror(errno);
            if (n <= 0) {
                if (n == 0 && mesh_h1_parse_eof(&p, NULL) == MESH_H1_END)
                    done = 1, close_after = 1;
                break;
            }
            got_any = 1;
            size_t pos = 0;
            while (!done) { /* until NEED_MORE: an event may be pending with no bytes left */
                size_t used = 0;
                int ev = mesh_h1_parse(&p, buf + pos, (size_t)n - pos, &used, &why);
                pos += used;
                if (ev < 0) {
                    n = -1;
                    break;
                }
                if (ev == MESH_H1_HEAD) {
                    if (p.msg.status < 200) /* 100 Continue and the like */
                        continue;
                    status = p.msg.status;
                    close_after = (p.msg.flags & MESH_H1_F_CLOSE) != 0;
                } else if (ev == MESH_H1_DATA && mesh_buf_append(body, p.body, p.body_len) != 0) {
                    why = "response body too large";
                    n = -1;
                } else if (ev == MESH_H1_END && status >= 200) {
                    done = 1;
                } else if (ev == MESH_H1_NEED_MORE) {
                    break;
                }
            }
            if (n < 0)
                break;
        }
        mesh_h1_parser_free(&p);
        if (done) {
            rv = status;
            if (close_after) {
                close(*fd);
                *fd = -1;
            }
            return rv;
        }
        close(*fd);
        *fd = -1;
        if (fresh || got_any) {
            snprintf(err, errlen, "%s GET %s: %s", addr, target, why);
            return rv;
        }
    }
    snprintf(err, errlen, "%s GET %s: connection closed", addr, target);
    return MESH_EIO;
}
