#!/usr/bin/python3
"""A gRPC peer for proxy tests, built on Debian's python3-grpcio with generic
handlers and raw bytes (no generated classes): every kind of RPC, with messages
made so that the other end can check them byte for byte.

  grpc_stream.py serve PORT                 serve mesh.test.Stream on 127.0.0.1:PORT
  grpc_stream.py check ADDR [AUTHORITY]     call every method, print "ok   …" / "FAIL …"
  grpc_stream.py call ADDR AUTHORITY        one Echo call; prints the status code name

Methods of mesh.test.Stream: Echo (unary, metadata back), Split (server
streaming: "COUNT,SIZE" gives COUNT messages), Gather (client streaming: count
and SHA-256 of all), Chat (bidi: each message reversed), Fail ("CODE:MESSAGE"),
Forever (server streaming until cancelled), Cancels (how many were cancelled).
"""
import hashlib
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "mesh.test.Stream"
MAX_MSG = 8 << 20
OPTIONS = [("grpc.max_receive_message_length", MAX_MSG), ("grpc.max_send_message_length", MAX_MSG)]
cancels = 0
cancels_lock = threading.Lock()


def pattern(i, size):
    """Message |i| of a stream: |size| bytes that differ from message to message."""
    block = hashlib.sha256(b"msg-%d" % i).digest()
    return (block * (size // len(block) + 1))[:size]


def ident(x):
    return x


def echo(req, ctx):
    md = dict(ctx.invocation_metadata())
    ctx.send_initial_metadata((("x-echo", md.get("x-echo", "")),))
    ctx.set_trailing_metadata((("x-trailer", "len-%d" % len(req)),))
    return req


def split(req, ctx):
    count, size = (int(x) for x in req.split(b","))
    for i in range(count):
        yield pattern(i, size)


def gather(reqs, ctx):
    h = hashlib.sha256()
    n = 0
    for m in reqs:
        h.update(m)
        n += 1
    return b"%d:%s" % (n, h.hexdigest().encode())


def chat(reqs, ctx):
    for m in reqs:
        yield m[::-1]


def fail(req, ctx):
    code, msg = req.split(b":", 1)
    status = next(s for s in grpc.StatusCode if s.value[0] == int(code))
    ctx.abort(status, msg.decode())


def forever(req, ctx):
    def on_done():  # the stream never ends by itself: it ended by cancellation
        global cancels
        with cancels_lock:
            cancels += 1
    ctx.add_callback(on_done)
    i = 0
    while ctx.is_active():
        yield pattern(i, 1024)
        i += 1
        time.sleep(0.01)


def count_cancels(req, ctx):
    with cancels_lock:
        return b"%d" % cancels


def serve(port):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=OPTIONS)
    kw = dict(request_deserializer=ident, response_serializer=ident)
    handlers = {
        "Echo": grpc.unary_unary_rpc_method_handler(echo, **kw),
        "Split": grpc.unary_stream_rpc_method_handler(split, **kw),
        "Gather": grpc.stream_unary_rpc_method_handler(gather, **kw),
        "Chat": grpc.stream_stream_rpc_method_handler(chat, **kw),
        "Fail": grpc.unary_unary_rpc_method_handler(fail, **kw),
        "Forever": grpc.unary_stream_rpc_method_handler(forever, **kw),
        "Cancels": grpc.unary_unary_rpc_method_handler(count_cancels, **kw),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    print("listening on %d" % port, flush=True)
    server.wait_for_termination()


def channel(addr, authority):
    opts = list(OPTIONS)
    if authority:
        opts.append(("grpc.default_authority", authority))
    return grpc.insecure_channel(addr, options=opts)


def method(ch, kind, name):
    return getattr(ch, kind)("/%s/%s" % (SERVICE, name), request_serializer=ident,
                             response_deserializer=ident)


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": %r" % (detail,)), flush=True)
    return cond


def run_checks(addr, authority):
    ch = channel(addr, authority)
    grpc.channel_ready_future(ch).result(timeout=10)
    echo_m = method(ch, "unary_unary", "Echo")

    rsp, call = echo_m.with_call(b"hello", metadata=(("x-echo", "abc"),), timeout=10)
    init = dict(call.initial_metadata())
    trail = dict(call.trailing_metadata())
    check("grpc unary: message, header and trailer metadata",
          rsp == b"hello" and init.get("x-echo") == "abc" and trail.get("x-trailer") == "len-5",
          (rsp, init, trail))
    check("grpc unary: empty message", echo_m(b"", timeout=10) == b"")
    big = pattern(7, 3 << 20)
    check("grpc unary: 3 MiB message byte-exact", echo_m(big, timeout=30) == big)
    futs = [echo_m.future(b"%d" % i, timeout=30) for i in range(100)]
    check("grpc unary: 100 concurrent calls", all(f.result() == b"%d" % i for i, f in enumerate(futs)))

    got = list(method(ch, "unary_stream", "Split")(b"100,100000", timeout=30))
    check("grpc server streaming: 100 x 100 kB byte-exact",
          len(got) == 100 and all(m == pattern(i, 100000) for i, m in enumerate(got)), len(got))
    check("grpc server streaming: no messages",
          list(method(ch, "unary_stream", "Split")(b"0,10", timeout=10)) == [])

    msgs = [pattern(i, 256 << 10) for i in range(64)]
    want = b"64:" + hashlib.sha256(b"".join(msgs)).hexdigest().encode()
    rsp = method(ch, "stream_unary", "Gather")(iter(msgs), timeout=60)
    check("grpc client streaming: 64 x 256 KiB byte-exact", rsp == want, rsp)

    msgs = [pattern(i, (i * 997) % 70000) for i in range(200)]
    got = list(method(ch, "stream_stream", "Chat")(iter(msgs), timeout=60))
    check("grpc bidi streaming: 200 messages byte-exact",
          len(got) == 200 and all(g == m[::-1] for g, m in zip(got, msgs)), len(got))

    msg = "gone: 50% off, ünïcödé\tand a newline\n"
    try:
        method(ch, "unary_unary", "Fail")(b"5:" + msg.encode(), timeout=10)
        check("grpc status NOT_FOUND and grpc-message", False, "no error")
    except grpc.RpcError as e:
        check("grpc status NOT_FOUND and grpc-message",
              e.code() == grpc.StatusCode.NOT_FOUND and e.details() == msg, (e.code(), e.details()))

    cancels_m = method(ch, "unary_unary", "Cancels")
    before = int(cancels_m(b"", timeout=10))
    it = method(ch, "unary_stream", "Forever")(b"", timeout=30)
    first = [next(it) for _ in range(5)]
    it.cancel()
    after = before
    for _ in range(100):
        after = int(cancels_m(b"", timeout=10))
        if after > before:
            break
        time.sleep(0.05)
    check("grpc cancel: the client's RST_STREAM reaches the server",
          after == before + 1 and first[4] == pattern(4, 1024), (before, after))
    ch.close()


def one_call(addr, authority):
    ch = channel(addr, authority)
    try:
        method(ch, "unary_unary", "Echo")(b"x", timeout=10)
        print("OK")
    except grpc.RpcError as e:
        print("%s %s" % (e.code().name, e.details()))
    ch.close()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif sys.argv[1] == "check":
        run_checks(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    else:
        one_call(sys.argv[2], sys.argv[3])
