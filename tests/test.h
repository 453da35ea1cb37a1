/* tests/test.h — a tiny assertion header (redis testhelp.h, h2o picotest).
 *
 * CHECK(cond) records a failure with file:line and goes on; CHECK_EQ_INT and
 * CHECK_EQ_STR also print both values. RUN(fn) runs one test function.
 * TEST_REPORT() prints "N passed, N failed" and is main()'s return value.
 */
#ifndef MESH_TEST_H
#define MESH_TEST_H

#include <stdio.h>
#include <string.h>

static int test_failed_, test_checks_, test_fns_failed_, test_fns_passed_;

#define CHECK(cond)                                                               \
    do {                                                                          \
        test_checks_++;                                                           \
        if (!(cond)) {                                                            \
            test_failed_++;                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                         \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                        \
    do {                                                                          \
        long long a_ = (long long)(a), b_ = (long long)(b);                       \
        test_checks_++;                                                           \
        if (a_ != b_) {                                                           \
            test_failed_++;                                                       \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,  \
                    __LINE__, #a, #b, a_, b_);                                    \
        }                                                                         \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                        \
    do {                                                                          \
        const char *a_ = (a), *b_ = (b);                                          \
        test_checks_++;                                                           \
        if (a_ == NULL || b_ == NULL ? a_ != b_ : strcmp(a_, b_) != 0) {          \
            test_failed_++;                                                       \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n",        \
                    __FILE__, __LINE__, #a, #b, a_ ? a_ : "(null)",               \
                    b_ ? b_ : "(null)");                                          \
        }                                                                         \
    } while (0)

#define RUN(fn)                                                                   \
    do {                                                                          \
        int before_ = test_failed_;                                               \
        fn();                                                                     \
        if (test_failed_ == before_)                                              \
            test_fns_passed_++;                                                   \
        else {                                                                    \
            test_fns_failed_++;                                                   \
            fprintf(stderr, "FAIL %s\n", #fn);                                    \
        }                                                                         \
    } while (0)

#define TEST_REPORT()                                                             \
    (printf("%d passed, %d failed\n", test_fns_passed_, test_fns_failed_),       \
     (test_fns_failed_ != 0 || test_checks_ == 0))

#ifdef MESH_EVT_H
/* The captured headers of |e| as "q:name=value s:name=<redacted> ..." (q: the
 * request's, s: the response's, t: its trailers), for comparing with one
 * string. */
static inline const char *test_hdrs_str(const struct mesh_evt *e, char *out, size_t len)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < e->nheaders && n < len; i++) {
        const struct mesh_header *h = &e->headers[i];
        n += (size_t)snprintf(out + n, len - n, "%s%c:%s=%s", i ? " " : "", h->trailer ? 't' : h->response ? 's' : 'q',
                              h->name, h->redacted ? "<redacted>" : h->value);
    }
    return out;
}
#endif

#endif
