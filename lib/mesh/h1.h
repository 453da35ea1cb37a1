/* mesh/h1.h — an incremental HTTP/1.x message parser that does no I/O.
 *
 * One parser reads one direction (requests or responses). mesh_h1_parse() takes
 * any slice of the stream and returns one event at a time with the bytes it used;
 * the caller loops until MESH_H1_NEED_MORE. Heads (and trailers) are copied into
 * one buffer per parser, capped at |max_head| and reused from message to message;
 * bodies are framed in place, never copied. Strings in |msg| point into that
 * buffer, NUL-terminated, valid until the next MESH_H1_BEGIN. Pairing responses
 * with requests, timing and sockets belong to the caller; a response parser is
 * told the request's method (mesh_h1_parser_answer) since HEAD and CONNECT change framing.
 *
 * Why hand-written: Debian 12 ships only nodejs/http-parser 2.9 (archived upstream),
 * which knows a fixed list of methods (it rejects tokens like CCM_POST) and cannot
 * resynchronise after lost bytes; llhttp is not packaged as a C library.
 */
#ifndef MESH_H1_H
#define MESH_H1_H

#include <stddef.h>
#include <stdint.h>

#include "mesh/buf.h"

#define MESH_H1_MAX_CHUNK_LINE 4096u /* chunk-size line with extensions */

enum mesh_h1_type { MESH_H1_REQUEST = 0, MESH_H1_RESPONSE = 1 };

/* mesh_h1_parser_init() flag: read like a passive observer (tshark), not like a
 * proxy: skip field lines without a colon, trim space before the colon, accept
 * odd versions ("HTTP/1."), several spaces in the start line, controls in
 * values, "Content-Length: 5, 5" and Content-Length beside Transfer-Encoding. */
#define MESH_H1_LENIENT 1u
/* mesh_h1_parser_init() flag: the caller never reads |msg.fields|, which stays
 * empty (fields_len 0); what the parser reads from the fields (host,
 * content_length, framing, flags) is as without it. With MESH_H1_LENIENT, the
 * other fields are then passed over, not parsed: a head is read faster. */
#define MESH_H1_NO_FIELDS 2u

/* Events: what mesh_h1_parse() returns when it does not fail. */
enum mesh_h1_event {
    MESH_H1_NEED_MORE = 0, /* every byte given was used; feed more */
    MESH_H1_BEGIN,         /* a message's first byte was used (while resynchronising,
                            * a candidate that only MESH_H1_HEAD confirms) */
    MESH_H1_HEAD,          /* |msg| holds the start line and the header fields */
    MESH_H1_DATA,          /* |body|, |body_len|: payload (de-chunked) inside the input */
    MESH_H1_TRAILERS,      /* |msg.trailers| holds the trailer fields */
    MESH_H1_END,           /* the message is complete */
    MESH_H1_PAUSED,        /* after a message that may switch protocols (|msg.flags| has
                            * MESH_H1_F_UPGRADE): nothing more is used until
                            * mesh_h1_parser_resume() */
};

enum mesh_h1_method { MESH_H1_M_OTHER = 0, MESH_H1_M_HEAD, MESH_H1_M_CONNECT };

enum mesh_h1_framing {
    MESH_H1_NO_BODY = 0,
    MESH_H1_LENGTH, /* Content-Length */
    MESH_H1_CHUNKED,
    MESH_H1_UNTIL_CLOSE, /* responses only: the body ends with the stream */
};

/* msg.flags. MESH_H1_F_UPGRADE: the protocol may switch after this message
 * (a CONNECT or Upgrade request, a 101, a 2xx answering CONNECT). */
#define MESH_H1_F_CLOSE           0x01u /* Connection: close */
#define MESH_H1_F_KEEP_ALIVE      0x02u /* Connection: keep-alive */
#define MESH_H1_F_UPGRADE         0x04u
#define MESH_H1_F_EXPECT_CONTINUE 0x08u /* Expect: 100-continue */
#define MESH_H1_F_TE              0x10u /* Transfer-Encoding present */

struct mesh_h1_msg {
    const char *method, *target; /* requests: as written */
    size_t method_len, target_len;
    int method_id;      /* enum mesh_h1_method */
    int status;         /* responses: 100..999 */
    const char *reason; /* responses: "" when absent */
    int version;        /* 10, 11, ...; -1 when odd (lenient only) */
    const char *host;   /* first Host value without surrounding space, or NULL */
    size_t host_len;
    int64_t content_length;        /* -1 when absent */
    int framing;                   /* enum mesh_h1_framing */
    unsigned flags;                /* MESH_H1_F_* */
    const char *fields, *trailers; /* "name\0value\0"... see mesh_h1_field_next() */
    size_t fields_len, trailers_len;
};

struct mesh_h1_parser {
    struct mesh_h1_msg msg;
    const uint8_t *body; /* MESH_H1_DATA */
    size_t body_len;
    uint64_t discarded; /* bytes thrown away while resynchronising, ever */
    /* private */
    struct mesh_buf head;
    uint64_t remaining, chunk_size;
    size_t line_start, chunk_line;
    uint32_t lines[32], nlines; /* where the first lines of the section end (LF) */
    size_t target_off, reason_off, host_off, fields_off, trailers_off;
    int err;
    const char *err_desc;
    unsigned char type, lenient, no_fields, state, tentative, skip_bol, skip_unsure, answer;
};

/* Prepares |p| to read |type| messages with heads (and trailers) of at most
 * |max_head| bytes. Allocates nothing until bytes come. */
void mesh_h1_parser_init(struct mesh_h1_parser *p, enum mesh_h1_type type, size_t max_head,
                         unsigned flags);
void mesh_h1_parser_free(struct mesh_h1_parser *p);

/* Reads from |buf| (|len| bytes, may be 0 to collect a pending event) up to the
 * next event and sets *|used| to the bytes it consumed. Returns an enum
 * mesh_h1_event, or a negative error after which every call returns it again:
 * MESH_EPROTO (not HTTP/1.x framing), MESH_ETOOBIG (head over |max_head|,
 * chunk-size line over MESH_H1_MAX_CHUNK_LINE), MESH_ENOMEM; *|err_desc| (if
 * not NULL) then names the problem. */
int mesh_h1_parse(struct mesh_h1_parser *p, const uint8_t *buf, size_t len, size_t *used,
                  const char **err_desc);

/* The stream ended. Returns MESH_H1_END when that completes a body read until
 * close, MESH_H1_NEED_MORE when no message was open, MESH_EPROTO ("message
 * truncated") when one was. No bytes are accepted afterwards. */
int mesh_h1_parse_eof(struct mesh_h1_parser *p, const char **err_desc);

/* Right after a response's MESH_H1_HEAD: the method of the request it answers
 * (enum mesh_h1_method; the default is MESH_H1_M_OTHER). Updates |msg.framing|
 * and MESH_H1_F_UPGRADE. Returns 0, or MESH_EINVAL when called at another time. */
int mesh_h1_parser_answer(struct mesh_h1_parser *p, int method_id);

/* After MESH_H1_PAUSED: the protocol did not switch, read HTTP/1.x again. */
void mesh_h1_parser_resume(struct mesh_h1_parser *p);

/* Forgets the current message and discards bytes until a plausible start line
 * (a request line with version HTTP/1.0 or 1.1, or a status line) at a line
 * start. |at_line_start|: the next byte is known to begin a line; otherwise
 * (after lost bytes) only well-known methods are trusted there. Clears an error. */
void mesh_h1_parser_resync(struct mesh_h1_parser *p, int at_line_start);

/* |nbytes| bytes of the stream were lost. Returns 0 when they fell inside a body
 * whose framing survives (the caller may count them as payload), or
 * MESH_EDESYNC when the parser cannot tell where it is (then resync it). */
int mesh_h1_parser_skip(struct mesh_h1_parser *p, uint64_t nbytes);

/* Walks "name\0value\0" fields: start with *|pos| = 0. Returns 1 with |name| and
 * |value| set (obs-fold joined with one space), or 0 after the last field. */
int mesh_h1_field_next(const char *fields, size_t fields_len, size_t *pos, const char **name,
                       const char **value);

/* The value of the first field called |name| (ASCII case-insensitive), or NULL. */
const char *mesh_h1_field_get(const char *fields, size_t fields_len, const char *name);

/* 1 when |c| may be in a token (a method, a header name): RFC 9110 tchar. */
int mesh_h1_is_tchar(unsigned char c);

#endif
