/* tests/fuzz/fuzz_proxy_h2.c — mesh-proxy's HTTP/2 path (proxy/h2.c) fed the
 * bytes a downstream h2c client sends (preface included) and the frames its
 * upstream answers with, through a real struct px on socketpairs
 * (tests/fuzz/pxharness.h has the input format). Seeds:
 * tests/fuzz/corpus/proxy_h2/ (the h2 corpus: emojivoto gRPC and h2c captures). */
#include <stddef.h>
#include <stdint.h>

#include "pxharness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)pxh_run(data, size, px_h2_serve);
    return 0;
}
