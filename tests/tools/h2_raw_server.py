#!/usr/bin/python3
"""A deliberately misbehaving HTTP/2 (h2c) server for proxy tests: frames are
written by hand, so it can do what well-behaved servers will not on demand.

  h2_raw_server.py PORT rst:CODE    every request gets RST_STREAM(CODE) at once
  h2_raw_server.py PORT goaway:N    per connection: once N requests arrived, GOAWAY
                                    naming the first as the last processed, and a
                                    200 (no body) for that first one only

Prints "listening" once bound and "conn K" for each connection accepted.
"""
import socket
import socketserver
import struct
import sys
import threading

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0, 1, 3, 4, 6, 7, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
STATUS_200 = b"\x88"  # HPACK static table entry 8, ":status: 200"
lock = threading.Lock()
nconns = 0


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, stream) + payload


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        global nconns
        with lock:
            nconns += 1
            print("conn %d" % nconns, flush=True)
        sock = self.request
        mode, arg = sys.argv[2].split(":")
        arg = int(arg)
        sock.sendall(frame(SETTINGS, 0, 0))
        if read_exact(sock, len(PREFACE)) != PREFACE:
            return
        requests = []
        answered = False
        while True:
            head = read_exact(sock, 9)
            if head is None:
                return
            length = struct.unpack(">I", b"\0" + head[:3])[0]
            ftype, flags, stream = head[3], head[4], struct.unpack(">I", head[5:])[0] & 0x7FFFFFFF
            payload = read_exact(sock, length) if length else b""
            if payload is None:
                return
            if ftype == SETTINGS and not flags & ACK:
                sock.sendall(frame(SETTINGS, ACK, 0))
            elif ftype == PING and not flags & ACK:
                sock.sendall(frame(PING, ACK, 0, payload))
            elif ftype in (HEADERS, CONTINUATION) and flags & END_HEADERS:
                requests.append(stream)
                if mode == "rst":
                    sock.sendall(frame(RST_STREAM, 0, stream, struct.pack(">I", arg)))
                elif len(requests) == arg and not answered:
                    answered = True
                    first = requests[0]
                    sock.sendall(frame(GOAWAY, 0, 0, struct.pack(">II", first, 0)) +
                                 frame(HEADERS, END_STREAM | END_HEADERS, first, STATUS_200))


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    srv = Server(("127.0.0.1", int(sys.argv[1])), Handler)
    print("listening", flush=True)
    srv.serve_forever()
