#!/usr/bin/env python3
"""tests/tools/h1_client.py — raw-socket clients for the proxy tests.

  pipeline PORT AUTHORITY PATH...  sends every GET in one write, prints each
                                   response's status and body length in order
  slowhead PORT                    sends half a head, prints the status line of
                                   what comes back and the seconds it took
  idle PORT AUTHORITY               one GET, then prints the seconds until the
                                   proxy closes the idle connection
  tcp PORT NBYTES                  sends NBYTES random bytes (not HTTP), shuts
                                   down writing, prints "echo ok" when the same
                                   bytes come back followed by EOF
"""
import os
import socket
import sys
import time


def connect(port):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_response(f):
    status = f.readline()
    if not status:
        return None, 0
    length, chunked = 0, False
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        if name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    body = b""
    if chunked:
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                while f.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += f.read(size)
            f.readline()
    else:
        body = f.read(length)
    return status.split()[1].decode(), len(body)


def pipeline(port, authority, paths):
    s = connect(port)
    reqs = b"".join(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (p.encode(), authority.encode())
                    for p in paths)
    s.sendall(reqs)
    f = s.makefile("rb")
    for _ in paths:
        status, n = read_response(f)
        print(status, n)


def slowhead(port):
    s = connect(port)
    start = time.monotonic()
    s.sendall(b"GET / HTTP/1.1\r\nHost: web.local\r\nX-Slow: ")
    f = s.makefile("rb")
    line = f.readline().decode().strip()
    print(line, "%.1f" % (time.monotonic() - start))


def idle(port, authority):
    s = connect(port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % authority.encode())
    f = s.makefile("rb")
    read_response(f)
    start = time.monotonic()
    rest = f.read()
    print("closed after %.1f s" % (time.monotonic() - start) if rest == b"" else "got %r" % rest[:40])


def tcp(port, nbytes):
    data = b"\x00\x01" + os.urandom(int(nbytes) - 2)
    s = connect(port)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = bytearray()
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    print("echo ok" if bytes(got) == data else "echo mismatch: %d of %d bytes" % (len(got), len(data)))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "pipeline":
        pipeline(args[0], args[1], args[2:])
    elif cmd == "slowhead":
        slowhead(args[0])
    elif cmd == "idle":
        idle(args[0], args[1])
    elif cmd == "tcp":
        tcp(args[0], args[1])
    else:
        sys.exit("unknown command " + cmd)
