#!/usr/bin/python3
"""Misbehaving peers for the fault and load tests (tests/fault, tests/load),
written by hand so they fail exactly when and how a test asks.

Servers (print their port on the first line of stdout, then serve until killed):
  faultpeer.py serve h1-ok          200 + "ok\\n" to every request (keep-alive)
  faultpeer.py serve h1-cookie      the same with Set-Cookie: sid=peer-cookie-7f3a91 and
                                    X-Served-By: faultpeer, chunked, with the trailer
                                    X-Checksum: peer-sum-ok
  faultpeer.py serve h1-reset-mid   200, Content-Length 1 MB, 16 KiB of it, then RST
  faultpeer.py serve h1-silent      reads the request, never answers
  faultpeer.py serve h1-big         200, Content-Length 64 MiB, written until the peer leaves
  faultpeer.py serve h2-ok          h2c: 200 + "ok\n" to every request
  faultpeer.py serve h2-reset-mid   h2c: HEADERS 200 + 16 KiB DATA, then RST_STREAM(INTERNAL_ERROR)
  faultpeer.py serve h2-silent      h2c: reads requests, never answers
  faultpeer.py serve h2-big         h2c: HEADERS 200 + 60 KiB DATA, the stream left open
  faultpeer.py serve sink           accepts TCP and never reads (a stuck collector)
Clients (print one line of results):
  faultpeer.py h1-abort-req PORT HOST N   N POSTs announcing 1 MB, 1 KiB sent, then close
  faultpeer.py h1-abort-rsp PORT HOST N   N GETs of /big, 4 KiB of the answer read, then RST
  faultpeer.py h2-abort-req PORT HOST N   the same over h2c (one connection each)
  faultpeer.py h2-abort-rsp PORT HOST N
  faultpeer.py h2-get PORT HOST PATH      one h2c GET: "headers data=BYTES rst=CODE|end|closed"
  faultpeer.py h2-post-slow PORT HOST PATH SECONDS
      one h2c POST whose body (END_STREAM) follows its HEADERS after SECONDS;
      prints as h2-get, with ":status=200" after "headers" when it is 200
  faultpeer.py h1-pause-get|h2-pause-get PORT HOST PATH SECONDS
      a download whose client stops reading for SECONDS after the first
      64 KiB, then reads it all: "stalled at N", then "bytes=N sha256=HEX"
  faultpeer.py h1-push-post|h2-push-post PORT HOST PATH SECONDS
      an upload pushed as fast as allowed for SECONDS: "sent=N" (h1),
      "granted=N sent=N" (h2: stream window granted past the initial)
  faultpeer.py slowloris PORT N SECONDS PROTO
      N connections trickling a request head (h1) or the client preface and
      a HEADERS frame (h2) one byte a second; prints how many the proxy
      closed, and when (min/max seconds after connecting). PROTO h1-first
      and h2-first trickle from the first byte on (the request line, the
      preface)
  faultpeer.py hold PORT HOST N
      opens N keep-alive HTTP/1.1 connections, one GET each, all at once;
      prints "open N answered A failed F in S s", then holds them until a
      line arrives on stdin, closes them all and prints "closed"
"""
import os
import select
import socket
import struct
import sys
import threading
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


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


def read_frame(sock):
    head = read_exact(sock, 9)
    if head is None:
        return None
    length = struct.unpack(">I", b"\0" + head[:3])[0]
    payload = read_exact(sock, length) if length else b""
    if payload is None:
        return None
    return head[3], head[4], struct.unpack(">I", head[5:])[0] & 0x7FFFFFFF, payload


def stream1_frame(sock):
    """The next frame of stream 1 as read_frame() gives it, SETTINGS
    acknowledged on the way; None at the end. socket.timeout goes through."""
    while True:
        fr = read_frame(sock)
        if fr is None:
            return None
        ftype, flags, stream, _ = fr
        if ftype == SETTINGS and not flags & ACK:
            sock.sendall(frame(SETTINGS, ACK, 0))
        if stream == 1:
            return fr


def hpack_lit(name, value):
    """Literal header field without indexing, new name (RFC 7541 6.2.2)."""
    name, value = name.encode(), value.encode()
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def request_block(method, host, path):
    return (hpack_lit(":method", method) + hpack_lit(":scheme", "http") +
            hpack_lit(":authority", host) + hpack_lit(":path", path))


def rst_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_head(f):
    """An HTTP/1 request head and its Content-Length; None at EOF."""
    line = f.readline()
    if not line:
        return None
    length = 0
    while True:
        h = f.readline()
        if not h or h in (b"\r\n", b"\n"):
            break
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    return line, length


# ---- servers ---------------------------------------------------------------------------------

def h1_server(conn, mode):
    f = conn.makefile("rb")
    while True:
        req = read_head(f)
        if req is None:
            return
        if req[1]:
            f.read(req[1])
        if mode == "h1-ok":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        elif mode == "h1-cookie":
            conn.sendall(b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=peer-cookie-7f3a91\r\n"
                         b"X-Served-By: faultpeer\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
                         b"3\r\nok\n\r\n0\r\nX-Checksum: peer-sum-ok\r\n\r\n")
        elif mode == "h1-reset-mid":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 16384)
            time.sleep(0.05)
            rst_close(conn)
            return
        elif mode == "h1-big":
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (64 << 20))
                chunk = b"y" * 65536
                for _ in range(1024):
                    conn.sendall(chunk)
            except OSError:
                return
        elif mode == "h1-silent":
            while conn.recv(65536):
                pass
            return


def h2_server(conn, mode):
    if read_exact(conn, len(PREFACE)) != PREFACE:
        return
    conn.sendall(frame(SETTINGS, 0, 0))
    while True:
        fr = read_frame(conn)
        if fr is None:
            return
        ftype, flags, stream, payload = fr
        if ftype == SETTINGS and not flags & ACK:
            conn.sendall(frame(SETTINGS, ACK, 0))
        elif ftype == PING and not flags & ACK:
            conn.sendall(frame(PING, ACK, 0, payload))
        elif ftype in (HEADERS, DATA) and flags & END_STREAM and mode == "h2-reset-mid":
            conn.sendall(frame(HEADERS, END_HEADERS, stream, b"\x88") +
                         frame(DATA, 0, stream, b"z" * 16384))
            time.sleep(0.02)
            conn.sendall(frame(RST_STREAM, 0, stream, struct.pack(">I", 2)))
        elif ftype in (HEADERS, DATA) and flags & END_STREAM and mode == "h2-ok":
            conn.sendall(frame(HEADERS, END_HEADERS, stream, b"\x88") +
                         frame(DATA, END_STREAM, stream, b"ok\n"))
        elif ftype in (HEADERS, DATA) and flags & END_STREAM and mode == "h2-big":
            # within the initial 64 KiB window; the rest never comes
            conn.sendall(frame(HEADERS, END_HEADERS, stream, b"\x88") +
                         b"".join(frame(DATA, 0, stream, b"w" * 15360) for _ in range(4)))


def serve(mode):
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if mode == "sink":  # small buffers: the sender's writes stall soon
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lst.bind(("127.0.0.1", 0))
    lst.listen(1024)
    print(lst.getsockname()[1], flush=True)
    held = []
    while True:
        conn, _ = lst.accept()
        if mode == "sink":
            held.append(conn)
            continue
        target = h2_server if mode.startswith("h2") else h1_server

        def run(c=conn):
            try:
                target(c, mode)
            except OSError:
                pass
            finally:
                try:
                    c.close()
                except OSError:
                    pass
        threading.Thread(target=run, daemon=True).start()


# ---- clients ---------------------------------------------------------------------------------

def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def h2_open(port):
    s = connect(port)
    s.sendall(PREFACE + frame(SETTINGS, 0, 0))
    return s


def abort(kind, port, host, n):
    done = 0
    for _ in range(n):
        s = h2_open(port) if kind.startswith("h2") else connect(port)
        if kind == "h1-abort-req":
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000000\r\n\r\n" % host.encode()
                      + b"a" * 1024)
            time.sleep(0.005)
            s.close()
        elif kind == "h1-abort-rsp":
            s.sendall(b"GET /big HTTP/1.1\r\nHost: %s\r\n\r\n" % host.encode())
            got = 0
            while got < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += len(chunk)
            rst_close(s)
        elif kind == "h2-abort-req":
            s.sendall(frame(HEADERS, END_HEADERS, 1, request_block("POST", host, "/upload")) +
                      frame(DATA, 0, 1, b"a" * 1024))
            time.sleep(0.005)
            s.close()
        elif kind == "h2-abort-rsp":
            s.sendall(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block("GET", host, "/big")))
            got = 0
            while got < 4096:
                fr = read_frame(s)
                if fr is None:
                    break
                if fr[0] == DATA:
                    got += len(fr[3])
            rst_close(s)
        done += 1
    print("%d done" % done)


def h2_get(port, host, path, upload_after=None):
    s = h2_open(port)
    if upload_after is None:
        s.sendall(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block("GET", host, path)))
    else:
        s.sendall(frame(HEADERS, END_HEADERS, 1, request_block("POST", host, path)))
        time.sleep(upload_after)
        s.sendall(frame(DATA, END_STREAM, 1, b"body"))
    out, nbytes, end = [], 0, "closed"
    while True:
        try:
            fr = stream1_frame(s)
        except socket.timeout:
            end = "timeout"
            break
        if fr is None:
            break
        ftype, flags, _, payload = fr
        if ftype == HEADERS and not out:
            out.append("headers")
            out += [":status=200"] if payload[:1] == b"\x88" else []  # static entry 8
        if ftype == DATA:
            nbytes += len(payload)
        if ftype == RST_STREAM:
            end = "rst=%d" % struct.unpack(">I", payload)[0]
            break
        if flags & END_STREAM and ftype in (DATA, HEADERS):
            end = "end"
            break
    print(" ".join(out + ["data=%d" % nbytes, end]))


def pause_get(proto, port, host, path, pause):
    """Backpressure, download: a GET whose client reads a little, then nothing
    for |pause| seconds (h2: grants no window beyond the initial 64 KiB),
    then everything. Prints "stalled at N" (flushed) when it stops reading,
    then "bytes=N sha256=HEX" of the whole body."""
    import hashlib
    digest, got = hashlib.sha256(), 0
    if proto == "h1":
        s = connect(port)
        s.settimeout(30)
        s.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path.encode(), host.encode()))
        f = s.makefile("rb")
        length = None
        while True:
            line = f.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        first = f.read(65536)
        digest.update(first)
        got = len(first)
        print("stalled at %d" % got, flush=True)
        time.sleep(pause)
        while got < length:
            chunk = f.read(min(1 << 20, length - got))
            if not chunk:
                break
            digest.update(chunk)
            got += len(chunk)
    else:
        s = h2_open(port)
        s.sendall(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block("GET", host, path)))
        s.settimeout(0.5)
        paused = False
        while True:
            try:
                fr = stream1_frame(s)
            except socket.timeout:
                if paused:
                    break
                print("stalled at %d" % got, flush=True)  # the initial windows are used up
                time.sleep(pause)
                grant = struct.pack(">I", (1 << 31) - 1 - 65535)
                s.sendall(frame(WINDOW_UPDATE, 0, 0, grant) + frame(WINDOW_UPDATE, 0, 1, grant))
                s.settimeout(30)
                paused = True
                continue
            if fr is None:
                break
            ftype, flags, _, payload = fr
            if ftype == DATA:
                digest.update(payload)
                got += len(payload)
            if ftype == RST_STREAM or (flags & END_STREAM and ftype in (DATA, HEADERS)):
                break
    print("bytes=%d sha256=%s" % (got, digest.hexdigest()), flush=True)


def push_post(proto, port, host, path, seconds):
    """Backpressure, upload: a POST pushing as fast as it may for |seconds|
    to an upstream that takes nothing. Prints "sent=N" (bytes the socket
    took, h1) or "granted=N sent=N" (stream window the proxy gave beyond
    the initial one, DATA bytes sent, h2)."""
    chunk = b"u" * 16384
    end = time.monotonic() + seconds
    sent = 0
    if proto == "h1":
        s = connect(port)
        s.sendall(b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n"
                  % (path.encode(), host.encode(), 1 << 40))
        s.setblocking(False)
        while time.monotonic() < end:
            _, w, _ = select.select([], [s], [], max(0, end - time.monotonic()))
            if w:
                try:
                    sent += s.send(chunk)
                except BlockingIOError:
                    pass
        print("sent=%d" % sent, flush=True)
        rst_close(s)
        return
    s = h2_open(port)
    s.sendall(frame(HEADERS, END_HEADERS, 1, request_block("POST", host, path)))
    conn_win, stream_win, init, granted, buf = 65535, 65535, 65535, 0, b""
    s.setblocking(False)
    while time.monotonic() < end:
        n = min(len(chunk), conn_win, stream_win)
        r, w, _ = select.select([s], [s] if n > 0 else [], [], max(0, min(0.1, end - time.monotonic())))
        if r:
            try:
                data = s.recv(65536)
            except BlockingIOError:
                data = b""
            buf += data
            while len(buf) >= 9:
                length = struct.unpack(">I", b"\0" + buf[:3])[0]
                if len(buf) < 9 + length:
                    break
                ftype, flags, stream = buf[3], buf[4], struct.unpack(">I", buf[5:9])[0] & 0x7FFFFFFF
                payload, buf = buf[9:9 + length], buf[9 + length:]
                if ftype == SETTINGS and not flags & ACK:
                    for i in range(0, len(payload), 6):
                        ident, value = struct.unpack(">HI", payload[i:i + 6])
                        if ident == 4:  # SETTINGS_INITIAL_WINDOW_SIZE
                            stream_win += value - init
                            init = value
                    s.setblocking(True)
                    s.sendall(frame(SETTINGS, ACK, 0))
                    s.setblocking(False)
                elif ftype == WINDOW_UPDATE:
                    inc = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
                    if stream == 0:
                        conn_win += inc
                    elif stream == 1:
                        stream_win += inc
                        granted += inc
        if w and n > 0:
            s.setblocking(True)
            s.sendall(frame(DATA, 0, 1, chunk[:n]))
            s.setblocking(False)
            sent += n
            conn_win -= n
            stream_win -= n
    print("granted=%d sent=%d" % (granted, sent), flush=True)
    rst_close(s)


def slowloris(port, n, seconds, proto):
    """|n| connections that say enough for the proxy to know the protocol
    (h1: the request line; h2: the client preface), then trickle the rest
    of a request head one byte a second for up to |seconds|."""
    if proto == "h1":
        first, rest = b"GET / HTTP/1.1\r\n", b"Host: slow.local\r\nX-Pad: " + b"p" * 4096
    elif proto in ("h1-first", "h2-first"):  # trickled from the first byte on
        rest = b"GET / HTTP/1.1\r\n" if proto == "h1-first" else PREFACE
        first, rest = rest[:1], rest[1:]  # (silence would be a server-speaks-first protocol)
    else:
        first = PREFACE + frame(SETTINGS, 0, 0)
        rest = frame(HEADERS, 0, 1, request_block("GET", "slow.local", "/") + b"\x00" * 4096)
    socks, start, off = [], {}, {}
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(first)
        except OSError:
            continue
        s.setblocking(False)
        socks.append(s)
        start[s] = time.monotonic()
        off[s] = 0
    closed_at = []

    def gone(s):
        closed_at.append(time.monotonic() - start[s])
        socks.remove(s)
        s.close()
    t0 = time.monotonic()
    while socks and time.monotonic() - t0 < seconds:
        for s in list(socks):
            try:
                s.send(rest[off[s]:off[s] + 1])
                off[s] += 1
            except OSError:
                gone(s)
        # the proxy's close shows as EOF (after a 408 or a GOAWAY) before a send fails
        deadline = time.monotonic() + 1.0
        while socks and time.monotonic() < deadline:
            r, _, _ = select.select(socks, [], [], max(0, deadline - time.monotonic()))
            for s in r:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    gone(s)
    left = len(socks)
    for s in socks:
        s.close()
    if closed_at:
        print("%d of %d closed, after %.1f-%.1f s, %d open" % (len(closed_at), n, min(closed_at),
                                                              max(closed_at), left))
    else:
        print("0 of %d closed, %d open" % (n, left))


def hold(port, host, n):
    import selectors
    sel = selectors.DefaultSelector()
    t0 = time.monotonic()
    req = b"GET /index.html HTTP/1.1\r\nHost: %s\r\n\r\n" % host.encode()
    socks, got, answered, failed = [], {}, 0, 0
    for _ in range(n):
        try:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.settimeout(10)
            s.connect(("127.0.0.1", port))
            s.sendall(req)
            s.setblocking(False)
        except OSError:
            failed += 1
            continue
        socks.append(s)
        got[s] = b""
        sel.register(s, selectors.EVENT_READ)
    pending = len(socks)
    deadline = time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(1.0):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                failed += 1
            else:
                got[s] += data
                head, sep, body = got[s].partition(b"\r\n\r\n")
                if not sep:
                    continue
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v)
                if len(body) < length:
                    continue
                if head.startswith(b"HTTP/1.1 200"):
                    answered += 1
                else:
                    failed += 1
            sel.unregister(s)
            pending -= 1
    print("open %d answered %d failed %d in %.1f s" % (len(socks), answered, failed + pending,
                                                        time.monotonic() - t0), flush=True)
    sys.stdin.readline()
    for s in socks:
        s.close()
    print("closed", flush=True)


def main():
    cmd = sys.argv[1]
    if cmd == "serve":
        serve(sys.argv[2])
    elif cmd in ("h1-abort-req", "h1-abort-rsp", "h2-abort-req", "h2-abort-rsp"):
        abort(cmd, int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    elif cmd == "h2-get":
        h2_get(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif cmd == "h2-post-slow":
        h2_get(int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5]))
    elif cmd in ("h1-pause-get", "h2-pause-get"):
        pause_get(cmd[:2], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5]))
    elif cmd in ("h1-push-post", "h2-push-post"):
        push_post(cmd[:2], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5]))
    elif cmd == "hold":
        hold(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    elif cmd == "slowloris":
        slowloris(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        os._exit(0)
