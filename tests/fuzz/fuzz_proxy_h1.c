/* tests/fuzz/fuzz_proxy_h1.c — mesh-proxy's HTTP/1 path (proxy/h1.c) fed the
 * bytes a downstream client sends and those its upstream answers, through a
 * real struct px on socketpairs (tests/fuzz/pxharness.h has the input format).
 * Seeds: tests/fuzz/corpus/proxy_h1/ (the h1 corpus: emojivoto captures). */
#include <stddef.h>
#include <stdint.h>

#include "pxharness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)pxh_run(data, size, px_h1_serve);
    return 0;
}
