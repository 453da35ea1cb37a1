/* lib/grpc_impl.h — what lib/grpc.c, grpc_server.c and grpc_client.c share; private.
 *
 * A gconn is one TCP connection (TLS on it when |ssl| is set: lib/grpc.c's
 * conn_recv/conn_send, the handshake before any HTTP/2) and its nghttp2
 * session; a mesh_grpc_call is one stream on it. A call is freed when both its holder is done with it
 * (handler_done) and its stream is gone (stream_done), but only at a safe point:
 * while the connection is being processed (busy), nghttp2 or our own loops may
 * still look at it, so it waits for gconn_leave() to reap it. The same goes for
 * the connection itself: gconn_fail() marks it and gconn_leave() tears it down.
 */
#ifndef MESH_GRPC_IMPL_H
#define MESH_GRPC_IMPL_H

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <stdint.h>

#include "mesh/buf.h"
#include "mesh/grpc.h"
#include "mesh/loop.h"

struct gconn;

/* The connections of one server or client that need flushing before sleep. */
struct gflush {
    struct mesh_loop *loop;
    struct gconn *head, *tail;
    int64_t hook_id;
    uint64_t pass;
};

struct gconn_ops {
    /* the connection is going: give every call its last callback */
    void (*on_teardown)(struct gconn *conn, const char *why);
    /* after the connection's memory is gone (may be NULL) */
    void (*after_free)(void *owner, const char *why);
    /* a call was resumed: deliver what it buffered while paused */
    void (*resume)(struct mesh_grpc_call *call);
    /* a call's send queue drained after it said MESH_ETOOBIG */
    void (*writable)(struct mesh_grpc_call *call);
    /* client: connect(2) finished, one way or the other */
    void (*connected)(struct gconn *conn);
};

struct gconn {
    struct mesh_loop *loop;
    const struct gconn_ops *ops;
    void *owner; /* the server or the client */
    int fd;
    unsigned fd_mask;
    nghttp2_session *session;
    int is_server;
    struct mesh_buf wbuf; /* frames from mem_send not yet written */
    size_t woff;
    struct mesh_grpc_call *calls; /* every call not yet freed */
    struct gflush *flush;
    struct gconn *dirty_prev, *dirty_next;
    int in_dirty;
    uint64_t flushed_pass;
    int busy;   /* depth of gconn_enter() */
    int failed; /* torn down at the next safe point */
    char why[160];
    int connecting;    /* client: connect(2) in progress */
    SSL *ssl;          /* NULL: cleartext (h2c) */
    int handshaking;   /* TLS handshake not done: no HTTP/2 yet */
    int draining;      /* server: answered HTTP/1.x; discarding input until EOF */
    size_t magic_seen; /* server: bytes of the client preface checked */
    int writable_pending, resume_pending, reap_pending;
    int64_t timer;             /* drain or connect timeout */
    int64_t idle_timer;        /* server: no call for too long (grpc_server.c) */
    uint64_t idle_since_us;    /* server: accepted, or its last call ended */
    int ever_called;           /* server: a request's headers began */
    struct gconn *prev, *next; /* the server's list */
    char peer[64];
};

struct mesh_grpc_call {
    struct gconn *conn; /* calls never outlive their connection */
    struct mesh_loop *loop;
    int32_t stream_id;
    struct mesh_grpc_call *prev, *next;
    void *ctx;
    int is_server;
    void (*on_free)(struct mesh_grpc_call *call);
    char peer[64];

    /* server */
    const struct mesh_grpc_method *method; /* NULL until the headers were accepted */
    struct mesh_grpc_server *server;
    struct mesh_buf hdrs; /* "name\0value\0"…, pseudo-headers included, capped */
    int hdrs_overflow;
    uint64_t deadline_us;

    /* client */
    struct mesh_grpc_client *client;
    const struct mesh_grpc_client_cbs *cbs;
    char *method_name;
    unsigned timeout_ms;
    int http_status;
    int got_status; /* grpc-status seen */
    int rst_code;   /* the stream's close code */

    /* final status: the one sent (server) or received (client) */
    int status;
    struct mesh_buf status_msg; /* server: percent-encoded; client: decoded */
    int64_t deadline_timer;

    /* sending: 5-byte-prefixed messages not yet handed to nghttp2 */
    struct mesh_buf out;
    size_t out_off;
    size_t send_cap;
    uint32_t nsent;

    /* receiving: an incomplete message, or what arrived while paused */
    struct mesh_buf in;
    size_t in_off;
    size_t max_msg;
    size_t unconsumed; /* stream window bytes held back while paused */
    uint32_t nrecv;

    unsigned handler_done : 1; /* the holder dropped the pointer */
    unsigned stream_done : 1;  /* the stream is closed */
    unsigned send_closed : 1;  /* server: final status queued; client: half-closed */
    unsigned cancelled : 1;    /* the last callback is being (or was) delivered */
    unsigned headers_sent : 1; /* server: response HEADERS submitted */
    unsigned deferred : 1;     /* the data source returned DEFERRED */
    unsigned remote_closed : 1;
    unsigned half_close_done : 1;
    unsigned paused : 1;
    unsigned want_writable : 1;
    unsigned writable_pending : 1;
    unsigned resume_pending : 1;
    unsigned close_pending : 1; /* client: stream closed, status not given yet (paused) */
};

/* --- connections (grpc.c) ----------------------------------------------------------------- */
struct gconn *gconn_new(struct mesh_loop *loop, int fd, int is_server, const struct gconn_ops *ops,
                        void *owner, struct gflush *flush);
void gconn_enter(struct gconn *conn);
/* Leaves a processing section; the outermost one reaps freed calls and tears
 * the connection down if it failed. Returns 0, or -1 if |conn| is gone. */
int gconn_leave(struct gconn *conn);
void gconn_fail(struct gconn *conn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Tears down now; not while |conn| is being processed. */
void gconn_destroy(struct gconn *conn, const char *why);
void gconn_mark_dirty(struct gconn *conn);
void gconn_set_mask(struct gconn *conn, unsigned mask);
void gconn_on_fd(struct mesh_loop *loop, int fd, unsigned events, void *ctx);
/* Writes what nghttp2 has; returns -1 when the connection is gone. */
int gconn_flush(struct gconn *conn);
int gconn_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                        const uint8_t *data, size_t len, void *user_data);
void gflush_init(struct gflush *flush, struct mesh_loop *loop);
int gflush_start(struct gflush *flush);
void gflush_stop(struct gflush *flush);

/* --- calls (grpc.c) ----------------------------------------------------------------------- */
void gcall_link(struct gconn *conn, struct mesh_grpc_call *call);
/* Frees |call| if both ends are done: now, or when its connection is idle. */
void gcall_release(struct mesh_grpc_call *call);
void gcall_free(struct mesh_grpc_call *call);
void gcall_stop_deadline(struct mesh_grpc_call *call);
/* 1 while messages are still for the holder. */
int gcall_accepting(const struct mesh_grpc_call *call);
nghttp2_data_provider gcall_data_provider(struct mesh_grpc_call *call);
/* Resumes deferred data and marks the connection for flushing. */
void gcall_kick(struct mesh_grpc_call *call);
/* Delivers buffered messages and reopens the stream window. */
void gcall_resume(struct mesh_grpc_call *call);

/* --- side-specific (grpc_server.c / grpc_client.c) ---------------------------------------- */
int gserver_submit_headers(struct mesh_grpc_call *call);
int gserver_submit_trailers(struct mesh_grpc_call *call);
void gserver_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len);
void gserver_abort(struct mesh_grpc_call *call, int status, const char *msg);
/* Serves a connected, non-blocking socket |fd| as if accepted (for fuzzers:
 * tests/fuzz/fuzz_grpc.c feeds a socketpair end). 0, or MESH_ENOMEM with
 * |fd| left open. */
int gserver_adopt(struct mesh_grpc_server *server, int fd);
void gclient_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len);
void gclient_end_local(struct mesh_grpc_call *call, int status, const char *msg);

#endif
