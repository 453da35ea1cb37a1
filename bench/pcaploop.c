/* pcaploop — the floor for bench/replay.sh: the cheapest possible full read
 * of a capture. pcap_open_offline + pcap_next_ex over every packet, touching
 * each record only to sum its caplen (so the loop cannot be optimised away),
 * then prints "PACKETS BYTES" on stdout. No decoding, no allocation per packet.
 *
 *   cc -O2 -o pcaploop bench/pcaploop.c $(pkg-config --cflags --libs libpcap)
 *   ./pcaploop FILE.pcap
 *
 * Exit status: 0 on a clean end of file, 1 on a read error, 2 on bad usage. */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    struct pcap_pkthdr *hdr;
    const u_char *data;
    uint64_t npackets = 0, nbytes = 0;
    int rv;

    if (argc != 2) {
        fprintf(stderr, "Usage: pcaploop FILE.pcap\n");
        return 2;
    }
    pcap_t *pcap = pcap_open_offline(argv[1], errbuf);
    if (pcap == NULL) {
        fprintf(stderr, "pcaploop: %s\n", errbuf);
        return 1;
    }
    while ((rv = pcap_next_ex(pcap, &hdr, &data)) == 1) {
        npackets++;
        nbytes += hdr->caplen;
    }
    if (rv == PCAP_ERROR) /* PCAP_ERROR_BREAK (-2) is the normal end of file */
        fprintf(stderr, "pcaploop: %s\n", pcap_geterr(pcap));
    pcap_close(pcap);
    printf("%llu %llu\n", (unsigned long long)npackets, (unsigned long long)nbytes);
    return rv == PCAP_ERROR ? 1 : 0;
}
