#!/usr/bin/python3
"""mkseeds_grpc.py OUTDIR RECORDS...

Seeds for fuzz_grpc.c from h2 captures already in the records.h format
(tests/fuzz/corpus/h2/grpc-conn*, made by mkseeds_h2.py from
../shared/corpus/emojivoto/grpc.pcap). For each capture:
  raw-NAME        0x80 + the client's bytes after the preface (raw mode)
  body-NAME-K     the DATA payload of the client's first request stream
                  (its gRPC messages) in framing mode, with method/flag
                  byte K and a few DATA frame sizes
plus a handful of hand-made framing-mode inputs (empty message, two
messages, one split over frames, a compressed flag, pause and fail markers).
"""
import os
import struct
import sys

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def client_bytes(path):
    data = open(path, "rb").read()
    out, off = bytearray(), 1
    while off + 3 <= len(data):
        op, n = data[off], (data[off + 1] << 8) | data[off + 2]
        off += 3
        if op & 6:
            continue
        if op & 1 == 0:
            out += data[off:off + n]
        off += n
    return bytes(out)


def first_stream_body(wire):
    if wire.startswith(PREFACE):
        wire = wire[len(PREFACE):]
    off, body, stream = 0, bytearray(), None
    while off + 9 <= len(wire):
        n = int.from_bytes(wire[off:off + 3], "big")
        typ, flags, sid = wire[off + 3], wire[off + 4], int.from_bytes(wire[off + 5:off + 9], "big") & 0x7fffffff
        payload = wire[off + 9:off + 9 + n]
        off += 9 + n
        if typ == 0:
            if stream is None:
                stream = sid
            if sid == stream:
                if flags & 8:  # PADDED
                    pad = payload[0]
                    payload = payload[1:len(payload) - pad]
                body += payload
    return bytes(body)


def msg(b, flag=0):
    return bytes([flag]) + struct.pack(">I", len(b)) + b


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)

    def put(name, data):
        with open(os.path.join(outdir, name), "wb") as fp:
            fp.write(data)

    for path in sys.argv[2:]:
        name = os.path.basename(path)
        wire = client_bytes(path)
        if not wire.startswith(PREFACE):
            continue
        put("raw-" + name, b"\x80" + wire[len(PREFACE):][:8192])
        body = first_stream_body(wire)[:2048]
        if body:
            for k, size in ((2, 0), (0, 2), (1, 16), (0x12, 255)):
                put("body-%s-%d" % (name, k), bytes([k, size]) + body)
    put("hand-empty", bytes([0, 0]) + msg(b""))
    put("hand-two", bytes([2, 3]) + msg(b"hello") + msg(b"world"))
    put("hand-split", bytes([2, 0]) + msg(b"x" * 40))
    put("hand-compressed", bytes([0, 4]) + msg(b"zz", 1))
    put("hand-pause", bytes([2, 1]) + msg(b"\xffpause") + msg(b"after"))
    put("hand-fail", bytes([0x12, 2]) + msg(b"\xfefail") + msg(b"more"))
    put("hand-toobig", bytes([2, 32]) + b"\x00\x00\x01\x00\x00")
    put("hand-partial-rst", bytes([0x0a, 8]) + msg(b"abcdef")[:7])
    put("hand-timeout", bytes([0x04, 4]) + msg(b"t"))


if __name__ == "__main__":
    main()
