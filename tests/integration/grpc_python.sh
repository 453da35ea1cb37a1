#!/bin/bash
# gRPC interop with a stock client: Python's grpcio (with classes from
# `protoc --python_out`) against lib/grpc's server (tests/tools/grpc_echo):
# unary, server-, client- and bidi streaming, messages checked field by field,
# and the status codes (UNIMPLEMENTED, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED,
# grpc-message round trip, compressed requests, cancellation reaching the server).
# Usage: grpc_python.sh BUILD_DIR SOURCE_DIR SHARED_DIR   (exit 77: skipped)
set -u
BUILD=$1 SRC=$2
PY=/usr/bin/python3
if ! "$PY" -c 'import grpc, google.protobuf' 2>/dev/null; then
    echo "skipped: /usr/bin/python3 cannot import grpc and google.protobuf (Debian python3-grpcio python3-protobuf)"
    exit 77
fi
if ! command -v protoc > /dev/null; then
    echo "skipped: protoc not found (Debian protobuf-compiler)"
    exit 77
fi
ECHO=$BUILD/grpc_echo
if [ ! -x "$ECHO" ]; then
    echo "FAIL $ECHO is not built"
    echo "0 passed, 1 failed"
    exit 1
fi
WORK=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2> /dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

if ! protoc --proto_path="$SRC/proto" --python_out="$WORK" mesh/tap/v1/tap.proto; then
    echo "FAIL protoc --python_out"
    echo "0 passed, 1 failed"
    exit 1
fi

# 1 MiB message cap, so RESOURCE_EXHAUSTED is cheap to reach
"$ECHO" --max-message 1048576 > "$WORK/port" 2> "$WORK/echo.err" &
pid=$!
for _ in $(seq 50); do
    [ -s "$WORK/port" ] && break
    sleep 0.1
done
port=$(head -n1 "$WORK/port")
if [ -z "$port" ]; then
    echo "FAIL grpc_echo did not start: $(cat "$WORK/echo.err")"
    echo "0 passed, 1 failed"
    exit 1
fi

"$PY" - "$WORK" "127.0.0.1:$port" > "$WORK/results" 2>&1 << 'PY'
import queue
import sys
import time

sys.path.insert(0, sys.argv[1])
import grpc
from mesh.tap.v1 import tap_pb2 as pb

addr = sys.argv[2]


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": %s" % (detail,)), flush=True)


def rpc_error(fn):
    """Runs fn; returns the grpc.RpcError it raised, or None."""
    try:
        fn()
    except grpc.RpcError as e:
        return e
    return None


ch = grpc.insecure_channel(addr)
grpc.channel_ready_future(ch).result(timeout=5)


def uu(method, req, rsp):
    return ch.unary_unary(method, request_serializer=req.SerializeToString,
                          response_deserializer=rsp.FromString)


unary = uu("/mesh.test.Echo/Unary", pb.TapEvent, pb.TapEvent)
ss = ch.unary_stream("/mesh.test.Echo/ServerStream", request_serializer=pb.TapEvent.SerializeToString,
                     response_deserializer=pb.WatchEvent.FromString)
cs = ch.stream_unary("/mesh.test.Echo/ClientStream", request_serializer=pb.TapEvent.SerializeToString,
                     response_deserializer=pb.ReportAck.FromString)
report = ch.stream_stream("/mesh.tap.v1.Collector/Report",
                          request_serializer=pb.ReportRequest.SerializeToString,
                          response_deserializer=pb.ReportAck.FromString)
fail = uu("/mesh.test.Echo/Fail", pb.TapEvent, pb.TapEvent)
hold = uu("/mesh.test.Echo/Hold", pb.TapEvent, pb.TapEvent)
stats = uu("/mesh.test.Echo/Stats", pb.TapEvent, pb.TapEvent)

# --- unary
ev = pb.TapEvent(path="/emojivoto.v1.VotingService/VoteDoughnut", method="POST", grpc_status=2,
                 req_bytes=5, src_labels={"deployment": "web"})
rsp, call = unary.with_call(ev, timeout=5)
check("unary: the event comes back", rsp.path == ev.path and rsp.grpc_status == 2 and
      rsp.status == 200 and rsp.src_labels["deployment"] == "web", rsp)
check("unary: status OK", call.code() == grpc.StatusCode.OK, call.code())
futures = [unary.future(pb.TapEvent(req_bytes=i), timeout=10) for i in range(300)]
check("unary: 300 concurrent calls", all(f.result().req_bytes == i for i, f in enumerate(futures)))
rsp = unary(pb.TapEvent(path="y" * ((1 << 20) - 100)), timeout=10)
check("unary: a message just under the cap", len(rsp.path) == (1 << 20) - 100)

# --- server streaming
got = list(ss(pb.TapEvent(status=1000), timeout=10))
check("server streaming: 1000 messages in order",
      len(got) == 1000 and all(w.missed == i and w.event.path == "/n/%d" % i for i, w in enumerate(got)),
      len(got))
n = sum(1 for _ in ss(pb.TapEvent(status=100000), timeout=60))
check("server streaming: 100000 messages (flow control)", n == 100000, n)
check("server streaming: none", list(ss(pb.TapEvent(status=0), timeout=5)) == [])

# --- client streaming
ack = cs(iter([pb.TapEvent(req_bytes=i) for i in range(500)]), timeout=10)
check("client streaming: 500 messages counted", ack.stored == 500 and ack.seq == sum(range(500)), ack)
ack = cs(iter([]), timeout=5)
check("client streaming: none", ack.stored == 0, ack)

# --- bidi
reqs = [pb.ReportRequest(sender_id="py", seq=i, events=[pb.TapEvent(path="/x")] * i) for i in range(1, 51)]
acks = list(report(iter(reqs), timeout=10))
check("bidi: Report acks every batch", len(acks) == 50 and all(
    a.seq == i + 1 and a.stored == i + 1 and a.sender_id == "py" for i, a in enumerate(acks)), len(acks))

q = queue.Queue()


def requests():
    while True:
        item = q.get()
        if item is None:
            return
        yield item


it = report(requests(), timeout=10)
pongs = 0
for i in range(1, 21):
    q.put(pb.ReportRequest(sender_id="pp", seq=i))
    if next(it).seq == i:
        pongs += 1
q.put(None)
rest = list(it)
check("bidi: ping-pong, each ack before the next batch", pongs == 20 and rest == [], (pongs, rest))

# --- status codes
e = rpc_error(lambda: uu("/mesh.test.Echo/Nope", pb.TapEvent, pb.TapEvent)(ev, timeout=5))
check("unknown method: UNIMPLEMENTED", e is not None and e.code() == grpc.StatusCode.UNIMPLEMENTED, e)
e = rpc_error(lambda: ch.unary_stream("/nope.Svc/Watch")(b"", timeout=5).__next__())
check("unknown streaming method: UNIMPLEMENTED",
      e is not None and e.code() == grpc.StatusCode.UNIMPLEMENTED, e)

msg = "no doughnut: 50% off, ünïcödé\tand a newline\n"
e = rpc_error(lambda: fail(pb.TapEvent(grpc_status=2, error=msg), timeout=5))
check("status and grpc-message round trip", e is not None and e.code() == grpc.StatusCode.UNKNOWN and
      e.details() == msg, e and (e.code(), e.details()))
e = rpc_error(lambda: fail(pb.TapEvent(grpc_status=5, error="gone"), timeout=5))
check("NOT_FOUND", e is not None and e.code() == grpc.StatusCode.NOT_FOUND and e.details() == "gone", e)

e = rpc_error(lambda: unary(pb.TapEvent(path="x" * (2 << 20)), timeout=10))
check("over the message cap: RESOURCE_EXHAUSTED",
      e is not None and e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e)
e = rpc_error(lambda: list(report(iter([pb.ReportRequest(sender_id="x" * (2 << 20))]), timeout=10)))
check("over the message cap, streaming: RESOURCE_EXHAUSTED",
      e is not None and e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e)

t0 = time.time()
e = rpc_error(lambda: hold(ev, timeout=0.3))
took = time.time() - t0
check("deadline: DEADLINE_EXCEEDED", e is not None and e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and
      took < 3, (e, took))

# a fresh connection (grpcio compresses less once it has seen our grpc-accept-encoding)
gz = grpc.insecure_channel(addr, compression=grpc.Compression.Gzip,
                          options=[("grpc.use_local_subchannel_pool", 1)])
gz_unary = gz.unary_unary("/mesh.test.Echo/Unary", request_serializer=pb.TapEvent.SerializeToString,
                          response_deserializer=pb.TapEvent.FromString)
compressible = pb.TapEvent(path="x" * 1000)  # grpcio sends what gzip does not shrink as is
e = rpc_error(lambda: gz_unary(compressible, timeout=5))
check("gzip-compressed request: UNIMPLEMENTED", e is not None and
      e.code() == grpc.StatusCode.UNIMPLEMENTED and "compression" in e.details(), e)
gz.close()
rsp = unary(ev, timeout=5)
check("the channel still works after errors", rsp.path == ev.path)

# --- cancellation reaches the server's handler
before = stats(pb.TapEvent(), timeout=5).status
it = ss(pb.TapEvent(status=10000000), timeout=60)
first = [next(it) for _ in range(10)]
it.cancel()
after = before
for _ in range(50):
    after = stats(pb.TapEvent(), timeout=5).status
    if after > before:
        break
    time.sleep(0.05)
check("cancel: the server's on_cancel ran", after == before + 1 and first[9].missed == 9,
      (before, after))
ch.close()
PY
pyrc=$?
cat "$WORK/results"

kill -TERM "$pid"
wait "$pid"
echo_rc=$?
pid=
pass=$(grep -c '^ok ' "$WORK/results")
fail=$(grep -c '^FAIL ' "$WORK/results")
if [ "$pyrc" -ne 0 ] && [ "$fail" -eq 0 ]; then
    echo "FAIL the Python client crashed (exit $pyrc)"
    fail=$((fail + 1))
fi
if [ "$echo_rc" -eq 0 ]; then
    echo "ok   grpc_echo shut down cleanly on SIGTERM"
    pass=$((pass + 1))
else
    echo "FAIL grpc_echo exit status $echo_rc: $(cat "$WORK/echo.err")"
    fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
