#!/bin/bash
# The collector's connections (issue 9, slow and idle clients on the
# collector's listener): with --idle-timeout 2s, 1,023 sockets that never
# begin a call (silent, or trickling the client preface a byte a second) —
# enough to take every connection the collector allows — are closed after
# 2 s, and a real caller gets in again; a connection with a call open (a
# Watch, `mesh tap`) is never idle; a grpcio channel whose connection was
# closed while idle makes its next call on a new one.
# Usage: collector_idle.sh BUILD_DIR SOURCE_DIR SHARED_DIR   (exit 77: skipped)
set -u
. "$(dirname "$0")/../tools/testlib.sh"
. "$(dirname "$0")/lib/faultlib.sh"
need_corpus
"$PY" -c 'import grpc, google.protobuf' 2> /dev/null || skip "python3-grpcio or python3-protobuf missing"
command -v protoc > /dev/null || skip "protoc missing (scripts/deps.sh: protobuf-compiler)"
ulimit -n 4096 2> /dev/null || true
cpid=
trap 'kill $cpid $tpid 2> /dev/null; wait $cpid $tpid 2> /dev/null; rm -rf "$WORK"' EXIT
tpid=
port=$(free_port)
"$MESH" collector --listen 127.0.0.1:$port --db "$WORK/mesh.db" --idle-timeout 2s 2> "$WORK/collector.log" &
cpid=$!
wait_port $port || exit 1
pcap=$SHARED/corpus/emojivoto/grpc.pcap
stat_ok() { timeout 10 "$MESH" stat deploy -A --collector 127.0.0.1:$port > /dev/null 2>&1; }

# a Watch stays open past the idle timeout and still gets events
timeout 8 "$MESH" tap ns -A --collector 127.0.0.1:$port -o json > "$WORK/tap.out" 2> "$WORK/tap.err" &
tpid=$!
sleep 0.5 # its connection is the 1st of the 1024 allowed

# 1023 sockets that never begin a call, all at once
"$PY" - "$port" > "$WORK/hogs.out" 2>&1 <<'EOF' &
import select, socket, sys, time
port, socks, start = int(sys.argv[1]), [], time.monotonic()
preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
for i in range(1023):
    s = socket.create_connection(("127.0.0.1", port))
    socks.append(s)
print("open %d" % len(socks), flush=True)
closed, sent = {}, 0
while socks and time.monotonic() - start < 6:
    if sent < len(preface):  # half of them trickle the preface
        for s in socks[::2]:
            try:
                s.send(preface[sent:sent + 1])
            except OSError:
                pass
        sent += 1
    poller = select.poll()
    byfd = {s.fileno(): s for s in socks}
    for fd in byfd:
        poller.register(fd, select.POLLIN)
    for fd, _ in poller.poll(1000):
        s = byfd[fd]
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:
            closed[s] = time.monotonic() - start
            socks.remove(s)
            s.close()
t = sorted(closed.values())
print("closed %d of 1023 after %.1f-%.1f s, %d open" % (len(t), t[0] if t else -1, t[-1] if t else -1, len(socks)))
EOF
hogs=$!
for _ in $(seq 100); do grep -q "^open" "$WORK/hogs.out" && break; sleep 0.05; done
sleep 0.3
stat_ok && bad "a call got in while 1023 idle sockets and the Watch held every connection" ||
    ok "the Watch and 1023 sockets that begin no call take every connection: a caller is turned away meanwhile"
wait $hogs
r=$(tail -1 "$WORK/hogs.out")
if [[ $r =~ ^closed\ 1023\ of\ 1023\ after\ ([0-9.]+)-([0-9.]+)\ s,\ 0\ open$ ]] &&
    awk -v a="${BASH_REMATCH[1]}" -v b="${BASH_REMATCH[2]}" 'BEGIN { exit !(a >= 1.9 && b <= 3.5) }'; then
    ok "silent and trickling sockets closed by the collector at the timeout: $r"
else
    bad "idle sockets: $r"
fi
stat_ok && ok "a caller gets in again" || bad "stat failed after the idle sockets were closed"

# events while the Watch has been open for longer than the idle timeout
"$MESH" replay -q "$pcap" --labels "$SRC/tests/data/emojivoto.labels" --collector 127.0.0.1:$port > /dev/null 2> "$WORK/replay.err" ||
    bad "replay --collector failed: $(cat "$WORK/replay.err")"
wait $tpid
tpid=
n=$(grep -c '"proxy_direction":"replay"' "$WORK/tap.out")
[ "$n" -gt 0 ] && ok "a Watch open for longer than the idle timeout is not idle: mesh tap saw $n events" ||
    bad "mesh tap saw nothing: $(head -3 "$WORK/tap.err")"

# a grpcio channel: a call, idle past the timeout (the collector closes the
# connection), then another call on the same channel
protoc -I "$SRC/proto" --python_out="$WORK" "$SRC/proto/mesh/tap/v1/tap.proto"
out=$(PYTHONPATH=$WORK "$PY" - "$port" 2>&1 <<'EOF'
import sys, time, grpc
from mesh.tap.v1 import tap_pb2 as pb
ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[1])
stat = ch.unary_unary("/mesh.tap.v1.Query/Stat", request_serializer=pb.StatRequest.SerializeToString,
                      response_deserializer=pb.StatResponse.FromString)
req = pb.StatRequest(resources=[pb.Resource(type="deploy")])
stat(req, timeout=5)
time.sleep(3)
stat(req, timeout=5)
print("both calls answered")
EOF
)
[ "$out" = "both calls answered" ] && ok "grpcio: a call, 3 s idle (connection closed), a call on the same channel" ||
    bad "grpcio across an idle close: $out"
"$MESH" collector --listen 127.0.0.1:0 --db "$WORK/x.db" --idle-timeout 0 > /dev/null 2> "$WORK/bad.err"; rc=$?
[ $rc = 2 ] && [ "$(wc -l < "$WORK/bad.err")" = 1 ] && ok "--idle-timeout 0: exit 2, $(cat "$WORK/bad.err")" ||
    bad "--idle-timeout 0: exit $rc: $(cat "$WORK/bad.err")"
kill -TERM $cpid; wait $cpid; rc=$?
cpid=
[ $rc = 0 ] && ok "collector exits 0" || bad "collector exit $rc: $(tail -3 "$WORK/collector.log")"
sanitizer_check "$WORK/collector.log"
finish
