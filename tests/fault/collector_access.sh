#!/bin/bash
# Who may tap (issue 9, "Access"):
#  - the collector refuses to listen beyond loopback without --token-file;
#  - with one, every gRPC call without "authorization: Bearer TOKEN" (none,
#    another scheme, a wrong token, a prefix of the right one) ends
#    UNAUTHENTICATED, checked from Python grpcio metadata; the right token works;
#  - mesh-proxy, mesh replay --collector and mesh stat send the token from
#    --token-file or $MESH_TOKEN_FILE; without it their calls are refused
#    (the proxy's requests still succeed: tap problems never touch traffic);
#  - redaction at the source: a proxy capturing every request header
#    (--tap-header '*', --redact-header x-api-key) sends authorization,
#    cookie, proxy-authorization and x-api-key, and the response's
#    set-cookie, by name only: `mesh tap -o json`
#    (Watch) shows them redacted next to another header's value, and their
#    values appear nowhere in its output nor in the store's bytes, nor does
#    the token;
#  - the store and its -wal and -shm are 0600 even under umask 022.
# Usage: collector_access.sh BUILD_DIR SOURCE_DIR SHARED_DIR   (exit 77: skipped)
set -u
. "$(dirname "$0")/../tools/testlib.sh"
. "$(dirname "$0")/lib/faultlib.sh"
need_corpus
for tool in curl sqlite3 protoc; do command -v $tool > /dev/null || skip "$tool missing (scripts/deps.sh)"; done
/usr/bin/python3 -c 'import grpc, google.protobuf' 2> /dev/null || skip "python3-grpcio or python3-protobuf missing"
[ -x "$PROXY" ] || { echo "FAIL $PROXY is not built"; echo "0 passed, 1 failed"; exit 1; }
umask 022
cpid=
trap 'stop_proxies; stop_peers; kill $cpid 2> /dev/null; wait $cpid 2> /dev/null; rm -rf "$WORK"' EXIT
TOKEN=mesh-test-token-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$TOKEN" > "$WORK/token"
echo "short" > "$WORK/short"

# ---- listening beyond loopback ------------------------------------------------------------------
"$MESH" collector --listen 0.0.0.0:0 --db "$WORK/x.db" > /dev/null 2> "$WORK/refuse.log"; rc=$?
[ $rc = 2 ] && grep -q "needs --token-file" "$WORK/refuse.log" && ok "0.0.0.0 without --token-file: exit 2, $(cat "$WORK/refuse.log")" ||
    bad "0.0.0.0 without a token: exit $rc: $(cat "$WORK/refuse.log")"
"$MESH" collector --listen 0.0.0.0:0 --db "$WORK/x.db" --token-file "$WORK/short" > /dev/null 2> "$WORK/short.log"; rc=$?
[ $rc = 2 ] && ok "a token file that holds no usable token: exit 2, $(cat "$WORK/short.log")" || bad "short token: exit $rc"
[ ! -e "$WORK/x.db" ] && ok "and no store was created" || bad "a store was created by a collector that refused to start"

port=$(free_port)
"$MESH" collector --listen 0.0.0.0:$port --db "$WORK/mesh.db" --token-file "$WORK/token" 2> "$WORK/collector.log" &
cpid=$!
wait_port $port || exit 1
grep -q "bearer token required" "$WORK/collector.log" && ok "listening on 0.0.0.0 with --token-file" || bad "$(cat "$WORK/collector.log")"

# ---- grpcio: metadata ------------------------------------------------------------------------------
mkdir -p "$WORK/py"
protoc --python_out="$WORK/py" -I"$SRC/proto" "$SRC/proto/mesh/tap/v1/tap.proto"
cat > "$WORK/auth.py" << 'EOF'
import sys, time, grpc
sys.path.insert(0, sys.argv[2])
from mesh.tap.v1 import tap_pb2 as pb
token = sys.argv[3]
ch = grpc.insecure_channel(sys.argv[1])
stat = ch.unary_unary("/mesh.tap.v1.Query/Stat", request_serializer=pb.StatRequest.SerializeToString,
                      response_deserializer=pb.StatResponse.FromString)
report = ch.stream_stream("/mesh.tap.v1.Collector/Report", request_serializer=pb.ReportRequest.SerializeToString,
                          response_deserializer=pb.ReportAck.FromString)
watch = ch.unary_stream("/mesh.tap.v1.Query/Watch", request_serializer=pb.WatchRequest.SerializeToString,
                        response_deserializer=pb.WatchEvent.FromString)
req = pb.StatRequest(resources=[pb.Resource(type="deploy")], window=pb.TimeWindow(last_us=60_000_000))
ev = pb.TapEvent(ts=int(time.time() * 1e6), proxy_direction=pb.INBOUND, proto="http/1.1", method="GET", path="/py")
def status(fn, md):
    try:
        r = fn(md)
        if hasattr(r, "__iter__") and not hasattr(r, "rows"):
            r = list(r)
        return "OK"
    except grpc.RpcError as e:
        return e.code().name
cases = [("none", None), ("basic", [("authorization", "Basic " + token)]),
         ("wrong", [("authorization", "Bearer " + token[:-1] + "x")]),
         ("prefix", [("authorization", "Bearer " + token[:-1])]),
         ("longer", [("authorization", "Bearer " + token + "x")]),
         ("right", [("authorization", "Bearer " + token)])]
for name, md in cases:
    s1 = status(lambda m: stat(req, metadata=m, timeout=5), md)
    s2 = status(lambda m: report(iter([pb.ReportRequest(sender_id="py-" + name, seq=1, events=[ev])]), metadata=m, timeout=5), md)
    s3 = "-"
    if name != "right":
        s3 = status(lambda m: watch(pb.WatchRequest(), metadata=m, timeout=2), md)
    print(name, s1, s2, s3)
EOF
/usr/bin/python3 "$WORK/auth.py" 127.0.0.1:$port "$WORK/py" "$TOKEN" > "$WORK/auth.out" 2>&1
cat "$WORK/auth.out"
for c in none basic wrong prefix longer; do
    grep -q "^$c UNAUTHENTICATED UNAUTHENTICATED UNAUTHENTICATED$" "$WORK/auth.out" &&
        ok "grpcio, authorization $c: Stat, Report and Watch UNAUTHENTICATED" || bad "grpcio $c: $(grep "^$c" "$WORK/auth.out")"
done
grep -q "^right OK OK -$" "$WORK/auth.out" && ok "grpcio, the right token: Stat and Report OK" || bad "grpcio right: $(grep "^right" "$WORK/auth.out")"

# ---- mesh's own clients ------------------------------------------------------------------------------
pcap=$SHARED/corpus/emojivoto/grpc.pcap
count() { sqlite3 -readonly "file:$WORK/mesh.db" "select count(*) from events $1" 2> /dev/null || echo 0; }
timeout 20 "$MESH" replay -q "$pcap" --collector 127.0.0.1:$port > /dev/null 2> "$WORK/replay0.log"; rc=$?
[ $rc != 0 ] && grep -q UNAUTHENTICATED "$WORK/replay0.log" && ok "replay without a token: exit $rc, $(tail -1 "$WORK/replay0.log")" ||
    bad "replay without a token: exit $rc: $(tail -1 "$WORK/replay0.log")"
"$MESH" replay -q "$pcap" --collector 127.0.0.1:$port --token-file "$WORK/token" > /dev/null 2> "$WORK/replay1.log" &&
    MESH_TOKEN_FILE=$WORK/token "$MESH" replay -q "$pcap" --collector 127.0.0.1:$port > /dev/null 2> "$WORK/replay2.log" &&
    ok "replay with --token-file and with MESH_TOKEN_FILE: acknowledged" || bad "replay with a token: $(cat "$WORK/replay1.log" "$WORK/replay2.log")"
"$MESH" stat deploy -A --collector 127.0.0.1:$port > "$WORK/stat0.out" 2>&1; rc=$?
[ $rc = 1 ] && grep -q UNAUTHENTICATED "$WORK/stat0.out" && ok "stat without a token: exit 1, $(head -1 "$WORK/stat0.out")" ||
    bad "stat without a token: exit $rc: $(cat "$WORK/stat0.out")"
MESH_TOKEN_FILE=$WORK/token "$MESH" stat deploy -A --collector 127.0.0.1:$port > "$WORK/stat1.out" 2>&1 &&
    ! grep -q UNAUTHENTICATED "$WORK/stat1.out" && ok "stat with MESH_TOKEN_FILE: exit 0, $(head -1 "$WORK/stat1.out")" || bad "stat with a token: $(cat "$WORK/stat1.out")"

start_peer OK h1-cookie || exit 1 # answers with Set-Cookie: sid=peer-cookie-7f3a91, and a trailer
start_proxy noauth --outbound 127.0.0.1:0 --admin off --drain-timeout 1s --route "*=127.0.0.1:$OK" --collector 127.0.0.1:$port || exit 1
pno=$pout
MESH_TOKEN_FILE=$WORK/token start_proxy auth --outbound 127.0.0.1:0 --admin off --route "*=127.0.0.1:$OK" \
    --collector 127.0.0.1:$port --namespace sec --deployment client --tap-header '*' --redact-header X-Api-Key || exit 1
SECRETS=(tok-AAAA-$RANDOM-authorization sess-BBBB-$RANDOM-cookie basic-CCCC-$RANDOM-proxyauth key-DDDD-$RANDOM-apikey
    peer-cookie-7f3a91)
VISIBLE=trace-$RANDOM-visible
MESH_TOKEN_FILE=$WORK/token timeout 20 "$MESH" tap deploy/client -n sec --collector 127.0.0.1:$port -o json \
    > "$WORK/tap.json" 2> "$WORK/tap.err" &
tpid=$!
sleep 1 # the Watch is open
for p in $pno $pout; do
    for i in 1 2 3; do
        curl -s -o /dev/null -H "Authorization: Bearer ${SECRETS[0]}" -H "Cookie: session=${SECRETS[1]}" \
            -H "Proxy-Authorization: Basic ${SECRETS[2]}" -H "X-Api-Key: ${SECRETS[3]}" -H "X-Trace: $VISIBLE" \
            "http://127.0.0.1:$p/redact/$i" || bad "request through the proxy failed"
        curl -s -o /dev/null --http2-prior-knowledge -H "authorization: Bearer ${SECRETS[0]}" -H "cookie: s=${SECRETS[1]}" \
            -H "x-api-key: ${SECRETS[3]}" -H "x-trace: $VISIBLE" \
            "http://127.0.0.1:$p/redact-h2/$i" # h2 to an HTTP/1-only peer: a 502 event, still with the headers
    done
done
for _ in $(seq 50); do [ "$(count "where path like '/redact%'")" -ge 6 ] && [ "$(grep -c redact "$WORK/tap.json")" -ge 6 ] && break; sleep 0.1; done
kill $tpid 2> /dev/null; wait $tpid 2> /dev/null
stop_proxies
# every event of the capturing proxy: x-trace's value, the four others by name only
/usr/bin/python3 - "$WORK/tap.json" "$VISIBLE" > "$WORK/tap.check" 2>&1 << 'PY'
import json, sys
events = [json.loads(line) for line in open(sys.argv[1]) if "/redact" in line]
assert len(events) == 6, f"{len(events)} events on the Watch, not 6"
for e in events:
    hs = {h["name"]: h for h in e.get("headers", [])}
    assert hs.get("x-trace", {}).get("value") == sys.argv[2], f"x-trace: {hs.get('x-trace')}"
    want = ["authorization", "cookie", "x-api-key"] + (["proxy-authorization"] if e["proto"] == "http/1.1" else [])
    for name in want:
        assert hs.get(name) == {"name": name, "redacted": True}, f"{name}: {hs.get(name)}"
    if e["proto"] == "http/1.1":  # the peer's answer: its Set-Cookie by name only
        rs = {h["name"]: h for h in e.get("response_headers", [])}
        assert rs.get("x-served-by", {}).get("value") == "faultpeer", f"response: {rs}"
        assert rs.get("set-cookie") == {"name": "set-cookie", "redacted": True}, f"response: {rs}"
        assert rs.get("x-checksum") == {"name": "x-checksum", "value": "peer-sum-ok", "trailer": True}, f"trailer: {rs}"
print(f"{len(events)} events, headers e.g. {sorted(hs)}, response headers e.g. {sorted(rs)}")
PY
[ $? = 0 ] && ok "--tap-header '*': $(cat "$WORK/tap.check"); x-trace's and x-served-by's values and the x-checksum trailer shown; authorization, cookie, proxy-authorization, --redact-header x-api-key and the response's set-cookie by name only" ||
    bad "mesh tap -o json: $(tail -3 "$WORK/tap.check") $(head -c 300 "$WORK/tap.err")"
leaks=0
for s in "${SECRETS[@]}"; do
    if grep -qaF "$s" "$WORK/tap.json"; then bad "$s in mesh tap's output"; leaks=$((leaks + 1)); fi
done
[ $leaks = 0 ] && ok "no redacted value in mesh tap's output ($(wc -c < "$WORK/tap.json") bytes)"
n_auth=$(count "where path like '/redact%' and src_deploy = 'client'") n_all=$(count "where path like '/redact%'")
[ "$n_auth" = 6 ] && [ "$n_all" = 6 ] && ok "proxy with MESH_TOKEN_FILE: its 6 events stored; the proxy without: none" ||
    bad "events stored: $n_all, from the proxy with the token: $n_auth"
grep -q "tap events: 0 acknowledged" "$WORK/noauth.log" && ok "the proxy without a token: $(grep -o 'tap events.*' "$WORK/noauth.log")" ||
    bad "noauth proxy: $(tail -2 "$WORK/noauth.log")"

# ---- file modes, then the bytes ------------------------------------------------------------------
modes=$(stat -c '%a' "$WORK/mesh.db" "$WORK/mesh.db-wal" "$WORK/mesh.db-shm" 2>&1 | tr '\n' ' ')
[ "$modes" = "600 600 600 " ] && ok "store, -wal and -shm are 0600 under umask 022" || bad "modes: $modes"
kill -TERM $cpid; wait $cpid; cpid=
leaks=0
for s in "${SECRETS[@]}" "$TOKEN"; do
    for f in "$WORK"/mesh.db*; do
        if grep -qaF "$s" "$f"; then bad "$s found in $(basename "$f")"; leaks=$((leaks + 1)); fi
    done
done
[ $leaks = 0 ] && ok "no authorization, cookie, proxy-authorization, x-api-key or set-cookie value, nor the token, in the store's bytes ($(cat "$WORK"/mesh.db* | wc -c) bytes)"
grep -qaF "/redact/1" "$WORK/mesh.db" && ok "(while the paths are there: the grep can see)" || bad "the paths are not in the file either: the grep proves nothing"
sanitizer_check "$WORK/collector.log"
finish
