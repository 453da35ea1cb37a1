#!/usr/bin/python3
"""mkseeds_h2.py PCAP PORT OUTDIR [--prefix P] [--streams N,N] [--midstream K] [--max-bytes B]

Turns the TCP connections to PORT in PCAP into fuzz seeds in the
tests/fuzz/records.h format, one file per connection (P-connN), using
tshark's `follow,tcp,raw` (node 0, the side that sent the first packet,
is the client). --midstream K drops the first K data records and sets the
midstream flag; --max-bytes B stops after B payload bytes (the last record
may end mid-frame). Each seed ends with a FIN of both directions.

The committed corpus tests/fuzz/corpus/h2/ came from (C=../shared/corpus/emojivoto):
  mkseeds_h2.py $C/grpc.pcap 18080 DIR --prefix grpc
  mkseeds_h2.py $C/grpc.pcap 18080 DIR --prefix grpc-mid --midstream 25 --max-bytes 8000
  mkseeds_h2.py $C/h2c.pcap 18082 DIR --prefix h2c --streams 0,15,16 --max-bytes 20000
  mkseeds_h2.py $C/h2c.pcap 18082 DIR --prefix h2c-mid --streams 16 --midstream 5
plus `test_h2 --seeds DIR` (captures of the unit tests' nghttp2 sessions).
"""
import argparse
import os
import subprocess


def tshark(*args):
    return subprocess.run(["tshark", *args], capture_output=True, text=True, check=True).stdout


def connections(pcap, port):
    rows = tshark("-r", pcap, "-T", "fields", "-e", "tcp.stream", "-e", "tcp.srcport", "-e", "tcp.dstport")
    found = set()
    for row in rows.splitlines():
        cols = row.split("\t")
        if len(cols) == 3 and port in cols[1:]:
            found.add(int(cols[0]))
    return sorted(found)


def segments(pcap, stream):
    """(direction, bytes) in capture order: 0 = client to server."""
    out, started = [], False
    for line in tshark("-r", pcap, "-qz", "follow,tcp,raw,%d" % stream).splitlines():
        if line.startswith("Node 1:"):
            started = True
        elif started and line.strip() and not line.startswith("==="):
            out.append((1 if line.startswith("\t") else 0, bytes.fromhex(line.strip())))
    return out


def records(segs, midstream, max_bytes):
    buf = bytearray([1 if midstream else 0])
    total = 0
    for direction, data in segs[midstream:]:
        if max_bytes is not None:
            if total >= max_bytes:
                break
            data = data[:max_bytes - total]
        total += len(data)
        for off in range(0, len(data), 65535):
            chunk = data[off:off + 65535]
            buf += bytes([direction, len(chunk) >> 8, len(chunk) & 255]) + chunk
    buf += bytes([4, 0, 0, 5, 0, 0])  # FIN client, FIN server
    return bytes(buf)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap")
    ap.add_argument("port")
    ap.add_argument("outdir")
    ap.add_argument("--prefix", default="cap")
    ap.add_argument("--streams", help="tcp.stream numbers to keep, comma-separated")
    ap.add_argument("--midstream", type=int, default=0, metavar="K")
    ap.add_argument("--max-bytes", type=int, metavar="B")
    args = ap.parse_args()
    keep = {int(n) for n in args.streams.split(",")} if args.streams else None
    os.makedirs(args.outdir, exist_ok=True)
    for stream in connections(args.pcap, args.port):
        if keep is not None and stream not in keep:
            continue
        seed = records(segments(args.pcap, stream), args.midstream, args.max_bytes)
        with open(os.path.join(args.outdir, "%s-conn%d" % (args.prefix, stream)), "wb") as fp:
            fp.write(seed)


if __name__ == "__main__":
    main()
