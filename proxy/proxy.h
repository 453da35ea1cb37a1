/* proxy/proxy.h — mesh-proxy's core: what the protocol modules share.
 *
 * One process, one thread, one mesh_loop. proxy.c owns the listeners, accepts,
 * detects the protocol from the first bytes and hands the connection to one of
 * px_h2_serve(), px_h1_serve(), px_tcp_serve(); from then on that module owns
 * the px_conn and ends it with px_conn_close(). Routes and endpoints (with their
 * balancer state) belong to the struct px and live as long as it does. A module
 * reports each finished request with px_tap() (tap event + metrics) and each
 * byte it moves on the downstream socket with px_conn_count(). When the proxy
 * drains (SIGTERM), every open connection's |on_drain| is called once: h2 sends
 * GOAWAY and finishes its streams, h1 closes after the request in flight; after
 * the drain deadline whatever is left is closed.
 */
#ifndef MESH_PROXY_H
#define MESH_PROXY_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mesh/buf.h"
#include "mesh/evt.h"
#include "mesh/hdrcap.h"
#include "mesh/loop.h"

struct px;
struct px_conn;
struct px_metrics;
struct mesh_tapsend;

/* ---- configuration -------------------------------------------------------------------- */

struct px_limits {
    unsigned max_conns;          /* accepted connections at once; 10000 */
    size_t max_header;           /* HTTP/1 head / HTTP/2 header list bytes; 64 KiB (431) */
    unsigned header_timeout_ms;  /* first byte → request head complete; 10 s */
    unsigned idle_timeout_ms;    /* no request in flight and no byte moved; 60 s */
    unsigned detect_timeout_ms;  /* no first byte → opaque TCP; 1 s */
    unsigned connect_timeout_ms; /* upstream connect; 3 s */
    unsigned response_timeout_ms;/* request sent whole → response head; 0: none (504) */
    unsigned max_streams;        /* HTTP/2 concurrent streams per connection; 256 */
    unsigned drain_ms;           /* graceful drain deadline; 10 s */
};

/* One upstream address and its balancer state (balance.c). */
struct px_endpoint {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char name[48];            /* "127.0.0.1:8080" / "[::1]:8080" */
    /* peak-EWMA balancer state */
    double ewma_us;           /* latency estimate; 0 until the first response */
    uint64_t stamp_us;        /* when ewma_us was last updated (monotonic) */
    unsigned pending;         /* requests in flight */
    unsigned failures;        /* consecutive failures (connect errors, resets, 5xx) */
    uint64_t ejected_until_us;/* monotonic; 0 when not ejected */
    void *h1_pool;            /* h1.c: idle upstream connections to this endpoint */
};

/* A route: what an authority (Host / :authority) resolves to. */
struct px_route {
    char *authority;          /* "web.emojivoto:80", "*" for the default route */
    struct mesh_labels labels;/* the destination workload, where the route says */
    struct px_endpoint *eps;
    size_t neps;
};

/* The per-direction TCP counters (DESIGN.md "Metrics"), downstream side. */
struct px_tcp_stats {
    uint64_t open_total, close_total, open_now, read_bytes, write_bytes;
};

struct px_cfg {
    const char *inbound, *inbound_to, *outbound, *admin; /* NULL: listener off */
    const char *collector;    /* NULL: tap off (events are counted, not sent) */
    struct mesh_labels self;  /* --namespace, --deployment, --pod */
    int transparent;          /* --transparent: connections redirected by `mesh init` */
    struct px_limits limits;
    size_t tap_queue_batches; /* tapsend max_batches */
    struct mesh_hdr_sel headers;  /* --tap-header, --redact-header (mesh/hdrcap.h) */
};

struct px_listener;

struct px {
    struct mesh_loop *loop;
    struct px_cfg cfg;
    struct px_route *routes;  /* outbound, in order; lookup in px_route_find() */
    size_t nroutes;
    struct px_route inbound_route; /* --inbound-to */
    struct mesh_tapsend *tap; /* NULL when tap is off */
    struct px_metrics *metrics;
    struct px_tcp_stats tcp[2]; /* [0] inbound, [1] outbound */
    uint64_t next_conn_id;
    unsigned nconns;
    int draining, ready;
    struct px_conn *conns;    /* every open downstream connection */
    struct px_listener *inbound, *outbound;
    uint64_t tap_off_events;  /* events made while tap is off (no collector) */
    uint64_t refused_conns;   /* accepted and closed at once: over max_conns */
};

/* ---- the proxy's life (proxy.c, driven by main.c) ------------------------------------- */

/* NULL with one line in |err|. Takes |cfg| by value; its strings must outlive px. */
struct px *px_new(struct mesh_loop *loop, const struct px_cfg *cfg, char *err, size_t errlen);
/* Binds the listeners and the admin server. 0, or MESH_EIO with one line in |err|. */
int px_start(struct px *px, char *err, size_t errlen);
/* The bound port of a listener (useful with port 0), or -1. */
int px_listener_port(const struct px_listener *lst);
/* Stops accepting and asks every connection to finish (on_drain). */
void px_drain(struct px *px);
/* 1 when nothing is open and every tap event was acknowledged. */
int px_drained(const struct px *px);
/* Closes every connection now (on_close). */
void px_close_all(struct px *px);
void px_free(struct px *px);

/* "AUTHORITY=HOST:PORT[,HOST:PORT…][@NAMESPACE/DEPLOYMENT]" into |route|
 * (owning its strings; px_route_free). 0, or MESH_EINVAL with one line in |err|. */
int px_route_parse(const char *spec, struct px_route *route, char *err, size_t errlen);
void px_route_free(struct px_route *route);

/* ---- downstream connections ------------------------------------------------------------ */

struct px_conn {
    struct px *px;
    int fd;
    uint64_t id;              /* tap event id "ID:STREAM" */
    enum mesh_direction dir;  /* MESH_DIR_INBOUND or MESH_DIR_OUTBOUND */
    char peer[48], local[48]; /* "ip:port" */
    struct mesh_buf in;       /* bytes read during detection, not yet used */
    uint64_t accepted_us;     /* monotonic */
    int detecting;            /* proxy.c still reading the first bytes */
    /* Set by the owning module: */
    void *proto;              /* the module's connection state */
    void (*on_drain)(struct px_conn *conn);
    /* Ends everything now (drain deadline, shutdown): frees the module's state
     * (timers, upstream sockets) and calls px_conn_close(). NULL: just close. */
    void (*on_close)(struct px_conn *conn);
    struct px_conn *next, *prev; /* px->conns */
    /* --transparent: where the connection was going before iptables redirected
     * it (px_conn_set_orig); px_route_find() returns |orig_route| then. */
    int has_orig;
    struct px_route orig_route; /* one endpoint, |orig_ep|; owns nothing */
    struct px_endpoint orig_ep;
};

/* Takes a connected, non-blocking socket |fd| over as a downstream connection
 * of direction |dir|, as the accept path does (counters, conn list, peer and
 * local names from getpeername/getsockname, --transparent's original
 * destination). |serve| NULL detects the protocol from the first bytes as for
 * accepted connections; px_h1_serve, px_h2_serve or px_tcp_serve hands it to
 * that module at once (which may close it before this returns). For tests and
 * fuzzers (tests/fuzz/proxy.h), which feed a socketpair(2) end. 0, or
 * MESH_ENOMEM with |fd| closed. */
int px_conn_adopt(struct px *px, int fd, enum mesh_direction dir,
                  void (*serve)(struct px_conn *conn));
/* Closes the socket, updates the TCP counters and frees |conn| (its |in|
 * buffer too; |proto| is the module's to free before). */
void px_conn_close(struct px_conn *conn);
/* Counts bytes moved on the downstream socket. */
static inline void px_conn_count(struct px_conn *conn, uint64_t nread, uint64_t nwritten)
{
    struct px_tcp_stats *st = &conn->px->tcp[conn->dir == MESH_DIR_OUTBOUND];
    st->read_bytes += nread;
    st->write_bytes += nwritten;
}
/* --transparent: sets |conn|'s per-connection route from |orig| (what
 * SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST said) and |local| (getsockname).
 * Outbound: |orig| itself. Inbound: the loopback address of orig's family on
 * orig's port, because the proxy's own connection to its pod's IP would go
 * through `mesh init`'s redirect chain back to its inbound port (a loop),
 * while loopback returns early. 0, or MESH_EINVAL (conn unchanged) when
 * |orig| is not IP or equals |local|: the connection was not redirected and
 * forwarding it "to where it was going" would come straight back. */
int px_conn_set_orig(struct px_conn *conn, const struct sockaddr_storage *orig,
                     const struct sockaddr_storage *local);
static inline struct px_tcp_stats *px_conn_stats(struct px_conn *conn)
{
    return &conn->px->tcp[conn->dir == MESH_DIR_OUTBOUND];
}

/* What the first |len| bytes of a connection say: PX_DETECT_MORE while they
 * could still be the HTTP/2 preface or a request line's method and space. */
enum { PX_DETECT_MORE, PX_DETECT_H2, PX_DETECT_H1, PX_DETECT_TCP };
int px_detect(const uint8_t *buf, size_t len);

/* The modules. Each takes |conn| over; the bytes already read are in conn->in. */
void px_h2_serve(struct px_conn *conn);
void px_h1_serve(struct px_conn *conn);
void px_tcp_serve(struct px_conn *conn);
/* h1.c: closes the idle upstream connections and frees the pools of every
 * endpoint (px_free calls it before the routes go). */
void px_h1_free_pools(struct px *px);
/* The same for one endpoint (a transparent connection's own, when it closes). */
void px_h1_free_pool(struct px_endpoint *ep);

/* ---- routes, endpoints, upstream sockets --------------------------------------------- */

/* The route for a request on |conn| to |authority| (|len| bytes, may be NULL).
 * Inbound: always the --inbound-to route. Outbound: the route whose authority
 * equals it (ASCII case-insensitive; "host" also matches a route "host:80"),
 * else "*", else NULL (the caller answers 502 / refuses the stream).
 * A connection with an original destination (conn->has_orig, --transparent)
 * gets conn->orig_route instead of --inbound-to (inbound) or of "*" and NULL
 * (outbound: a route naming the authority still wins). */
struct px_route *px_route_find(struct px *px, struct px_conn *conn, const char *authority,
                               size_t len);

/* balance.c: power of two choices over peak-EWMA latency, as linkerd2-proxy:
 * cost = ewma × (pending + 1); ejected endpoints are skipped unless all are.
 * Never NULL for a route with endpoints. */
struct px_endpoint *px_endpoint_pick(struct px_route *route, uint64_t now_us);
/* A request to |ep| starts / ends. |latency_us|: until the response head
 * (or the failure); |failed|: connect error, reset, no response or 5xx.
 * Five consecutive failures eject the endpoint for 10 s (doubling, up to 5 min). */
void px_endpoint_start(struct px_endpoint *ep);
void px_endpoint_done(struct px_endpoint *ep, uint64_t now_us, uint64_t latency_us, int failed);
/* Seeds the balancer's PRNG (module state); for repeatable tests. */
void px_balance_seed(uint64_t seed);

/* A non-blocking socket connecting to |ep| (TCP_NODELAY, close-on-exec);
 * watch it for MESH_WRITE and read SO_ERROR. Returns the fd or MESH_EIO. */
int px_connect(const struct px_endpoint *ep);

/* ---- who is calling ------------------------------------------------------------------------ */

/* An outbound proxy tells the inbound proxy on the other side whose request
 * it forwards: it adds "mesh-src: NAMESPACE/DEPLOYMENT/POD" (its own labels,
 * any part may be empty) and the inbound proxy takes it off before the
 * application sees it, and labels the event's source with it. Both strip
 * whatever a client sent under that name, so an application cannot pose as
 * another workload by accident. (Linkerd learns this from mTLS identities;
 * mesh has no TLS between proxies, so this is labelling, not authentication.) */
#define PX_SRC_HEADER "mesh-src"
/* The same the other way: the inbound proxy adds "mesh-dst: NS/DEPLOY/POD" to
 * the response, the outbound proxy takes it off and labels its event's
 * destination with it (better than a route's @NS/DEPLOY: it names the pod
 * that answered, and works for destinations no route names). */
#define PX_DST_HEADER "mesh-dst"
/* This proxy's value for the header into |buf|; its length, 0 when the proxy
 * has no labels (then no header is sent). */
size_t px_src_value(const struct px *px, char *buf, size_t len);
/* Parses a header value into |labels|, its strings in |store|. */
void px_src_parse(const char *value, size_t len, char *store, size_t storelen,
                  struct mesh_labels *labels);

/* ---- tap and metrics -------------------------------------------------------------------- */

/* Header capture (mesh/hdrcap.h): the modules offer each field of the
 * request and final response heads and of the response's trailers to a
 * struct mesh_hdrcap when px_hdrcap_on() and apply it to the event before
 * px_tap(). */
#define px_hdrcap_on(px) mesh_hdr_sel_on(&(px)->cfg.headers)

/* One finished request on |conn|. The module fills what the request said
 * (ts_us, proto, method, scheme, authority, path, status, grpc_status, reset,
 * error, latency_us, duration_us, req_bytes, rsp_bytes), |dst| (the endpoint
 * or upstream address) and |id| as the stream number ("7" → "CONN:7" is
 * made here). px_tap fills direction, src, the labels (this proxy's own, and
 * |route|'s for the other side; |route| may be NULL; an inbound event keeps
 * the src_labels the module read from PX_SRC_HEADER, an outbound one the
 * dst_labels from PX_DST_HEADER), sends the event to the
 * collector (or counts it dropped) and updates the request metrics. */
void px_tap(struct px_conn *conn, const struct px_route *route, struct mesh_evt *evt,
            uint64_t stream);

/* metrics.c: Prometheus text, DESIGN.md "Metrics" with Linkerd's names.
 * Series keyed by (direction, authority, dst labels) and, for responses, by
 * (status_code, grpc_status_code, classification). Capped at 10000 series;
 * past it requests are counted under authority="overflow". */
struct px_metrics *px_metrics_new(void);
void px_metrics_free(struct px_metrics *m);
void px_metrics_request(struct px_metrics *m, const struct mesh_labels *self,
                        const struct mesh_evt *evt, const struct px_route *route);
/* Appends the whole exposition (request, response, latency, tcp, tap counters). */
int px_metrics_render(const struct px *px, struct mesh_buf *out);

/* admin.c: GET /metrics, /ready (200 once listening, 503 while draining), /live.
 * Returns 0 or MESH_EIO with one line in |err|. */
int px_admin_start(struct px *px, const char *listen, char *err, size_t errlen);
void px_admin_stop(struct px *px);
/* The admin listener's bound port (useful with port 0), or -1 when off. */
int px_admin_port(const struct px *px);

#endif
