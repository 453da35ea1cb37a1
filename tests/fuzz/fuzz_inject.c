/* tests/fuzz/fuzz_inject.c — `mesh inject` (proxy/inject.c, libyaml) on
 * one input as a manifest. Checks what inject.h promises: an input that is
 * taken gives output that is YAML again, and injecting that output changes
 * nothing (the second pass is byte-for-byte its input).
 * Seeds: tests/fuzz/corpus/inject/ (the goldens of tests/golden/inject/). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inject.h"
#include "mesh/buf.h"
#include "mesh/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct mesh_inject_opts opts = {
        .image = "ghcr.io/mesh/mesh:0.1.0",
        .collector = "collector.mesh:8088",
        .proxy_uid = 2102,
    };
    struct mesh_buf out, notes, again, notes2;
    char err[256];
    mesh_buf_init(&out, 1u << 24);
    mesh_buf_init(&notes, 1u << 24);
    mesh_buf_init(&again, 1u << 24);
    mesh_buf_init(&notes2, 1u << 24);
    int rv = mesh_inject(&opts, (const char *)data, size, &out, &notes, err, sizeof(err));
    if (rv == MESH_EFORMAT && out.len != 0)
        abort(); /* |out| untouched when the input is not YAML */
    if (rv == 0 && getenv("FUZZ_DEBUG") != NULL)
        fprintf(stderr, "---- out\n%.*s\n---- notes\n%.*s\n", (int)out.len, out.data,
                (int)notes.len, notes.data);
    if (rv == 0) {
        int rv2 = mesh_inject(&opts, out.data, out.len, &again, &notes2, err, sizeof(err));
        if (rv2 != 0) {
            fprintf(stderr, "fuzz_inject: the output of inject is refused: %s\n", err);
            abort();
        }
        if (again.len != out.len || memcmp(again.data, out.data, out.len) != 0) {
            fprintf(stderr, "fuzz_inject: injecting the output changed it\n");
            abort();
        }
    }
    mesh_buf_free(&out);
    mesh_buf_free(&notes);
    mesh_buf_free(&again);
    mesh_buf_free(&notes2);
    return 0;
}
