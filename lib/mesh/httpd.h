/* mesh/httpd.h — a small HTTP/1.1 server on a mesh_loop, for small apps (the demo's web,
 * admin endpoints, a dashboard with server-sent events).
 *
 * One request at a time per connection (keep-alive; pipelined input waits), parsed strictly
 * by mesh_h1 with caps on connections, head (431) and body (413) and header/idle timeouts.
 * The handler holds a request until ONE end: mesh_httpd_respond(), mesh_httpd_stream_end(),
 * or our on_gone (client left, timeout, server freed; drop the pointer on return). Without
 * on_gone a request outlives its connection until the handler ends it, so answering late
 * is always safe. Callbacks run on the loop's thread and never free the server they come from.
 */
#ifndef MESH_HTTPD_H
#define MESH_HTTPD_H

#include <stddef.h>

#include "mesh/loop.h"

struct mesh_httpd;
struct mesh_httpd_req;

/* A complete request (head and body) arrived. Answer now or later. */
typedef void (*mesh_httpd_handler)(struct mesh_httpd_req *req, void *ctx);
/* The request ended without the handler (see above); |req| is freed on return. */
typedef void (*mesh_httpd_gone_cb)(struct mesh_httpd_req *req, void *ctx);
/* A stream's pending output fell below half the cap after a write said MESH_ETOOBIG. */
typedef void (*mesh_httpd_writable_cb)(struct mesh_httpd_req *req, void *ctx);

/* Zero means the default for every field but |handler|. */
struct mesh_httpd_opts {
    mesh_httpd_handler handler;
    void *ctx;
    unsigned max_conns;         /* 256; more are accepted and closed at once */
    size_t max_head;            /* 8 KiB; larger → 431 and close */
    size_t max_body;            /* 64 KiB; larger → 413 and close */
    size_t max_pending;         /* 256 KiB of unsent stream output; over it writes fail */
    unsigned header_timeout_ms; /* 10 s: a request's first byte → its last */
    unsigned idle_timeout_ms;   /* 60 s: keep-alive with nothing in flight, or no write progress */
    /* HTTPS (TLS 1.2+, HTTP/1.1) when both are set: PEM files read by mesh_httpd_new() */
    const char *tls_cert, *tls_key;
};

/* Listens on |listen| (mesh_addr_parse; port 0 picks one). NULL with one line in |errbuf|. */
struct mesh_httpd *mesh_httpd_new(struct mesh_loop *loop, const char *listen,
                                  const struct mesh_httpd_opts *opts, char *errbuf, size_t errlen);
int mesh_httpd_port(const struct mesh_httpd *srv);
/* Open connections, for tests and metrics. */
unsigned mesh_httpd_nconns(const struct mesh_httpd *srv);
/* Closes every connection (on_gone for requests a handler holds) and the listener. */
void mesh_httpd_free(struct mesh_httpd *srv);

/* --- the request (valid until it ends, see above) ----------------------------------------- */

const char *mesh_httpd_method(const struct mesh_httpd_req *req);  /* "GET" */
const char *mesh_httpd_target(const struct mesh_httpd_req *req);  /* "/api/vote?choice=%3Ajoy%3A" */
const char *mesh_httpd_path(const struct mesh_httpd_req *req);    /* "/api/vote" (not decoded) */
const char *mesh_httpd_query(const struct mesh_httpd_req *req);   /* "choice=%3Ajoy%3A" or "" */
/* The first header called |name| (case-insensitive), or NULL. */
const char *mesh_httpd_header(const struct mesh_httpd_req *req, const char *name);
/* The body (|*len| bytes, NUL-terminated; "" when none). */
const char *mesh_httpd_body(const struct mesh_httpd_req *req, size_t *len);
const char *mesh_httpd_peer(const struct mesh_httpd_req *req); /* "ip:port" */
void mesh_httpd_set_ctx(struct mesh_httpd_req *req, void *ctx);
void *mesh_httpd_ctx(const struct mesh_httpd_req *req);
/* Asks to be told when the request dies before the handler ends it, and (streams)
 * when output drained. Either may be NULL. */
void mesh_httpd_watch(struct mesh_httpd_req *req, mesh_httpd_gone_cb on_gone,
                      mesh_httpd_writable_cb on_writable);

/* Parameter |name| of a query string ("a=1&b=%3Ax%3A"), percent- and '+'-decoded into
 * |out|: its length, MESH_EINVAL when absent, MESH_ETOOBIG when |outlen| is too small. */
int mesh_httpd_query_param(const char *query, const char *name, char *out, size_t outlen);

/* --- answers ------------------------------------------------------------------------------- */

/* Adds a response header line ("Cache-Control", "no-cache") before respond or
 * stream_start; copied. 0, MESH_EINVAL (after the head, or CR/LF inside), MESH_ENOMEM. */
int mesh_httpd_add_header(struct mesh_httpd_req *req, const char *name, const char *value);
/* Ends |req| with a whole response (|len| bytes of |body|, copied). 0, or MESH_EIO when
 * the client is gone (the request is freed all the same), MESH_EINVAL when streaming. */
int mesh_httpd_respond(struct mesh_httpd_req *req, int status, const char *content_type,
                       const void *body, size_t len);
/* Starts a response of unknown length (chunked; HTTP/1.0: until close). 0, MESH_EIO
 * (client gone; the handler still ends it with stream_end), MESH_EINVAL. */
int mesh_httpd_stream_start(struct mesh_httpd_req *req, int status, const char *content_type);
/* Queues |len| bytes. 0; MESH_ETOOBIG when pending output would pass max_pending
 * (nothing queued; on_writable follows; a write into an empty queue is always taken);
 * MESH_EIO when the client is gone; MESH_EINVAL when not streaming. */
int mesh_httpd_stream_write(struct mesh_httpd_req *req, const void *data, size_t len);
/* Ends the stream (last chunk) and |req|. 0 or MESH_EIO (client gone). */
int mesh_httpd_stream_end(struct mesh_httpd_req *req);

/* "Not Found" for 404, "Unknown" for codes it does not know. */
const char *mesh_httpd_reason(int status);

#endif
