#!/usr/bin/python3
"""mkseeds_report.py OUTDIR EXPECT...

Seeds for fuzz_report.c: ReportRequest messages (proto/mesh/tap/v1/tap.proto)
made of the requests listed in the emojivoto captures' .expect files
(../shared/corpus/emojivoto/*.expect: proto, method, authority, path, status,
grpc-status per line), filled out as a proxy would send them (timestamps,
direction, addresses, labels, latencies, ids), in batches of 1 to 16
events; plus a few edge cases (empty batch, a resend, unknown fields,
label keys the store does not keep).
"""
import os
import sys


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def fld(num, wire, payload):
    tag = varint(num << 3 | wire)
    if wire == 0:
        return tag + varint(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    return tag + varint(len(payload)) + payload


def label(key, value):
    return fld(1, 2, key) + fld(2, 2, value)


def event(i, proto, method, authority, path, status, grpc_status, direction):
    e = fld(1, 0, 1700000000000000 + i * 1234)
    e += fld(2, 0, direction)
    e += fld(3, 2, "10.0.0.%d:%d" % (i % 200 + 1, 40000 + i))
    e += fld(4, 2, authority)
    e += fld(5, 2, label("namespace", "emojivoto") + b"") + fld(5, 2, label("deployment", "web"))
    e += fld(6, 2, label("namespace", "emojivoto")) + fld(6, 2, label("deployment", "voting"))
    e += fld(6, 2, label("pod", "voting-%d" % (i % 3)))
    e += fld(7, 2, proto)
    e += fld(8, 2, method)
    e += fld(9, 2, "http")
    e += fld(10, 2, authority)
    e += fld(11, 2, path)
    if status >= 0:
        e += fld(12, 0, status)
    if grpc_status >= 0:
        e += fld(13, 0, grpc_status)
    e += fld(16, 0, 800 + i * 7) + fld(17, 0, 1000 + i * 9)
    e += fld(18, 0, 5 + i) + fld(19, 0, 17 * i)
    e += fld(20, 2, "%d:%d" % (i // 5 + 1, i % 5 * 2 + 1))
    return e


def report(sender, seq, events):
    return fld(1, 2, sender) + fld(2, 0, seq) + b"".join(fld(3, 2, e) for e in events)


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    rows = []
    for path in sys.argv[2:]:
        for line in open(path):
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 6:
                rows.append(cols)
    n, seq = 0, 0
    sizes = [1, 2, 3, 5, 8, 16]
    while n < len(rows) and seq < 24:
        k = sizes[seq % len(sizes)]
        evs = []
        for i, cols in enumerate(rows[n:n + k]):
            proto, method, authority, pth, status, grpc = cols[:6]
            st = int(status) if status.isdigit() else -1
            gs = int(grpc) if grpc.isdigit() else -1
            evs.append(event(n + i, proto, method, authority, pth, st, gs, 1 + (n + i) % 3))
        n += k * 11  # spread over the captures
        seq += 1
        with open(os.path.join(outdir, "batch-%02d" % seq), "wb") as fp:
            fp.write(report("mesh-proxy/web-0/1/1700000000.000001", seq, evs))
    one = event(1, "h2", "GET", "web.emojivoto:80", "/api/list", 200, -1, 2)
    with open(os.path.join(outdir, "edge-empty"), "wb") as fp:
        fp.write(report("replay", 1, []))
    with open(os.path.join(outdir, "edge-resend"), "wb") as fp:
        fp.write(report("mesh-proxy/web-0/1/1700000000.000001", 1, [one]))
    with open(os.path.join(outdir, "edge-unknown"), "wb") as fp:
        fp.write(report("s", 7, [one + fld(99, 2, "x") + fld(98, 0, 5) + fld(97, 5, b"abcd")])
                 + fld(50, 1, b"12345678"))
    with open(os.path.join(outdir, "edge-labels"), "wb") as fp:
        fp.write(report("s", 8, [fld(5, 2, label("app", "web")) + fld(5, 2, fld(1, 2, "pod"))
                                 + fld(12, 0, 1000) + fld(13, 0, 5000) + fld(2, 0, 9)]))
    with open(os.path.join(outdir, "edge-noseq"), "wb") as fp:
        fp.write(fld(1, 2, "s") + fld(3, 2, one))


if __name__ == "__main__":
    main()
