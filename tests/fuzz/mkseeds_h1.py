#!/usr/bin/env python3
"""Turns the TCP connections of a capture into fuzz inputs in the format of
tests/fuzz/records.h (one file per connection), for the HTTP/1 decoder's corpus.

  mkseeds_h1.py [--max-bytes N] [--midstream] OUTDIR PCAP...

Each connection is reassembled by sequence number (retransmissions dropped,
holes become gap records), split into records of at most 65535 bytes in
capture order, with FIN/RST records where the capture has them. Needs tshark.
Files are named PCAPNAME-STREAM; with --max-bytes, a connection's data is cut
after N bytes per direction (the rest becomes a gap) to keep seeds small.
"""
import argparse
import os
import subprocess
import sys

FIELDS = ["tcp.stream", "tcp.srcport", "tcp.seq_raw", "tcp.len", "tcp.flags.syn",
          "tcp.flags.ack", "tcp.flags.fin", "tcp.flags.reset", "tcp.payload"]


def packets(pcap):
    cmd = ["tshark", "-r", pcap, "-Y", "tcp", "-T", "fields", "-E", "separator=\t"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        v = line.split("\t")
        if len(v) < len(FIELDS):
            v += [""] * (len(FIELDS) - len(v))
        yield {"stream": int(v[0]), "port": int(v[1]), "seq": int(v[2]), "len": int(v[3] or 0),
               "syn": v[4] in ("1", "True"), "ack": v[5] in ("1", "True"),
               "fin": v[6] in ("1", "True"), "rst": v[7] in ("1", "True"),
               "payload": bytes.fromhex(v[8].replace(":", "")) if v[8] else b""}


class Side:
    def __init__(self):
        self.next = None      # next expected sequence number
        self.held = {}        # out-of-order segments: seq -> bytes
        self.sent = 0         # bytes passed on (for --max-bytes)
        self.fin = False


def records(pkts, client_port, max_bytes):
    """Yields (op, payload) in capture order; op as in records.h."""
    sides = {}
    for p in pkts:
        d = 0 if p["port"] == client_port else 1
        s = sides.setdefault(d, Side())
        if p["syn"]:
            s.next = (p["seq"] + 1) & 0xffffffff
            continue
        if s.next is None:
            s.next = p["seq"]
        if p["payload"]:
            s.held.setdefault(p["seq"], p["payload"])
        while True:
            # deliver what is contiguous with the stream, trimming overlaps
            progressed = False
            for seq in sorted(s.held):
                data = s.held[seq]
                off = (s.next - seq) & 0xffffffff
                if off < 0x80000000 and off >= len(data):
                    del s.held[seq]        # already delivered (retransmission)
                    progressed = True
                elif off < 0x80000000:
                    del s.held[seq]
                    data = data[off:]
                    s.next = (s.next + len(data)) & 0xffffffff
                    yield from cut(d, data, s, max_bytes)
                    progressed = True
            if not progressed:
                break
        if p["rst"]:
            yield (6 | d, b"")
        elif p["fin"] and not s.held and not s.fin:
            s.fin = True
            yield (4 | d, b"")
    for d, s in sides.items():
        for seq in sorted(s.held):
            data = s.held[seq]
            hole = (seq - s.next) & 0xffffffff
            if hole >= 0x80000000:
                continue
            while hole > 0:
                n = min(hole, 0xffff)
                yield (2 | d, n.to_bytes(2, "big"))
                hole -= n
            s.next = (seq + len(data)) & 0xffffffff
            yield from cut(d, data, s, max_bytes)


def cut(d, data, s, max_bytes):
    if max_bytes is not None:
        keep = max(0, min(len(data), max_bytes - s.sent))
        lost = len(data) - keep
        s.sent += len(data)
        data = data[:keep]
    else:
        lost = 0
    for i in range(0, len(data), 0xffff):
        yield (d, data[i:i + 0xffff])
    while lost > 0:
        n = min(lost, 0xffff)
        yield (2 | d, n.to_bytes(2, "big"))
        lost -= n


def encode(midstream, recs):
    out = bytearray([1 if midstream else 0])
    for op, payload in recs:
        if op & 6 == 0:
            out += bytes([op]) + len(payload).to_bytes(2, "big") + payload
        elif op & 6 == 2:
            out += bytes([op]) + payload      # the gap length is the record length
        else:
            out += bytes([op, 0, 0])
    return bytes(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-bytes", type=int)
    ap.add_argument("--midstream", action="store_true")
    ap.add_argument("outdir")
    ap.add_argument("pcaps", nargs="+")
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    for pcap in a.pcaps:
        by_stream = {}
        for p in packets(pcap):
            by_stream.setdefault(p["stream"], []).append(p)
        name = os.path.splitext(os.path.basename(pcap))[0]
        for stream, pkts in sorted(by_stream.items()):
            syn = [p for p in pkts if p["syn"] and not p["ack"]]
            client_port = syn[0]["port"] if syn else pkts[0]["port"]
            data = encode(a.midstream, records(pkts, client_port, a.max_bytes))
            path = os.path.join(a.outdir, "%s-%d" % (name, stream))
            with open(path, "wb") as f:
                f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
