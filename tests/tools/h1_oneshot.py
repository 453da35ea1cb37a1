#!/usr/bin/env python3
"""tests/tools/h1_oneshot.py — an HTTP/1.1 server that closes every connection
right after its first response, without saying so (no Connection: close): what
a backend with a short keep-alive timeout looks like to a connection pool.
Prints its port on stdout; answers "one shot N" (N counts connections).
"""
import socket
import sys
import threading

count = 0


def serve(conn):
    global count
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        count += 1
        body = b"one shot %d\n" % count
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


def main():
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    lst.listen(64)
    print(lst.getsockname()[1], flush=True)
    while True:
        conn, _ = lst.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
