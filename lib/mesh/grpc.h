/* mesh/grpc.h — gRPC over h2c (prior knowledge), or TLS with ALPN h2 (OpenSSL), on nghttp2:
 * server, client, blocking unary.
 *
 * One nghttp2 session per connection on a mesh_loop, flushed from a before-sleep hook;
 * a call is one stream. Whoever handles a call holds its pointer until ONE end: the
 * server handler's mesh_grpc_call_finish()/_cancel() or our on_cancel (reset, deadline,
 * connection gone, server freed); the client's mesh_grpc_call_cancel() or our on_close.
 * Until then the call stays valid whatever the peer does, so answers may come long
 * after a callback returned (Watch, Report acks); after it, drop the pointer. Callbacks
 * run on the loop's thread and must not free the server or client they come from.
 * Messages are bytes (protobuf-c packs them), valid during the callback only.
 */
#ifndef MESH_GRPC_H
#define MESH_GRPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mesh/buf.h"
#include "mesh/loop.h"

/* gRPC status codes (grpc/doc/statuscodes.md). */
enum mesh_grpc_status {
    MESH_GRPC_OK = 0,
    MESH_GRPC_CANCELLED = 1,
    MESH_GRPC_UNKNOWN = 2,
    MESH_GRPC_INVALID_ARGUMENT = 3,
    MESH_GRPC_DEADLINE_EXCEEDED = 4,
    MESH_GRPC_NOT_FOUND = 5,
    MESH_GRPC_ALREADY_EXISTS = 6,
    MESH_GRPC_PERMISSION_DENIED = 7,
    MESH_GRPC_RESOURCE_EXHAUSTED = 8,
    MESH_GRPC_FAILED_PRECONDITION = 9,
    MESH_GRPC_ABORTED = 10,
    MESH_GRPC_OUT_OF_RANGE = 11,
    MESH_GRPC_UNIMPLEMENTED = 12,
    MESH_GRPC_INTERNAL = 13,
    MESH_GRPC_UNAVAILABLE = 14,
    MESH_GRPC_DATA_LOSS = 15,
    MESH_GRPC_UNAUTHENTICATED = 16,
};
/* "DEADLINE_EXCEEDED"; "UNKNOWN_STATUS" outside 0..16. */
const char *mesh_grpc_status_name(int status);

enum mesh_grpc_kind {
    MESH_GRPC_UNARY = 0,     /* exactly one request message, at most one response */
    MESH_GRPC_SERVER_STREAM, /* one request, any number of responses */
    MESH_GRPC_CLIENT_STREAM, /* any number of requests, at most one response */
    MESH_GRPC_BIDI,
};

#define MESH_GRPC_DEFAULT_MAX_MESSAGE (4u << 20)
#define MESH_GRPC_DEFAULT_SEND_QUEUE  (1u << 20)

struct mesh_grpc_server;
struct mesh_grpc_client;
struct mesh_grpc_call;

/* --- addresses ---------------------------------------------------------------------------- */

struct mesh_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};
/* Parses "127.0.0.1:8088", "[::1]:8088", "0.0.0.0:8088", "localhost:8088"
 * (numeric hosts only, no DNS). On failure returns MESH_EINVAL and writes one
 * line naming |text| to |errbuf|. */
int mesh_addr_parse(const char *text, struct mesh_addr *addr, char *errbuf, size_t errlen);
/* "127.0.0.1:8088" / "[::1]:8088" into |buf| (48 bytes are enough); returns |buf|. */
char *mesh_addr_format(const struct mesh_addr *addr, char *buf, size_t len);

/* --- calls (both sides) ------------------------------------------------------------------- */

/* Queues one message. 0; MESH_ETOOBIG when the call's send queue is over its
 * cap (nothing queued; on_writable follows once it has drained to half);
 * MESH_EINVAL when the call cannot send (finished, half-closed, cancelled,
 * a second response of a unary method). A message larger than the cap is
 * accepted when the queue is empty. */
int mesh_grpc_call_send(struct mesh_grpc_call *call, const void *msg, size_t len);
/* Bytes queued and not yet handed to HTTP/2. */
size_t mesh_grpc_call_queued(const struct mesh_grpc_call *call);
/* Server: ends the call with |status| and |message| (NULL for none; sent
 * percent-encoded) after the queued messages; trailers-only when nothing was
 * sent. The handler drops |call|. 0 or MESH_EINVAL (already ended). */
int mesh_grpc_call_finish(struct mesh_grpc_call *call, int status, const char *message);
/* Client: half-close (no more messages). 0 or MESH_EINVAL. */
int mesh_grpc_call_close_send(struct mesh_grpc_call *call);
/* Either side: RST_STREAM(CANCEL) now; no further callbacks; drop |call|. */
void mesh_grpc_call_cancel(struct mesh_grpc_call *call);
/* Stops (paused != 0) or resumes delivering messages: while paused the
 * stream's flow-control window is not reopened, so the peer stops sending
 * once it is used up; what arrived meanwhile is delivered on resume. */
void mesh_grpc_call_pause_recv(struct mesh_grpc_call *call, int paused);

/* The call's context: a server call starts with its method's |ctx|, a client
 * call with the |ctx| given to mesh_grpc_client_call(). */
void mesh_grpc_call_set_ctx(struct mesh_grpc_call *call, void *ctx);
void *mesh_grpc_call_ctx(const struct mesh_grpc_call *call);
/* "/mesh.tap.v1.Collector/Report". */
const char *mesh_grpc_call_method(const struct mesh_grpc_call *call);
/* Server: a request header by lower-case name ("authorization"), or NULL.
 * Valid while the call is. */
const char *mesh_grpc_call_header(const struct mesh_grpc_call *call, const char *name);
/* Server: the peer as "ip:port". */
const char *mesh_grpc_call_peer(const struct mesh_grpc_call *call);
/* Server: the deadline from grpc-timeout (mesh_loop_now_us() clock), 0 if none. */
uint64_t mesh_grpc_call_deadline_us(const struct mesh_grpc_call *call);

/* --- server ------------------------------------------------------------------------------- */

/* What a method does with its calls. |ctx| is mesh_grpc_call_ctx(call). All
 * optional but on_message. For UNARY and SERVER_STREAM methods on_message is
 * called once, then on_half_close; a request with no message or with two ends
 * with INTERNAL before the handler sees it. */
struct mesh_grpc_handler {
    /* headers accepted, before any message; may finish at once (auth). */
    void (*on_start)(struct mesh_grpc_call *call, void *ctx);
    void (*on_message)(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx);
    /* the client sent its last message */
    void (*on_half_close)(struct mesh_grpc_call *call, void *ctx);
    /* the call ended without the handler: drop |call| on return */
    void (*on_cancel)(struct mesh_grpc_call *call, void *ctx);
    /* the send queue drained after mesh_grpc_call_send() said MESH_ETOOBIG */
    void (*on_writable)(struct mesh_grpc_call *call, void *ctx);
};

struct mesh_grpc_method {
    const char *name; /* "/mesh.tap.v1.Collector/Report"; must outlive the server */
    enum mesh_grpc_kind kind;
    const struct mesh_grpc_handler *handler; /* must outlive the server */
    void *ctx;
};

/* Zero means the default for every field. */
struct mesh_grpc_server_opts {
    unsigned max_connections;        /* 1024; more are accepted and closed */
    uint32_t max_concurrent_streams; /* 100 (SETTINGS) */
    uint32_t max_header_list;        /* 16 KiB (SETTINGS; larger → HTTP 431) */
    size_t max_recv_message;         /* 4 MiB; larger → RESOURCE_EXHAUSTED; compressed
                                      * messages → UNIMPLEMENTED (no codecs) */
    size_t send_queue;               /* 1 MiB per call */
    uint32_t stream_window;          /* 1 MiB per stream */
    /* A connection with no call open for idle_ms is closed (5 min); one that
     * has not begun its first call first_call_ms after it was accepted is
     * closed sooner (10 s, or idle_ms if smaller): idle sockets, and clients
     * trickling a preface, cannot hold max_connections. */
    unsigned idle_ms, first_call_ms;
    /* Called after a request's headers, before the handler: returns
     * MESH_GRPC_OK to go on, or a status (UNAUTHENTICATED, …) to end the call
     * with, trailers-only. |message| may be set to a static string. */
    int (*authorize)(struct mesh_grpc_call *call, const char **message, void *ctx);
    void *authorize_ctx;
    /* TLS (1.2 and up, ALPN "h2" only) instead of h2c when both are set:
     * PEM files, read once by mesh_grpc_server_new() */
    const char *tls_cert, *tls_key;
};

/* Listens on |listen| (mesh_addr_parse; port 0 picks one). |methods| is copied.
 * Returns NULL with one line in |errbuf| on failure. */
struct mesh_grpc_server *mesh_grpc_server_new(struct mesh_loop *loop, const char *listen,
                                              const struct mesh_grpc_method *methods,
                                              size_t nmethods,
                                              const struct mesh_grpc_server_opts *opts,
                                              char *errbuf, size_t errlen);
/* The bound port (useful with port 0). */
int mesh_grpc_server_port(const struct mesh_grpc_server *server);
/* Open connections and calls, for tests and metrics. */
unsigned mesh_grpc_server_nconns(const struct mesh_grpc_server *server);
unsigned mesh_grpc_server_ncalls(const struct mesh_grpc_server *server);
/* Closes every connection (on_cancel for calls a handler holds) and the listener. */
void mesh_grpc_server_free(struct mesh_grpc_server *server);

/* --- client ------------------------------------------------------------------------------- */

enum mesh_grpc_client_state {
    MESH_GRPC_DISCONNECTED = 0, /* after on_lost until mesh_grpc_client_reconnect() */
    MESH_GRPC_CONNECTING,       /* calls may be started; they go out once connected */
    MESH_GRPC_CONNECTED,
};

struct mesh_grpc_client_opts {
    /* TCP connected (calls started while connecting are on their way) */
    void (*on_connected)(struct mesh_grpc_client *client, void *ctx);
    /* a connection attempt failed or the connection ended; its calls got
     * on_close(UNAVAILABLE) first. |why| is one line. Reconnecting (with a
     * backoff) is the caller's: mesh_grpc_client_reconnect(). */
    void (*on_lost)(struct mesh_grpc_client *client, const char *why, void *ctx);
    void *ctx;
    size_t max_recv_message;     /* 0: 4 MiB */
    size_t send_queue;           /* 0: 1 MiB per call */
    unsigned connect_timeout_ms; /* 0: 10 s */
    const char *authorization;   /* sent as "authorization" on every call; copied */
    /* :authority of every call ("voting-svc.emojivoto:8080", for a proxy that routes
     * by it); copied. NULL: the address connected to. */
    const char *authority;
};

/* Starts connecting to |addr|. NULL with one line in |errbuf| for a bad
 * address or no memory; connection failures come later through on_lost. */
struct mesh_grpc_client *mesh_grpc_client_new(struct mesh_loop *loop, const char *addr,
                                              const struct mesh_grpc_client_opts *opts,
                                              char *errbuf, size_t errlen);
/* After on_lost: connects again. 0, or MESH_EINVAL when not disconnected. */
int mesh_grpc_client_reconnect(struct mesh_grpc_client *client);
enum mesh_grpc_client_state mesh_grpc_client_state(const struct mesh_grpc_client *client);
/* Calls not yet freed, for tests and metrics. */
unsigned mesh_grpc_client_ncalls(const struct mesh_grpc_client *client);
/* Calls still open get on_close(CANCELLED) first. Not from a callback of |client|. */
void mesh_grpc_client_free(struct mesh_grpc_client *client);

struct mesh_grpc_client_cbs {
    void (*on_message)(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx);
    /* the end: |status| from the trailers, or made up locally (UNAVAILABLE
     * when the connection is lost, DEADLINE_EXCEEDED, …); |message| may be "".
     * Drop |call| on return. */
    void (*on_close)(struct mesh_grpc_call *call, int status, const char *message, void *ctx);
    void (*on_writable)(struct mesh_grpc_call *call, void *ctx);
};

/* Starts a call of |method| ("/pkg.Svc/Method"); |cbs| must outlive it.
 * |timeout_ms| > 0 sends grpc-timeout and ends the call locally with
 * DEADLINE_EXCEEDED when it passes. Returns NULL when disconnected or out of
 * memory. Send with mesh_grpc_call_send(), end with mesh_grpc_call_close_send(). */
struct mesh_grpc_call *mesh_grpc_client_call(struct mesh_grpc_client *client, const char *method,
                                             const struct mesh_grpc_client_cbs *cbs,
                                             unsigned timeout_ms, void *ctx);

/* Blocking, for CLIs: one unary call on a private loop and connection;
 * |timeout_ms| bounds connecting and the call (0: no deadline).
 * Returns 0 when the call ended OK with one response message, appended to
 * |resp|. Otherwise MESH_EINVAL (bad |addr|), MESH_EIO (no connection,
 * deadline), MESH_EPROTO (a non-OK status) or MESH_ETOOBIG (|resp| full); |*status| holds the gRPC
 * status (UNAVAILABLE when there was no connection) and |errbuf| one line naming |addr| and
 * |method|. */
int mesh_grpc_unary(const char *addr, const char *method, const void *req, size_t req_len,
                    struct mesh_buf *resp, unsigned timeout_ms, int *status, char *errbuf,
                    size_t errlen);

/* --- bearer tokens (--token-file FILE, MESH_TOKEN_FILE) ---------------------------------- */

#define MESH_GRPC_TOKEN_MAX 4096
/* Reads the token in |path|: its first line without surrounding blanks,
 * 16 to MESH_GRPC_TOKEN_MAX printable ASCII characters (no spaces), into
 * |token| (|len| > MESH_GRPC_TOKEN_MAX). 0, or MESH_EIO (unreadable) /
 * MESH_EINVAL (not a token) with one line naming |path| in |errbuf|. */
int mesh_grpc_token_read(const char *path, char *token, size_t len, char *errbuf, size_t errlen);
/* Process-wide: every client made afterwards whose opts.authorization is
 * NULL (mesh_grpc_client_new, mesh_grpc_unary) sends "authorization: Bearer
 * |token|". Copied; NULL forgets it. 0 or MESH_ENOMEM. Call from main(),
 * before any client exists. */
int mesh_grpc_client_set_token(const char *token);
/* Process-wide, like the token: every client made afterwards speaks TLS
 * (ALPN "h2") and checks the server's certificate against the PEM
 * certificates in |ca_file| and the address it connects to (IP SAN).
 * NULL: h2c. 0, or MESH_EIO with one line in |errbuf| (unreadable file). */
int mesh_grpc_client_set_tls(const char *ca_file, char *errbuf, size_t errlen);
/* An authorize hook for struct mesh_grpc_server_opts, |ctx| the token (NUL-
 * terminated, outliving the server): a call whose "authorization" is not
 * exactly "Bearer TOKEN" ends UNAUTHENTICATED. Compares in constant time. */
int mesh_grpc_bearer_authorize(struct mesh_grpc_call *call, const char **message, void *ctx);

/* --- wire helpers (exposed for tests and the proxy) --------------------------------------- */

/* grpc-timeout ("100m", "5S", …: 1–8 digits and one of H M S m u n) in µs;
 * MESH_EINVAL when malformed. */
int mesh_grpc_timeout_parse(const char *value, size_t len, uint64_t *us);
/* Percent-encodes |msg| for grpc-message into |buf| (MESH_ETOOBIG if full). */
int mesh_grpc_message_encode(struct mesh_buf *buf, const char *msg);
/* Decodes grpc-message; malformed escapes are kept as they are. */
int mesh_grpc_message_decode(struct mesh_buf *buf, const char *value, size_t len);

#endif
