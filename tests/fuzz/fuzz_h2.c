/* tests/fuzz/fuzz_h2.c — the HTTP/2 replay decoder (replay/h2.c) driven by
 * one fuzz input in the records.h format, plus both sniffers on its bytes.
 * Seeds: tests/fuzz/corpus/h2/ (`test_h2 --seeds DIR` and mkseeds_h2.py). */
#include <stddef.h>
#include <stdint.h>

#include "records.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_records_run(&mesh_h2_dec, data, size);
    if (size > 4) {
        (void)mesh_h2_sniff(data + 4, size - 4);
        (void)mesh_h2_sniff_frames(data + 4, size - 4);
    }
    return 0;
}
