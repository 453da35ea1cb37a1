/* Fuzzes the whole replay path from bytes: the input is a capture file read
 * by libpcap (pcap or pcapng), then link layers, IP, TCP, reassembly, flow
 * table and both HTTP decoders; twice, the second time keeping every header
 * (--tap-header '*'), which takes other paths through both decoders. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mesh/hdrcap.h"
#include "replay.h"

static void on_evt(void *ctx, const struct mesh_evt *evt)
{
    (*(size_t *)ctx)++;
    (void)evt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mesh_hdr_sel all;
    const char *why;
    if (size == 0)
        return 0;
    if (!all.tap.all && (mesh_hdr_names_add(&all.tap, "*", &why) != 0 ||
                         mesh_hdr_names_add(&all.redact, "x-secret", &why) != 0))
        abort();
    for (int pass = 0; pass < 2; pass++) {
        FILE *fp = fmemopen((void *)data, size, "rb");
        if (fp == NULL)
            return 0;
        size_t events = 0;
        struct mesh_replay *rp = mesh_replay_new(NULL, pass ? &all : NULL, on_evt, &events);
        const char *desc = NULL;
        if (rp == NULL)
            fclose(fp);
        else
            mesh_replay_stream(rp, fp, &desc);
        mesh_replay_free(rp);
    }
    return 0;
}
