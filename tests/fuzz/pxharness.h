/* tests/fuzz/pxharness.h — runs mesh-proxy's core (proxy/proxy.h) on one fuzz
 * input: the bytes a downstream peer sends, and what the upstream answers.
 *
 * One struct px, built once: a loop, tap off, two routes ("web.emojivoto:80"
 * with labels and "*") and --inbound-to, all to one endpoint, an abstract
 * unix socket this harness listens on (no TCP ports, no TIME_WAIT). Per
 * input a socketpair(2): one end becomes a downstream px_conn handed to the
 * module under test with px_conn_adopt(), the other gets the client's bytes
 * and is then shut down for writing; whatever the proxy writes back is read
 * and dropped. Each upstream connection the proxy opens gets the upstream
 * bytes once its first request bytes arrive, then a shutdown. The loop runs
 * until the downstream connection is gone or PXH_DEADLINE_MS passed, then
 * everything left is closed; an fd that outlives the input (the lowest
 * free fd number moved) aborts.
 *
 * Input: the records.h format (byte 0 bit 0: inbound instead of outbound;
 * records [op][len_hi][len_lo] data, op & 1 = direction: 0 the client's
 * bytes, 1 the upstream's; gap, FIN and RST records are skipped), so the
 * h1 and h2 corpora captured from emojivoto seed it as they are.
 */
#ifndef MESH_FUZZ_PXHARNESS_H
#define MESH_FUZZ_PXHARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mesh/buf.h"
#include "mesh/loop.h"
#include "proxy.h"

#define PXH_DEADLINE_MS 50
#define PXH_MAX_UPS 64

struct pxh_up {
    int fd;
    int answered;
};

static struct pxh {
    struct mesh_loop *loop;
    struct px *px;
    int lfd;
    struct pxh_up ups[PXH_MAX_UPS];
    size_t nups;
    int client_fd;                   /* our end of the socketpair, -1 when closed */
    const uint8_t *req, *rsp;        /* what the client and the upstream send */
    size_t req_len, req_off, rsp_len;
    int timed_out;
    int fd_mark; /* the lowest free fd before the input: an fd leaked moves it */
    struct mesh_buf reqbuf, rspbuf;
} pxh;

/* The lowest fd number free now. */
static int pxh_lowest_free_fd(void)
{
    int fd = dup(0);
    if (fd >= 0)
        close(fd);
    return fd;
}

static void pxh_up_close(struct pxh_up *up)
{
    if (up->fd >= 0) {
        mesh_loop_del_fd(pxh.loop, up->fd);
        close(up->fd);
        up->fd = -1;
    }
}

static void pxh_on_up(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    struct pxh_up *up = ctx;
    char buf[16384];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        pxh_up_close(up);
        return;
    }
    if (n > 0 && !up->answered) {
        up->answered = 1;
        if (pxh.rsp_len > 0)
            (void)!send(fd, pxh.rsp, pxh.rsp_len, MSG_NOSIGNAL);
        shutdown(fd, SHUT_WR);
    }
}

static void pxh_on_accept(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    for (;;) {
        int cfd = accept(fd, NULL, NULL);
        if (cfd < 0)
            return;
        fcntl(cfd, F_SETFL, O_NONBLOCK);
        fcntl(cfd, F_SETFD, FD_CLOEXEC);
        if (pxh.nups == PXH_MAX_UPS) {
            close(cfd);
            continue;
        }
        struct pxh_up *up = &pxh.ups[pxh.nups++];
        up->fd = cfd;
        up->answered = 0;
        if (mesh_loop_add_fd(loop, cfd, MESH_READ, pxh_on_up, up) != 0) {
            close(cfd); /* out of memory (failmalloc): the proxy sees a reset */
            pxh.nups--;
        }
    }
}

static void pxh_client_close(void)
{
    if (pxh.client_fd >= 0) {
        mesh_loop_del_fd(pxh.loop, pxh.client_fd);
        close(pxh.client_fd);
        pxh.client_fd = -1;
    }
}

static void pxh_on_client(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    if (events & MESH_READ) {
        char buf[16384];
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            pxh_client_close();
            return;
        }
    }
    if ((events & MESH_WRITE) && pxh.req_off < pxh.req_len) {
        ssize_t n = send(fd, pxh.req + pxh.req_off, pxh.req_len - pxh.req_off, MSG_NOSIGNAL);
        if (n > 0)
            pxh.req_off += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
            pxh.req_off = pxh.req_len;
        if (pxh.req_off == pxh.req_len) {
            shutdown(fd, SHUT_WR);
            mesh_loop_mod_fd(loop, fd, MESH_READ);
        }
    }
}

static void pxh_before_sleep(struct mesh_loop *loop, void *ctx)
{
    if (pxh.px->nconns == 0 || pxh.timed_out) {
        mesh_loop_stop(loop);
        mesh_loop_wake(loop);
    }
}

static int pxh_deadline(struct mesh_loop *loop, int64_t id, void *ctx)
{
    pxh.timed_out = 1;
    mesh_loop_stop(loop);
    return MESH_TIMER_DONE;
}

/* Frees what pxh_init() made (tests/unit/failmalloc.c runs each input on a
 * fresh proxy, so that nothing it keeps counts as a leak). */
static void pxh_fini(void)
{
    if (pxh.px != NULL)
        px_free(pxh.px);
    if (pxh.lfd >= 0 && pxh.loop != NULL) {
        mesh_loop_del_fd(pxh.loop, pxh.lfd);
        close(pxh.lfd);
    }
    if (pxh.loop != NULL)
        mesh_loop_free(pxh.loop);
    mesh_buf_free(&pxh.reqbuf);
    mesh_buf_free(&pxh.rspbuf);
    memset(&pxh, 0, sizeof(pxh));
    pxh.lfd = pxh.client_fd = -1;
}

/* 0, or -1 (out of memory: everything made so far freed). */
static int pxh_init(void)
{
    static struct px_endpoint ep;
    static char authority_web[] = "web.emojivoto:80", authority_any[] = "*";
    char err[256];
    if (pxh.loop != NULL)
        return 0;
    pxh.client_fd = pxh.lfd = -1;
    pxh.loop = mesh_loop_new();
    if (pxh.loop == NULL)
        goto fail;

    /* the upstream: an abstract unix socket, one name per process */
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    int namelen = snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "mesh-fz9-%ld",
                           (long)getpid());
    socklen_t sunlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)namelen);
    pxh.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (pxh.lfd < 0 || bind(pxh.lfd, (struct sockaddr *)&sun, sunlen) != 0 ||
        listen(pxh.lfd, 128) != 0)
        abort();
    if (mesh_loop_add_fd(pxh.loop, pxh.lfd, MESH_READ, pxh_on_accept, NULL) != 0) {
        close(pxh.lfd);
        pxh.lfd = -1;
        goto fail;
    }
    memcpy(&ep.addr, &sun, sunlen);
    ep.addrlen = sunlen;
    snprintf(ep.name, sizeof(ep.name), "127.0.0.1:8080");

    struct px_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.self.ns = "emojivoto";
    cfg.self.deploy = "web";
    cfg.self.pod = "web-0";
    cfg.limits.max_conns = 100;
    cfg.limits.max_header = 16384;
    cfg.limits.header_timeout_ms = 10000;
    cfg.limits.idle_timeout_ms = 60000;
    cfg.limits.detect_timeout_ms = 1000;
    cfg.limits.connect_timeout_ms = 3000;
    cfg.limits.max_streams = 32;
    cfg.limits.drain_ms = 10;
    cfg.tap_queue_batches = 4;
    const char *why; /* every request header through the capture and redaction */
    if (mesh_hdr_names_add(&cfg.headers.tap, "*", &why) != 0 ||
        mesh_hdr_names_add(&cfg.headers.redact, "x-secret", &why) != 0)
        abort();
    pxh.px = px_new(pxh.loop, &cfg, err, sizeof(err));
    if (pxh.px == NULL)
        goto fail;
    /* routes as px_route_parse makes them: px_free frees them */
    struct px *px = pxh.px;
    px->routes = calloc(2, sizeof(*px->routes));
    if (px->routes == NULL)
        goto fail;
    px->nroutes = 2;
    const char *names[2] = {authority_web, authority_any};
    for (int i = 0; i < 2; i++) {
        struct px_route *r = &px->routes[i];
        r->authority = strdup(names[i]);
        r->eps = calloc(1, sizeof(*r->eps));
        if (r->authority == NULL || r->eps == NULL)
            goto fail;
        memcpy(r->eps, &ep, sizeof(ep));
        r->neps = 1;
    }
    px->routes[0].labels.ns = strdup("emojivoto");
    px->routes[0].labels.deploy = strdup("web");
    px->inbound_route.authority = strdup("inbound");
    px->inbound_route.eps = calloc(1, sizeof(ep));
    if (px->routes[0].labels.ns == NULL || px->routes[0].labels.deploy == NULL ||
        px->inbound_route.authority == NULL || px->inbound_route.eps == NULL)
        goto fail;
    memcpy(px->inbound_route.eps, &ep, sizeof(ep));
    px->inbound_route.neps = 1;
    px_balance_seed(1);
    if (mesh_loop_on_before_sleep(pxh.loop, pxh_before_sleep, NULL) <= 0)
        goto fail;
    mesh_buf_init(&pxh.reqbuf, 1u << 24);
    mesh_buf_init(&pxh.rspbuf, 1u << 24);
    return 0;
fail:
    pxh_fini();
    return -1;
}

/* Splits |data| into the client's and the upstream's bytes. */
static int pxh_split(const uint8_t *data, size_t size)
{
    mesh_buf_reset(&pxh.reqbuf);
    mesh_buf_reset(&pxh.rspbuf);
    size_t off = 1;
    while (off + 3 <= size) {
        unsigned op = data[off];
        size_t len = ((size_t)data[off + 1] << 8) | data[off + 2];
        off += 3;
        if ((op & 6) != 0)
            continue;
        if (len > size - off)
            len = size - off;
        if (mesh_buf_append(op & 1 ? &pxh.rspbuf : &pxh.reqbuf, data + off, len) != 0)
            return -1;
        off += len;
    }
    pxh.req = (const uint8_t *)pxh.reqbuf.data;
    pxh.req_len = pxh.reqbuf.len;
    pxh.rsp = (const uint8_t *)pxh.rspbuf.data;
    pxh.rsp_len = pxh.rspbuf.len;
    return 0;
}

/* Runs one input through |serve|. 0, or -1 when the harness ran out of
 * memory setting it up (only under tests/unit/failmalloc.c). */
static int pxh_run(const uint8_t *data, size_t size, void (*serve)(struct px_conn *conn))
{
    if (size < 1)
        return 0;
    if (pxh_init() != 0 || pxh_split(data, size) != 0)
        return -1;
    struct px *px = pxh.px;
    /* per input, not once: the sanitizers' symbolizer opens pipes between inputs */
    pxh.fd_mark = pxh_lowest_free_fd();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    pxh.client_fd = sv[1];
    pxh.req_off = 0;
    pxh.timed_out = 0;
    pxh.nups = 0;
    if (pxh.req_len == 0)
        shutdown(sv[1], SHUT_WR);
    if (mesh_loop_add_fd(pxh.loop, sv[1], pxh.req_len > 0 ? MESH_READ | MESH_WRITE : MESH_READ,
                         pxh_on_client, NULL) != 0) {
        close(sv[0]);
        close(sv[1]);
        pxh.client_fd = -1;
        return -1;
    }
    enum mesh_direction dir = data[0] & 1 ? MESH_DIR_INBOUND : MESH_DIR_OUTBOUND;
    int rv = 0;
    if (px_conn_adopt(px, sv[0], dir, serve) != 0) {
        rv = -1; /* |sv[0]| closed */
        goto out;
    }
    int64_t deadline = mesh_loop_add_timer(pxh.loop, PXH_DEADLINE_MS, pxh_deadline, NULL);
    if (deadline <= 0) {
        rv = -1;
        goto out;
    }
    if (px->nconns > 0)
        mesh_loop_run(pxh.loop);
    if (!pxh.timed_out)
        mesh_loop_del_timer(pxh.loop, deadline);
    else if (getenv("PXH_DEBUG") != NULL)
        fprintf(stderr, "pxharness: deadline passed (%zu upstreams, %zu/%zu bytes sent)\n",
                pxh.nups, pxh.req_off, pxh.req_len);
out:
    px_close_all(px);
    px_h1_free_pools(px);
    pxh_client_close();
    for (size_t i = 0; i < pxh.nups; i++)
        pxh_up_close(&pxh.ups[i]);
    if (px->nconns != 0 || px->conns != NULL)
        abort();
    if (pxh_lowest_free_fd() != pxh.fd_mark) {
        fprintf(stderr, "pxharness: an fd outlived the input\n");
        abort();
    }
    return rv;
}

#endif
