#!/usr/bin/python3
"""relink.py IN.pcap OUT.pcap KIND: rewrites an Ethernet capture's link layer,
keeping every IP packet and timestamp, so replay can be checked on each link
type it supports. KIND: vlan (802.1Q tag), qinq (two tags), sll (Linux cooked
v1), null (BSD loopback, little-endian family), loop (OpenBSD loopback,
network order), raw (LINKTYPE_RAW)."""
import struct
import sys

LINKTYPES = {"vlan": 1, "qinq": 1, "sll": 113, "null": 0, "loop": 108, "raw": 101}


def relink(frame, kind):
    ethertype = struct.unpack(">H", frame[12:14])[0]
    ip = frame[14:]
    if kind == "vlan":
        return frame[:12] + struct.pack(">HH", 0x8100, 42) + frame[12:]
    if kind == "qinq":
        return frame[:12] + struct.pack(">HHHH", 0x88a8, 7, 0x8100, 42) + frame[12:]
    if kind == "sll":
        return struct.pack(">HHH8sH", 0, 772, 6, b"\0" * 8, ethertype) + ip
    v6 = ethertype == 0x86dd
    if kind == "null":
        return struct.pack("<I", 30 if v6 else 2) + ip
    if kind == "loop":
        return struct.pack(">I", 24 if v6 else 2) + ip
    return ip  # raw


def main():
    src, dst, kind = sys.argv[1], sys.argv[2], sys.argv[3]
    data = open(src, "rb").read()
    magic, vmaj, vmin, zone, sig, snap, link = struct.unpack("<IHHiIII", data[:24])
    assert magic == 0xa1b2c3d4 and link == 1, "classic little-endian Ethernet pcap expected"
    out = [struct.pack("<IHHiIII", magic, vmaj, vmin, zone, sig, snap + 8, LINKTYPES[kind])]
    off = 24
    while off + 16 <= len(data):
        ts, tu, incl, orig = struct.unpack("<IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        new = relink(frame, kind)
        out.append(struct.pack("<IIII", ts, tu, len(new), orig - len(frame) + len(new)) + new)
    open(dst, "wb").write(b"".join(out))


if __name__ == "__main__":
    main()
