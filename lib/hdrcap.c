#include "mesh/hdrcap.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "mesh/h1.h"

enum { REC_RESPONSE = 1, REC_REDACTED = 2, REC_TRAILER = 4, REC_FLAG = 0x40 }; /* REC_FLAG: never a NUL */

int mesh_hdr_names_add(struct mesh_hdr_names *names, const char *list, const char **why)
{
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        if (len == 1 && *p == '*') {
            names->all = 1;
        } else {
            if (len == 0) {
                *why = "an empty header name";
                return -1;
            }
            if (len >= MESH_HDR_NAME_MAX) {
                *why = "a header name longer than 63 bytes";
                return -1;
            }
            for (size_t i = 0; i < len; i++)
                if (!mesh_h1_is_tchar((unsigned char)p[i])) {
                    *why = "not a header name (letters, digits and !#$%&'*+-.^_`|~ only)";
                    return -1;
                }
            if (names->n == MESH_HDR_NAMES_MAX) {
                *why = "more than 32 header names";
                return -1;
            }
            char *to = names->name[names->n++];
            for (size_t i = 0; i < len; i++)
                to[i] = (char)tolower((unsigned char)p[i]);
            to[len] = '\0';
        }
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

static int names_have(const struct mesh_hdr_names *names, const char *name, size_t len)
{
    for (unsigned i = 0; i < names->n; i++)
        if (strncasecmp(names->name[i], name, len) == 0 && names->name[i][len] == '\0')
            return 1;
    return 0;
}

int mesh_hdr_sel_wants(const struct mesh_hdr_sel *sel, const char *name, size_t len)
{
    return sel->tap.all || names_have(&sel->tap, name, len);
}

void mesh_hdrcap_reset(struct mesh_hdrcap *cap)
{
    mesh_buf_reset(&cap->recs);
    cap->nkind[0] = cap->nkind[1] = 0;
}

void mesh_hdrcap_free(struct mesh_hdrcap *cap)
{
    mesh_buf_free(&cap->recs);
    cap->nkind[0] = cap->nkind[1] = 0;
}

void mesh_hdrcap_offer(const struct mesh_hdr_sel *sel, struct mesh_hdrcap *cap, unsigned kind,
                       const char *name, size_t namelen, const char *value, size_t valuelen)
{
    static const struct mesh_hdr_names redact_default = {
        .name = {"authorization", "cookie", "set-cookie", "proxy-authorization"}, .n = 4};
    static const struct mesh_hdr_names ours = {.name = {"mesh-src", "mesh-dst"}, .n = 2};
    unsigned response = kind != MESH_HDR_REQUEST;
    if (cap->nkind[response] == MESH_EVT_HEADERS_MAX / 2 || namelen == 0 ||
        namelen >= MESH_HDR_NAME_MAX || name[0] == ':' || memchr(name, '\0', namelen) != NULL ||
        names_have(&ours, name, namelen))
        return;
    if (!mesh_hdr_sel_wants(sel, name, namelen))
        return;
    int redacted = sel->redact.all || names_have(&redact_default, name, namelen) ||
                   names_have(&sel->redact, name, namelen);
    if (redacted) {
        valuelen = 0;
    } else {
        const char *nul = memchr(value, '\0', valuelen);
        if (nul != NULL)
            valuelen = (size_t)(nul - value); /* a C string ends there anyway */
        if (valuelen > MESH_EVT_HEADER_VALUE_MAX) {
            valuelen = MESH_EVT_HEADER_VALUE_MAX;
            while (valuelen > 0 && ((unsigned char)value[valuelen] & 0xc0) == 0x80)
                valuelen--; /* not in the middle of a UTF-8 sequence */
        }
    }
    if (cap->recs.cap == 0)
        mesh_buf_init(&cap->recs, MESH_HDRCAP_MAX);
    char *at;
    if (mesh_buf_append_space(&cap->recs, 1 + namelen + 1 + valuelen + 1, &at) != 0)
        return;
    *at++ = (char)(REC_FLAG | (response ? REC_RESPONSE : 0) | (redacted ? REC_REDACTED : 0) |
                   (kind == MESH_HDR_TRAILER ? REC_TRAILER : 0));
    for (size_t i = 0; i < namelen; i++)
        *at++ = (char)tolower((unsigned char)name[i]);
    *at++ = '\0';
    memcpy(at, value, valuelen);
    at[valuelen] = '\0';
    cap->nkind[response]++;
}

void mesh_hdrcap_offer_h1(const struct mesh_hdr_sel *sel, struct mesh_hdrcap *cap, unsigned kind,
                          const char *fields, size_t fields_len)
{
    const char *name, *value;
    for (size_t pos = 0; mesh_h1_field_next(fields, fields_len, &pos, &name, &value);)
        mesh_hdrcap_offer(sel, cap, kind, name, strlen(name), value, strlen(value));
}

void mesh_hdrcap_apply(const struct mesh_hdrcap *cap, struct mesh_evt *evt,
                       struct mesh_header hs[MESH_EVT_HEADERS_MAX])
{
    size_t n = 0;
    for (size_t pos = 0; pos < cap->recs.len && n < MESH_EVT_HEADERS_MAX; n++) {
        const char *rec = cap->recs.data + pos;
        struct mesh_header *h = &hs[n];
        h->response = (rec[0] & REC_RESPONSE) != 0;
        h->redacted = (rec[0] & REC_REDACTED) != 0;
        h->trailer = (rec[0] & REC_TRAILER) != 0;
        h->name = rec + 1;
        const char *value = h->name + strlen(h->name) + 1;
        h->value = h->redacted ? NULL : value;
        pos = (size_t)(value + strlen(value) + 1 - cap->recs.data);
    }
    evt->headers = n ? hs : NULL;
    evt->nheaders = n;
}
