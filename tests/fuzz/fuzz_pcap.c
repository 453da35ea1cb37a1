/* Fuzzes the whole replay path from bytes: the input is a capture file read
 * by libpcap (pcap or pcapng), then link layers, IP, TCP, reassembly, flow
 * table and both HTTP decoders. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "replay.h"

static void on_evt(void *ctx, const struct mesh_evt *evt)
{
    (*(size_t *)ctx)++;
    (void)evt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    FILE *fp = fmemopen((void *)data, size, "rb");
    if (fp == NULL)
        return 0;
    size_t events = 0;
    struct mesh_replay *rp = mesh_replay_new(NULL, on_evt, &events);
    const char *desc = NULL;
    if (rp == NULL)
        fclose(fp);
    else
        mesh_replay_stream(rp, fp, &desc);
    mesh_replay_free(rp);
    return 0;
}
