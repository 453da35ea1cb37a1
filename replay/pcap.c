/* replay/pcap.c — capture files in, TCP segments out.
 *
 * libpcap reads the file (pcap and pcapng); this file decodes the link layer
 * (Ethernet with 802.1Q/802.1ad tags, Linux cooked v1 and v2, BSD loopback,
 * raw IP), IPv4 and IPv6 (extension headers skipped, fragments counted but
 * not reassembled) and TCP, and hands segments to the flow table.
 */
#include "replay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "mesh/err.h"

#ifndef DLT_LINUX_SLL2
#define DLT_LINUX_SLL2 276
#endif
#ifndef DLT_IPV4
#define DLT_IPV4 228
#endif
#ifndef DLT_IPV6
#define DLT_IPV6 229
#endif
#define LINKTYPE_RAW 101 /* what some files carry instead of DLT_RAW */

#define REPLAY_READ_BUF (128u * 1024) /* stdio buffer of a capture file */

struct mesh_replay {
    struct mesh_flows *flows;
    struct mesh_replay_stats stats;
    char err[PCAP_ERRBUF_SIZE + 128];
};

static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* |wire_rest| is how many bytes of this layer and above were on the wire. */
static void tcp_layer(struct mesh_replay *rp, struct mesh_tcp_seg *seg, const uint8_t *p,
                      size_t caplen, size_t wire_rest)
{
    if (caplen < 20) {
        rp->stats.skipped++;
        return;
    }
    size_t hlen = (size_t)(p[12] >> 4) * 4;
    if (hlen < 20 || hlen > caplen || hlen > wire_rest) {
        rp->stats.skipped++;
        return;
    }
    seg->sport = rd16(p);
    seg->dport = rd16(p + 2);
    seg->seq = rd32(p + 4);
    seg->ack = rd32(p + 8);
    seg->flags = p[13] & 0x17; /* FIN SYN RST ACK */
    seg->payload = p + hlen;
    seg->len = caplen - hlen;
    size_t wire_payload = wire_rest - hlen;
    if (seg->len > wire_payload)
        seg->len = wire_payload; /* link-layer padding */
    seg->missing = wire_payload - seg->len;
    if (seg->missing > 0)
        rp->stats.truncated++;
    mesh_flows_segment(rp->flows, seg);
}

static void ipv4_layer(struct mesh_replay *rp, const uint8_t *p, size_t caplen, uint64_t ts)
{
    if (caplen < 20 || (p[0] >> 4) != 4) {
        rp->stats.skipped++;
        return;
    }
    size_t ihl = (size_t)(p[0] & 15) * 4, total = rd16(p + 2);
    if (ihl < 20 || ihl > caplen || total < ihl) {
        rp->stats.skipped++;
        return;
    }
    uint16_t frag = rd16(p + 6);
    if ((frag & 0x3fff) != 0) { /* more-fragments set or an offset: not reassembled */
        rp->stats.fragments++;
        return;
    }
    if (p[9] != 6) {
        rp->stats.skipped++;
        return;
    }
    struct mesh_tcp_seg seg = {.family = AF_INET, .ts_us = ts};
    memcpy(seg.src_ip, p + 12, 4);
    memcpy(seg.dst_ip, p + 16, 4);
    size_t avail = caplen < total ? caplen : total;
    tcp_layer(rp, &seg, p + ihl, avail - ihl, total - ihl);
}

static void ipv6_layer(struct mesh_replay *rp, const uint8_t *p, size_t caplen, uint64_t ts)
{
    if (caplen < 40 || (p[0] >> 4) != 6) {
        rp->stats.skipped++;
        return;
    }
    size_t total = 40 + (size_t)rd16(p + 4), off = 40;
    uint8_t next = p[6];
    struct mesh_tcp_seg seg = {.family = AF_INET6, .ts_us = ts};
    memcpy(seg.src_ip, p + 8, 16);
    memcpy(seg.dst_ip, p + 24, 16);
    size_t avail = caplen < total ? caplen : total;
    /* skip extension headers: hop-by-hop, routing, destination options */
    for (int hops = 0; hops < 8; hops++) {
        if (next == 6) {
            tcp_layer(rp, &seg, p + off, avail - off, total - off);
            return;
        }
        if (next == 44) {
            rp->stats.fragments++;
            return;
        }
        if ((next != 0 && next != 43 && next != 60) || off + 8 > avail)
            break;
        size_t ext = ((size_t)p[off + 1] + 1) * 8;
        next = p[off];
        off += ext;
        if (off > avail)
            break;
    }
    rp->stats.skipped++;
}

static void ip_by_ethertype(struct mesh_replay *rp, uint16_t type, const uint8_t *p,
                            size_t caplen, uint64_t ts)
{
    if (type == 0x0800)
        ipv4_layer(rp, p, caplen, ts);
    else if (type == 0x86dd)
        ipv6_layer(rp, p, caplen, ts);
    else
        rp->stats.skipped++;
}

void mesh_replay_packet(struct mesh_replay *rp, int linktype, const uint8_t *p, size_t caplen,
                        size_t wirelen, uint64_t ts)
{
    rp->stats.packets++;
    (void)wirelen; /* IP lengths tell what was sent; caplen what we have */
    switch (linktype) {
    case DLT_EN10MB: {
        size_t off = 12;
        if (caplen < 14)
            break;
        uint16_t type = rd16(p + off);
        /* 802.1Q and 802.1ad (QinQ) tags, any depth the frame holds */
        while ((type == 0x8100 || type == 0x88a8 || type == 0x9100) && off + 6 <= caplen) {
            off += 4;
            type = rd16(p + off);
        }
        off += 2;
        if (off > caplen)
            break;
        ip_by_ethertype(rp, type, p + off, caplen - off, ts);
        return;
    }
    case DLT_LINUX_SLL:
        if (caplen < 16)
            break;
        ip_by_ethertype(rp, rd16(p + 14), p + 16, caplen - 16, ts);
        return;
    case DLT_LINUX_SLL2:
        if (caplen < 20)
            break;
        ip_by_ethertype(rp, rd16(p), p + 20, caplen - 20, ts);
        return;
    case DLT_NULL:
    case DLT_LOOP: {
        if (caplen < 4)
            break;
        /* the address family, in the byte order of the capturing host (NULL)
         * or network order (LOOP): AF_INET is 2; AF_INET6 is 10, 24, 28 or 30 */
        uint32_t af = p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
        if (af > 0xffff)
            af = rd32(p);
        if (af == 2)
            ipv4_layer(rp, p + 4, caplen - 4, ts);
        else if (af == 10 || af == 24 || af == 28 || af == 30)
            ipv6_layer(rp, p + 4, caplen - 4, ts);
        else
            break;
        return;
    }
    case DLT_RAW:
    case LINKTYPE_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
        if (caplen < 1)
            break;
        if ((p[0] >> 4) == 4)
            ipv4_layer(rp, p, caplen, ts);
        else
            ipv6_layer(rp, p, caplen, ts);
        return;
    default:
        break;
    }
    rp->stats.skipped++;
}

static int linktype_supported(int dlt)
{
    switch (dlt) {
    case DLT_EN10MB: case DLT_LINUX_SLL: case DLT_LINUX_SLL2: case DLT_NULL: case DLT_LOOP:
    case DLT_RAW: case LINKTYPE_RAW: case DLT_IPV4: case DLT_IPV6:
        return 1;
    default:
        return 0;
    }
}

/* Reads every packet of |pc| and closes it. */
static int replay_pcap(struct mesh_replay *rp, pcap_t *pc, const char **err_desc)
{
    /* the counters describe one capture; its flows end with it */
    memset(&rp->stats, 0, sizeof(rp->stats));
    mesh_flows_reset_stats(rp->flows);
    int dlt = pcap_datalink(pc);
    if (!linktype_supported(dlt)) {
        const char *name = pcap_datalink_val_to_name(dlt);
        snprintf(rp->err, sizeof(rp->err), "unsupported link type %d (%s)", dlt,
                 name ? name : "unknown");
        *err_desc = rp->err;
        pcap_close(pc);
        return MESH_EFORMAT;
    }
    struct pcap_pkthdr *hdr;
    const u_char *data;
    int rv, result = 0;
    while ((rv = pcap_next_ex(pc, &hdr, &data)) == 1) {
        uint64_t ts = (uint64_t)hdr->ts.tv_sec * 1000000u + (uint64_t)hdr->ts.tv_usec;
        mesh_replay_packet(rp, dlt, data, hdr->caplen, hdr->len, ts);
    }
    if (rv == PCAP_ERROR) {
        const char *msg = pcap_geterr(pc);
        snprintf(rp->err, sizeof(rp->err), "%s",
                 strstr(msg, "truncated") ? "file is cut short (truncated packet)" : msg);
        *err_desc = rp->err;
        result = MESH_EIO;
    }
    pcap_close(pc);
    mesh_flows_close_all(rp->flows);
    return result;
}

/* libpcap's open errors, as one of ours. */
static int open_error(struct mesh_replay *rp, const char *path, const char *errbuf,
                      const char **err_desc)
{
    /* libpcap may start its message with the path, which the caller names already */
    size_t plen = strlen(path);
    if (strncmp(errbuf, path, plen) == 0 && strncmp(errbuf + plen, ": ", 2) == 0)
        errbuf += plen + 2;
    int notcap = strstr(errbuf, "format") != NULL || strstr(errbuf, "truncated") != NULL ||
                 strstr(errbuf, "bad dump file") != NULL || strstr(errbuf, "version") != NULL;
    if (strstr(errbuf, "truncated") != NULL)
        snprintf(rp->err, sizeof(rp->err), "capture header is truncated");
    else if (notcap)
        snprintf(rp->err, sizeof(rp->err), "not a pcap or pcapng capture (%s)", errbuf);
    else
        snprintf(rp->err, sizeof(rp->err), "%s", errbuf);
    *err_desc = rp->err;
    return notcap ? MESH_EFORMAT : MESH_EIO;
}

int mesh_replay_file(struct mesh_replay *rp, const char *path, const char **err_desc)
{
    if (strcmp(path, "-") == 0)
        return mesh_replay_stream(rp, stdin, err_desc);
    /* our own stream, for a read buffer larger than stdio's 4 KiB: a capture
     * is read front to back once, and fewer read(2) calls are measurably
     * faster (128 KiB: more stops paying once it no longer fits the L2 cache).
     * glibc ignores setvbuf()'s size when it is not given the buffer, so the
     * buffer is ours, freed once mesh_replay_stream() has closed the stream. */
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        snprintf(rp->err, sizeof(rp->err), "%s", strerror(errno));
        *err_desc = rp->err;
        return MESH_EIO;
    }
    char *iobuf = malloc(REPLAY_READ_BUF);
    if (iobuf != NULL)
        setvbuf(fp, iobuf, _IOFBF, REPLAY_READ_BUF);
    int rv = mesh_replay_stream(rp, fp, err_desc);
    free(iobuf);
    return rv;
}

int mesh_replay_stream(struct mesh_replay *rp, FILE *fp, const char **err_desc)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_MICRO,
                                                           errbuf);
    if (pc == NULL) {
        fclose(fp);
        return open_error(rp, "", errbuf, err_desc);
    }
    return replay_pcap(rp, pc, err_desc);
}

void mesh_replay_finish(struct mesh_replay *rp)
{
    mesh_flows_close_all(rp->flows);
}

struct mesh_replay *mesh_replay_new(const struct mesh_labelmap *labels,
                                    const struct mesh_hdr_sel *hdrs, mesh_replay_cb cb, void *ctx)
{
    struct mesh_replay *rp = calloc(1, sizeof(*rp));
    if (rp == NULL)
        return NULL;
    rp->flows = mesh_flows_new(labels, hdrs, cb, ctx, &rp->stats);
    if (rp->flows == NULL) {
        free(rp);
        return NULL;
    }
    return rp;
}

void mesh_replay_free(struct mesh_replay *rp)
{
    if (rp == NULL)
        return;
    mesh_flows_free(rp->flows);
    free(rp);
}

const struct mesh_replay_stats *mesh_replay_stats(const struct mesh_replay *rp)
{
    return &rp->stats;
}
