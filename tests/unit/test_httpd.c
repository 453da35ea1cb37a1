/* tests/unit/test_httpd.c — the small HTTP/1.1 server (lib/httpd.c) over real loopback
 * sockets, in-process: the test's client sockets are non-blocking and the server's loop
 * is spun between their writes and reads. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mesh/err.h"
#include "mesh/httpd.h"
#include "mesh/loop.h"
#include "test.h"

struct srv_state {
    struct mesh_loop *loop;
    struct mesh_httpd *srv;
    struct mesh_httpd_req *held; /* a request the handler kept */
    int requests, gone, writable;
    int mode;                    /* what the handler does, see handle() */
    char last_body[256];
    char last_header[64];
    char last_query[64];
};

enum { ANSWER_NOW, HOLD, HOLD_WATCHED, STREAM };

static void on_gone(struct mesh_httpd_req *req, void *ctx)
{
    struct srv_state *st = ctx;
    st->gone++;
    st->held = NULL;
}

static void on_writable(struct mesh_httpd_req *req, void *ctx)
{
    struct srv_state *st = ctx;
    st->writable++;
}

static void handle(struct mesh_httpd_req *req, void *ctx)
{
    struct srv_state *st = ctx;
    size_t len;
    const char *body = mesh_httpd_body(req, &len);
    const char *h = mesh_httpd_header(req, "x-test");
    st->requests++;
    snprintf(st->last_body, sizeof(st->last_body), "%s", body);
    snprintf(st->last_header, sizeof(st->last_header), "%s", h ? h : "");
    if (mesh_httpd_query_param(mesh_httpd_query(req), "q", st->last_query,
                               sizeof(st->last_query)) < 0)
        st->last_query[0] = 0;
    mesh_httpd_set_ctx(req, st);
    switch (st->mode) {
    case ANSWER_NOW: {
        char out[128];
        int n = snprintf(out, sizeof(out), "%s %s %zu", mesh_httpd_method(req),
                         mesh_httpd_path(req), len);
        mesh_httpd_add_header(req, "X-Reply", "yes");
        CHECK_EQ_INT(mesh_httpd_add_header(req, "Bad", "a\r\nb"), MESH_EINVAL);
        CHECK_EQ_INT(mesh_httpd_respond(req, 200, "text/plain", out, (size_t)n), 0);
        break;
    }
    case HOLD: st->held = req; break;
    case HOLD_WATCHED:
        st->held = req;
        mesh_httpd_watch(req, on_gone, on_writable);
        break;
    case STREAM:
        st->held = req;
        mesh_httpd_watch(req, on_gone, on_writable);
        CHECK_EQ_INT(mesh_httpd_stream_start(req, 200, "text/event-stream"), 0);
        CHECK_EQ_INT(mesh_httpd_stream_write(req, "data: hello\n\n", 13), 0);
        break;
    }
}

static int stop_timer(struct mesh_loop *loop, int64_t id, void *ctx)
{
    mesh_loop_stop(loop);
    return MESH_TIMER_DONE;
}

static void spin(struct srv_state *st, unsigned ms)
{
    mesh_loop_add_timer(st->loop, ms, stop_timer, NULL);
    mesh_loop_run(st->loop);
}

static void start(struct srv_state *st, const struct mesh_httpd_opts *extra)
{
    char err[128];
    memset(st, 0, sizeof(*st));
    st->loop = mesh_loop_new();
    struct mesh_httpd_opts opts = {0};
    if (extra != NULL)
        opts = *extra;
    opts.handler = handle;
    opts.ctx = st;
    st->srv = mesh_httpd_new(st->loop, "127.0.0.1:0", &opts, err, sizeof(err));
    CHECK(st->srv != NULL);
    CHECK(mesh_httpd_port(st->srv) > 0);
}

static void stop(struct srv_state *st)
{
    mesh_httpd_free(st->srv);
    mesh_loop_free(st->loop);
}

static int client(struct srv_state *st)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)mesh_httpd_port(st->srv)),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
    CHECK(rc == 0 || errno == EINPROGRESS);
    spin(st, 5);
    return fd;
}

static void put(int fd, const char *text)
{
    CHECK_EQ_INT(send(fd, text, strlen(text), MSG_NOSIGNAL), (long long)strlen(text));
}

/* Everything readable now (after spinning the server), into |buf|; -1 at EOF with nothing. */
static int take(struct srv_state *st, int fd, char *buf, size_t len, unsigned ms)
{
    spin(st, ms);
    size_t got = 0;
    int eof = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + got, len - 1 - got, 0);
        if (n > 0) {
            got += (size_t)n;
            if (got == len - 1)
                break;
            continue;
        }
        eof = n == 0;
        break;
    }
    buf[got] = 0;
    return got == 0 && eof ? -1 : (int)got;
}

static void test_keep_alive(void)
{
    struct srv_state st;
    char buf[4096];
    start(&st, NULL);
    int fd = client(&st);
    put(fd, "GET /a/b?q=%3Ajoy%3A+x&z=1 HTTP/1.1\r\nHost: x\r\nX-Test: one\r\n\r\n");
    CHECK(take(&st, fd, buf, sizeof(buf), 20) > 0);
    CHECK(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(buf, "Content-Length: 10\r\n") != NULL);
    CHECK(strstr(buf, "X-Reply: yes\r\n") != NULL);
    CHECK(strstr(buf, "\r\n\r\nGET /a/b 0") != NULL);
    CHECK_EQ_STR(st.last_header, "one");
    CHECK_EQ_STR(st.last_query, ":joy: x");
    /* the same connection, a body, and two pipelined requests */
    put(fd, "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            "GET /c HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(take(&st, fd, buf, sizeof(buf), 30) > 0);
    CHECK(strstr(buf, "POST /p 5") != NULL);
    CHECK(strstr(buf, "GET /c 0") != NULL);
    CHECK_EQ_INT(st.requests, 3);
    CHECK_EQ_STR(st.last_body, "");
    /* chunked request body; then Connection: close ends it */
    put(fd, "PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            "3\r\nabc\r\n0\r\n\r\n");
    CHECK(take(&st, fd, buf, sizeof(buf), 30) > 0);
    CHECK(strstr(buf, "PUT /c 3") != NULL);
    CHECK(strstr(buf, "Connection: close\r\n") != NULL);
    CHECK_EQ_INT(take(&st, fd, buf, sizeof(buf), 10), -1);
    close(fd);
    spin(&st, 10);
    CHECK_EQ_INT(mesh_httpd_nconns(st.srv), 0);
    stop(&st);
}

static void test_limits(void)
{
    struct srv_state st;
    char buf[4096], big[2048];
    struct mesh_httpd_opts opts = {.max_head = 512, .max_body = 16, .max_conns = 2};
    start(&st, &opts);
    int fd = client(&st);
    put(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n");
    CHECK(take(&st, fd, buf, sizeof(buf), 20) > 0);
    CHECK(strncmp(buf, "HTTP/1.1 413 ", 13) == 0);
    close(fd);

    fd = client(&st); /* chunked: the cap is found while reading */
    put(fd, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n"
            "0123456789abcdef0123456789abcdef\r\n0\r\n\r\n");
    CHECK(take(&st, fd, buf, sizeof(buf), 20) > 0);
    CHECK(strncmp(buf, "HTTP/1.1 413 ", 13) == 0);
    close(fd);

    fd = client(&st);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    put(fd, "GET / HTTP/1.1\r\nX-Big: ");
    put(fd, big);
    CHECK(take(&st, fd, buf, sizeof(buf), 20) > 0);
    CHECK(strncmp(buf, "HTTP/1.1 431 ", 13) == 0);
    close(fd);

    fd = client(&st);
    put(fd, "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    CHECK(take(&st, fd, buf, sizeof(buf), 20) > 0);
    CHECK(strncmp(buf, "HTTP/1.1 400 ", 13) == 0);
    close(fd);
    CHECK_EQ_INT(st.requests, 0);
    spin(&st, 10);

    /* two connections at most: a third is closed at once */
    int a = client(&st), b = client(&st), c = client(&st);
    CHECK_EQ_INT(take(&st, c, buf, sizeof(buf), 10), -1);
    CHECK_EQ_INT(mesh_httpd_nconns(st.srv), 2);
    close(a);
    close(b);
    close(c);
    stop(&st);
}

static void test_timeouts(void)
{
    struct srv_state st;
    char buf[256];
    struct mesh_httpd_opts opts = {.header_timeout_ms = 100, .idle_timeout_ms = 600};
    start(&st, &opts);
    int slow = client(&st), idle = client(&st);
    put(slow, "GET / HTTP/1.1\r\nHo");
    CHECK_EQ_INT(take(&st, slow, buf, sizeof(buf), 250), -1); /* header timeout */
    CHECK(take(&st, idle, buf, sizeof(buf), 0) == 0);           /* not yet idle */
    CHECK_EQ_INT(take(&st, idle, buf, sizeof(buf), 700), -1);   /* idle timeout */
    CHECK_EQ_INT(mesh_httpd_nconns(st.srv), 0);
    close(slow);
    close(idle);
    stop(&st);
}

static int answer_later(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct srv_state *st = ctx;
    CHECK_EQ_INT(mesh_httpd_respond(st->held, 503, "text/plain", "later", 5), 0);
    st->held = NULL;
    return MESH_TIMER_DONE;
}

static void test_async(void)
{
    struct srv_state st;
    char buf[1024];
    start(&st, NULL);
    st.mode = HOLD;
    int fd = client(&st);
    put(fd, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ_INT(take(&st, fd, buf, sizeof(buf), 20), 0);
    CHECK(st.held != NULL);
    mesh_loop_add_timer(st.loop, 10, answer_later, &st);
    CHECK(take(&st, fd, buf, sizeof(buf), 30) > 0);
    CHECK(strncmp(buf, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0);
    CHECK(strstr(buf, "\r\n\r\nlater") != NULL);

    /* the client leaves while the request is held: on_gone, once */
    st.mode = HOLD_WATCHED;
    put(fd, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    spin(&st, 10);
    CHECK(st.held != NULL);
    close(fd);
    spin(&st, 10);
    CHECK_EQ_INT(st.gone, 1);
    CHECK(st.held == NULL);

    /* without on_gone the request outlives its connection: answering is safe */
    st.mode = HOLD;
    fd = client(&st);
    put(fd, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    spin(&st, 10);
    struct mesh_httpd_req *orphan = st.held;
    CHECK(orphan != NULL);
    close(fd);
    spin(&st, 10);
    CHECK_EQ_STR(mesh_httpd_path(orphan), "/slow");
    CHECK_EQ_INT(mesh_httpd_respond(orphan, 200, "text/plain", "x", 1), MESH_EIO);

    /* freeing the server tells the holders */
    st.mode = HOLD_WATCHED;
    fd = client(&st);
    put(fd, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    spin(&st, 10);
    CHECK(st.held != NULL);
    mesh_httpd_free(st.srv);
    CHECK_EQ_INT(st.gone, 2);
    mesh_loop_free(st.loop);
    close(fd);
}

static void test_stream(void)
{
    struct srv_state st;
    static char buf[1 << 20];
    struct mesh_httpd_opts opts = {.max_pending = 4096};
    start(&st, &opts);
    st.mode = STREAM;
    int fd = client(&st);
    put(fd, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(take(&st, fd, buf, sizeof(buf), 20) > 0);
    CHECK(strstr(buf, "Transfer-Encoding: chunked\r\n") != NULL);
    CHECK(strstr(buf, "\r\n\r\nd\r\ndata: hello\n\n\r\n") != NULL);
    CHECK(st.held != NULL);
    /* a quiet stream stays open past nothing; a client that does not read fills the cap */
    char chunk[1024];
    memset(chunk, 'x', sizeof(chunk));
    int rv = 0, n = 0;
    for (; n < 100000 && (rv = mesh_httpd_stream_write(st.held, chunk, sizeof(chunk))) == 0; n++)
        if (n % 64 == 0)
            spin(&st, 1);
    CHECK_EQ_INT(rv, MESH_ETOOBIG);
    CHECK(n > 4);
    /* reading it all lets on_writable come */
    for (int i = 0; i < 50 && st.writable == 0; i++)
        take(&st, fd, buf, sizeof(buf), 2);
    CHECK_EQ_INT(st.writable, 1);
    CHECK_EQ_INT(mesh_httpd_stream_write(st.held, "data: end\n\n", 11), 0);
    CHECK_EQ_INT(mesh_httpd_stream_end(st.held), 0);
    st.held = NULL;
    /* the kernel's socket buffers still hold much: read up to the last chunk */
    int got = 0, ended = 0;
    for (int i = 0; i < 200 && !ended && got >= 0; i++) {
        got = take(&st, fd, buf, sizeof(buf), 2);
        static const char last[] = "data: end\n\n\r\n0\r\n\r\n";
        ended = got >= (int)sizeof(last) - 1 && strcmp(buf + got - (sizeof(last) - 1), last) == 0;
    }
    CHECK(ended);
    /* keep-alive after the stream: another request on the connection */
    st.mode = ANSWER_NOW;
    put(fd, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(take(&st, fd, buf, sizeof(buf), 20) > 0);
    CHECK(strstr(buf, "GET /after 0") != NULL);

    /* a stream whose client leaves: on_gone; writes after it are the holder's problem */
    st.mode = STREAM;
    put(fd, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
    spin(&st, 10);
    CHECK(st.held != NULL);
    close(fd);
    spin(&st, 10);
    CHECK_EQ_INT(st.gone, 1);

    /* HTTP/1.0: no chunked encoding, the body ends with the connection */
    fd = client(&st);
    put(fd, "GET /events HTTP/1.0\r\n\r\n");
    spin(&st, 10);
    CHECK_EQ_INT(mesh_httpd_stream_end(st.held), 0);
    st.held = NULL;
    CHECK(take(&st, fd, buf, sizeof(buf), 20) > 0);
    CHECK(strstr(buf, "chunked") == NULL && strstr(buf, "\r\n\r\ndata: hello\n\n") != NULL);
    CHECK_EQ_INT(take(&st, fd, buf, sizeof(buf), 10), -1);
    close(fd);
    stop(&st);
}

static void test_query_param(void)
{
    char out[8];
    CHECK_EQ_INT(mesh_httpd_query_param("a=1&choice=%3Ajoy%3A", "choice", out, sizeof(out)), 5);
    CHECK_EQ_STR(out, ":joy:");
    CHECK_EQ_INT(mesh_httpd_query_param("a=1&b", "b", out, sizeof(out)), 0);
    CHECK_EQ_INT(mesh_httpd_query_param("ab=1", "a", out, sizeof(out)), MESH_EINVAL);
    CHECK_EQ_INT(mesh_httpd_query_param("", "a", out, sizeof(out)), MESH_EINVAL);
    CHECK_EQ_INT(mesh_httpd_query_param("a=123456789", "a", out, sizeof(out)), MESH_ETOOBIG);
    CHECK_EQ_INT(mesh_httpd_query_param("a=%zz+", "a", out, sizeof(out)), 4);
    CHECK_EQ_STR(out, "%zz ");
}

static void test_bad_listen(void)
{
    char err[128];
    struct mesh_loop *loop = mesh_loop_new();
    struct mesh_httpd_opts opts = {.handler = handle};
    CHECK(mesh_httpd_new(loop, "nowhere", &opts, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "nowhere") != NULL);
    mesh_loop_free(loop);
}

int main(void)
{
    RUN(test_keep_alive);
    RUN(test_limits);
    RUN(test_timeouts);
    RUN(test_async);
    RUN(test_stream);
    RUN(test_query_param);
    RUN(test_bad_listen);
    return TEST_REPORT();
}
