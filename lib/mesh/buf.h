/* mesh/buf.h — a growable byte buffer with a hard cap (curl's dynbuf).
 *
 * Everything that grows from outside input goes through one of these, so a
 * peer or a capture can never grow memory past |cap|: an append that would
 * exceed it fails with MESH_ETOOBIG and leaves the buffer unchanged.
 * The buffer owns |data|; mesh_buf_free() releases it. data is always
 * NUL-terminated after a successful append (the NUL is not counted in len).
 */
#ifndef MESH_BUF_H
#define MESH_BUF_H

#include <stddef.h>
#include <stdint.h>

struct mesh_buf {
    char *data;
    size_t len;
    size_t alloc;
    size_t cap;
};

void mesh_buf_init(struct mesh_buf *buf, size_t cap);
void mesh_buf_free(struct mesh_buf *buf);
void mesh_buf_reset(struct mesh_buf *buf);              /* len = 0, keeps memory */
int mesh_buf_append(struct mesh_buf *buf, const void *data, size_t len);
int mesh_buf_appends(struct mesh_buf *buf, const char *str);
int mesh_buf_printf(struct mesh_buf *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends |len| bytes left for the caller to fill; *at points to them. */
int mesh_buf_append_space(struct mesh_buf *buf, size_t len, char **at);
/* Drops the first |n| bytes. */
void mesh_buf_consume(struct mesh_buf *buf, size_t n);
/* Appends |str| (|len| bytes) as a JSON string literal with quotes; bytes
 * that are not UTF-8 become U+FFFD, control characters are escaped. */
int mesh_buf_json_str(struct mesh_buf *buf, const char *str, size_t len);
/* The same into memory the caller reserved: at most MESH_JSON_STR_MAX(len)
 * bytes are written; returns the end of what was written. */
#define MESH_JSON_STR_MAX(len) ((len) * 6 + 2)
char *mesh_json_put_str(char *at, const char *str, size_t len);

#endif
