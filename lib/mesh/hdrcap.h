/* mesh/hdrcap.h — which headers a tap event carries, and their capture.
 *
 * DESIGN.md "The tap event": an event carries the request and final
 * response headers, and the response's trailers, named by --tap-header,
 * none by default. A header on the redaction list (authorization, cookie,
 * set-cookie, proxy-authorization, and --redact-header's) goes by name only,
 * marked redacted: its value is never kept. Pseudo-headers, mesh-src and mesh-dst are not kept (they are
 * the event's own fields and labels). At most MESH_EVT_HEADERS_MAX / 2 of
 * the request's and as many of the response's, values cut at
 * MESH_EVT_HEADER_VALUE_MAX bytes on a UTF-8 boundary. mesh-proxy captures
 * what it forwards; `mesh replay` and `mesh tap --pcap` what a capture shows.
 *
 * A capture holds only what it kept, in one capped buffer, so an exchange
 * whose headers are all passed over costs nothing and a kept one at most
 * MESH_HDRCAP_MAX bytes.
 */
#ifndef MESH_HDRCAP_H
#define MESH_HDRCAP_H

#include <stddef.h>

#include "mesh/buf.h"
#include "mesh/evt.h"

/* Header names for --tap-header / --redact-header, lower case. */
#define MESH_HDR_NAMES_MAX 32
#define MESH_HDR_NAME_MAX 64 /* with the NUL */
struct mesh_hdr_names {
    char name[MESH_HDR_NAMES_MAX][MESH_HDR_NAME_MAX];
    unsigned n;
    int all; /* "*": every header / every value redacted */
};
/* Adds the names of a comma-separated |list| (HTTP tokens, or "*").
 * Returns 0, or -1 with the reason in |why|. */
int mesh_hdr_names_add(struct mesh_hdr_names *names, const char *list, const char **why);

/* --tap-header and --redact-header together. */
struct mesh_hdr_sel {
    struct mesh_hdr_names tap, redact;
};
#define mesh_hdr_sel_on(sel) ((sel) != NULL && ((sel)->tap.n > 0 || (sel)->tap.all))
/* Whether --tap-header names the field |name| (any case). */
int mesh_hdr_sel_wants(const struct mesh_hdr_sel *sel, const char *name, size_t len);

/* One exchange's kept headers: records of a flag byte, the lower-case name
 * and the value (empty when redacted), each NUL-terminated. A zeroed struct
 * is an empty capture. */
#define MESH_HDRCAP_MAX (MESH_EVT_HEADERS_MAX * (2 + MESH_HDR_NAME_MAX + MESH_EVT_HEADER_VALUE_MAX))
struct mesh_hdrcap {
    struct mesh_buf recs;
    unsigned char nkind[2];
};
void mesh_hdrcap_reset(struct mesh_hdrcap *cap);
void mesh_hdrcap_free(struct mesh_hdrcap *cap);
/* Where a field comes from. Trailers count with the response's fields. */
enum { MESH_HDR_REQUEST = 0, MESH_HDR_RESPONSE = 1, MESH_HDR_TRAILER = 2 };
/* Keeps the field (of |kind|, MESH_HDR_*: the request head, the final
 * response head, or the response's trailers) if |sel| asks for it. A field
 * that finds no memory is lost, never the event. */
void mesh_hdrcap_offer(const struct mesh_hdr_sel *sel, struct mesh_hdrcap *cap, unsigned kind,
                       const char *name, size_t namelen, const char *value, size_t valuelen);
/* mesh_hdrcap_offer() for each of HTTP/1 fields ("name\0value\0"…, as
 * struct mesh_h1_msg holds them). */
void mesh_hdrcap_offer_h1(const struct mesh_hdr_sel *sel, struct mesh_hdrcap *cap, unsigned kind,
                          const char *fields, size_t fields_len);
/* Points |evt| at what |cap| holds, through |hs|; both must outlive the
 * event's use. */
void mesh_hdrcap_apply(const struct mesh_hdrcap *cap, struct mesh_evt *evt,
                       struct mesh_header hs[MESH_EVT_HEADERS_MAX]);

#endif
