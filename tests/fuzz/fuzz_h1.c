/* tests/fuzz/fuzz_h1.c — the HTTP/1 decoder (replay/h1.c) driven by
 * tests/fuzz/records.h, and the parser (lib/h1.c) on its own.
 *
 * Byte 0 with bit 7 clear: a records.h input for mesh_h1_dec. With bit 7 set,
 * the rest goes straight to a parser: bit 0 response parser, bit 1 strict
 * (not lenient), bit 2 resynchronise first, bits 3-6 the slice size fed per
 * call (0: all at once). The parser's invariants are checked with abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/err.h"
#include "mesh/h1.h"
#include "records.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_msg(const struct mesh_h1_parser *p)
{
    const struct mesh_h1_msg *m = &p->msg;
    if (m->method != NULL &&
        (strlen(m->method) != m->method_len || strlen(m->target) != m->target_len))
        abort();
    if (m->host != NULL && strlen(m->host) != m->host_len)
        abort();
    size_t pos = 0, n = 0;
    const char *name, *value;
    while (mesh_h1_field_next(m->fields, m->fields_len, &pos, &name, &value))
        if (*name == '\0' || ++n > m->fields_len)
            abort();
    if (pos != m->fields_len)
        abort();
}

static void fuzz_parser(const uint8_t *data, size_t size, unsigned flags)
{
    struct mesh_h1_parser p;
    size_t slice = (flags >> 3) & 15;
    mesh_h1_parser_init(&p, flags & 1 ? MESH_H1_RESPONSE : MESH_H1_REQUEST, 4096,
                        flags & 2 ? 0 : MESH_H1_LENIENT);
    if (flags & 4)
        mesh_h1_parser_resync(&p, 0);
    size_t off = 0;
    int idle_events = 0, answer = 0, have_head = 0;
    while (off < size) {
        size_t len = slice == 0 || size - off < slice ? size - off : slice;
        for (;;) {
            size_t used = 0;
            int ev = mesh_h1_parse(&p, data + off, len, &used, NULL);
            if (used > len)
                abort();
            off += used;
            len -= used;
            /* an event that uses nothing is followed by one that does */
            idle_events = used == 0 && ev > 0 ? idle_events + 1 : 0;
            if (idle_events > 4)
                abort();
            if (ev < 0 || ev == MESH_H1_NEED_MORE) {
                if (ev == MESH_H1_NEED_MORE && len != 0)
                    abort();
                if (ev == MESH_H1_NEED_MORE && have_head)
                    check_msg(&p); /* e.g. half a trailer section in the buffer */
                if (ev < 0)
                    goto out;
                break;
            }
            /* the head's strings stay valid until the next BEGIN, whatever
             * comes between (body, trailers arriving in pieces) */
            if (ev == MESH_H1_BEGIN)
                have_head = 0;
            else if (have_head)
                check_msg(&p);
            if (ev == MESH_H1_HEAD) {
                have_head = 1;
                check_msg(&p);
                if (flags & 1)
                    mesh_h1_parser_answer(&p, answer++ % 3);
            } else if (ev == MESH_H1_DATA) {
                if (p.body + p.body_len != data + off || p.body_len == 0)
                    abort();
            } else if (ev == MESH_H1_PAUSED) {
                mesh_h1_parser_resume(&p); /* as if the protocol did not switch */
            }
        }
    }
    mesh_h1_parse_eof(&p, NULL);
out:
    mesh_h1_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && (data[0] & 0x80))
        fuzz_parser(data + 1, size - 1, data[0]);
    else
        fuzz_records_run(&mesh_h1_dec, data, size);
    return 0;
}
