/* Unit tests for replay/reasm.c: in-order, out-of-order, duplicates,
 * overlaps, sequence wrap, caps and gaps. */
#include <stdlib.h>
#include <string.h>

#include "mesh/buf.h"
#include "reasm.h"
#include "test.h"

struct sink {
    struct mesh_buf out;
    uint64_t gap_bytes;
    int gaps;
};

static void on_data(void *ctx, const uint8_t *data, size_t len, uint64_t ts)
{
    struct sink *s = ctx;
    mesh_buf_append(&s->out, data, len);
}

static void on_gap(void *ctx, uint64_t n, uint64_t ts)
{
    struct sink *s = ctx;
    s->gaps++;
    s->gap_bytes += n;
    mesh_buf_appends(&s->out, "#");
}

static struct mesh_reasm_counters counters;
static struct mesh_reasm_budget budget;

static void setup(struct mesh_reasm *r, struct sink *s, size_t cap)
{
    memset(s, 0, sizeof(*s));
    memset(&counters, 0, sizeof(counters));
    budget.held = 0;
    budget.cap = 1 << 20;
    mesh_buf_init(&s->out, 1 << 20);
    mesh_reasm_init(r, cap, &budget, &counters, on_data, on_gap, s);
}

static void seg(struct mesh_reasm *r, uint32_t seq, const char *text)
{
    CHECK_EQ_INT(mesh_reasm_segment(r, seq, (const uint8_t *)text, strlen(text), 0), 0);
}

static void test_in_order_and_reordered(void)
{
    struct mesh_reasm r;
    struct sink s;
    setup(&r, &s, 1 << 20);
    mesh_reasm_syn(&r, 999);
    seg(&r, 1000, "GET ");
    seg(&r, 1008, "HTTP/1.1");  /* ahead of a hole */
    CHECK_EQ_STR(s.out.data, "GET ");
    seg(&r, 1004, "/ab ");      /* fills it */
    CHECK_EQ_STR(s.out.data, "GET /ab HTTP/1.1");
    CHECK_EQ_INT(r.held, 0);
    CHECK_EQ_INT(budget.held, 0);
    mesh_reasm_free(&r);
    mesh_buf_free(&s.out);
}

static void test_duplicates_and_overlaps(void)
{
    struct mesh_reasm r;
    struct sink s;
    setup(&r, &s, 1 << 20);
    mesh_reasm_syn(&r, 0);
    seg(&r, 1, "abcdef");
    seg(&r, 1, "abcdef");       /* retransmission */
    seg(&r, 4, "defghi");       /* overlap: only ghi is new */
    seg(&r, 12, "lm");
    seg(&r, 12, "lm");          /* duplicate held segment */
    seg(&r, 10, "jkl");         /* overlaps the held one */
    CHECK_EQ_STR(s.out.data, "abcdefghijklm");
    CHECK_EQ_INT(counters.dup_bytes, 6 + 3 + 2 + 1);
    CHECK_EQ_INT(s.gaps, 0);
    mesh_reasm_free(&r);
    mesh_buf_free(&s.out);
}

static void test_wrap(void)
{
    struct mesh_reasm r;
    struct sink s;
    setup(&r, &s, 1 << 20);
    mesh_reasm_syn(&r, 0xfffffffcu);
    seg(&r, 0x00000001u, "world");   /* past the wrap, ahead */
    seg(&r, 0xfffffffdu, "hell");    /* 4 bytes up to the wrap */
    CHECK_EQ_STR(s.out.data, "hellworld");
    mesh_reasm_free(&r);
    mesh_buf_free(&s.out);
}

static void test_midstream_and_flush_gap(void)
{
    struct mesh_reasm r;
    struct sink s;
    setup(&r, &s, 1 << 20);
    seg(&r, 5000, "mid");            /* no SYN: the first segment starts the stream */
    seg(&r, 5010, "later");
    CHECK_EQ_STR(s.out.data, "mid");
    mesh_reasm_flush(&r, 0);         /* the end: the hole is a gap */
    CHECK_EQ_STR(s.out.data, "mid#later");
    CHECK_EQ_INT(s.gap_bytes, 7);
    CHECK_EQ_INT(counters.gaps, 1);
    mesh_reasm_free(&r);
    mesh_buf_free(&s.out);
}

static void test_cap_gives_up_hole(void)
{
    struct mesh_reasm r;
    struct sink s;
    setup(&r, &s, 8);                /* at most 8 bytes held */
    mesh_reasm_syn(&r, 0);
    seg(&r, 1, "a");
    seg(&r, 10, "12345");
    CHECK_EQ_STR(s.out.data, "a");
    seg(&r, 15, "6789");             /* 9 held > 8: the hole at 2..9 is given up */
    CHECK_EQ_STR(s.out.data, "a#123456789");
    CHECK_EQ_INT(s.gap_bytes, 8);
    CHECK_EQ_INT(r.held, 0);
    seg(&r, 5, "late");              /* the lost bytes arrive after all: dropped */
    CHECK_EQ_STR(s.out.data, "a#123456789");
    /* the shared budget caps too */
    budget.cap = 4;
    seg(&r, 30, "abcdef");
    CHECK_EQ_INT(budget.held, 0);
    CHECK_EQ_INT(s.gaps, 2);
    mesh_reasm_free(&r);
    mesh_buf_free(&s.out);
}

int main(void)
{
    RUN(test_in_order_and_reordered);
    RUN(test_duplicates_and_overlaps);
    RUN(test_wrap);
    RUN(test_midstream_and_flush_gap);
    RUN(test_cap_gives_up_hole);
    return TEST_REPORT();
}
