#!/bin/bash
# TLS for the collector (issue 9, "Access"): `mesh collector --tls-cert
# --tls-key` speaks gRPC over TLS (ALPN h2) instead of h2c, here with a bearer
# token as well, on 0.0.0.0. Python grpcio with ssl_channel_credentials (the
# test's self-signed CA) and the token calls it; mesh replay, mesh stat, mesh tap
# (Watch) and mesh-proxy reach it with --tls-ca / MESH_TLS_CA; a cleartext client, a
# client trusting another CA and a client without the token are refused; the
# tokens and header values never show in the store. And the web dashboard
# with --tls-cert/--tls-key: HTTPS only, itself a TLS client of the collector.
# Usage: collector_tls.sh BUILD_DIR SOURCE_DIR SHARED_DIR   (exit 77: skipped)
set -u
. "$(dirname "$0")/../tools/testlib.sh"
. "$(dirname "$0")/lib/faultlib.sh"
need_corpus
for tool in openssl curl sqlite3 protoc; do command -v $tool > /dev/null || skip "$tool missing (scripts/deps.sh)"; done
/usr/bin/python3 -c 'import grpc, google.protobuf' 2> /dev/null || skip "python3-grpcio or python3-protobuf missing"
cpid=
trap 'stop_proxies; stop_peers; kill $cpid 2> /dev/null; wait $cpid 2> /dev/null; rm -rf "$WORK"' EXIT
cert() { # NAME: a self-signed certificate for 127.0.0.1 in WORK/NAME.{pem,key}
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -keyout "$WORK/$1.key" -out "$WORK/$1.pem" -subj "/CN=mesh-$1" \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2> /dev/null
}
cert server && cert other || { bad "openssl cannot make certificates"; finish; exit; }
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/token"
port=$(free_port)
"$MESH" collector --listen 0.0.0.0:$port --db "$WORK/mesh.db" --token-file "$WORK/token" \
    --tls-cert "$WORK/server.pem" --tls-key "$WORK/server.key" 2> "$WORK/collector.log" &
cpid=$!
wait_port $port || exit 1
grep -q "(gRPC, TLS, bearer token required)" "$WORK/collector.log" && ok "collector: $(head -1 "$WORK/collector.log")" ||
    bad "collector: $(cat "$WORK/collector.log")"
"$MESH" collector --listen 127.0.0.1:0 --db "$WORK/x.db" --tls-cert "$WORK/server.pem" 2> "$WORK/half.log"; rc=$?
[ $rc = 2 ] && ok "--tls-cert without --tls-key: exit 2" || bad "--tls-cert alone: exit $rc"
"$MESH" collector --listen 127.0.0.1:0 --db "$WORK/x.db" --tls-cert "$WORK/server.pem" --tls-key "$WORK/other.key" 2> "$WORK/mismatch.log"; rc=$?
[ $rc = 2 ] && ok "a key that does not match: exit 2, $(cat "$WORK/mismatch.log")" || bad "mismatched key: exit $rc $(cat "$WORK/mismatch.log")"

# grpcio over TLS
mkdir -p "$WORK/py"
protoc --python_out="$WORK/py" -I"$SRC/proto" "$SRC/proto/mesh/tap/v1/tap.proto"
cat > "$WORK/tls.py" << 'EOF'
import sys, time, grpc
sys.path.insert(0, sys.argv[2])
from mesh.tap.v1 import tap_pb2 as pb
addr, token = sys.argv[1], open(sys.argv[3]).read().strip()
def call(ca, md):
    creds = grpc.ssl_channel_credentials(root_certificates=open(ca, "rb").read())
    ch = grpc.secure_channel(addr, creds)
    stat = ch.unary_unary("/mesh.tap.v1.Query/Stat", request_serializer=pb.StatRequest.SerializeToString,
                          response_deserializer=pb.StatResponse.FromString)
    report = ch.stream_stream("/mesh.tap.v1.Collector/Report", request_serializer=pb.ReportRequest.SerializeToString,
                              response_deserializer=pb.ReportAck.FromString)
    ev = pb.TapEvent(ts=int(time.time() * 1e6), proxy_direction=pb.INBOUND, proto="grpc", method="POST", path="/py.tls")
    try:
        acks = list(report(iter([pb.ReportRequest(sender_id="py-tls", seq=1, events=[ev])]), metadata=md, timeout=5))
        stat(pb.StatRequest(resources=[pb.Resource(type="deploy")]), metadata=md, timeout=5)
        return "OK %d" % acks[0].stored
    except grpc.RpcError as e:
        return e.code().name
print("right", call(sys.argv[4], [("authorization", "Bearer " + token)]))
print("notoken", call(sys.argv[4], None))
print("otherca", call(sys.argv[5], [("authorization", "Bearer " + token)]))
EOF
/usr/bin/python3 "$WORK/tls.py" 127.0.0.1:$port "$WORK/py" "$WORK/token" "$WORK/server.pem" "$WORK/other.pem" > "$WORK/tls.out" 2>&1
cat "$WORK/tls.out"
grep -q "^right OK 1$" "$WORK/tls.out" && ok "grpcio over TLS with the token: Report stored, Stat OK" || bad "grpcio TLS: $(cat "$WORK/tls.out")"
grep -q "^notoken UNAUTHENTICATED$" "$WORK/tls.out" && ok "grpcio over TLS without the token: UNAUTHENTICATED" || bad "grpcio no token: $(grep notoken "$WORK/tls.out")"
grep -q "^otherca UNAVAILABLE$" "$WORK/tls.out" && ok "grpcio trusting another CA: UNAVAILABLE (handshake refused)" || bad "grpcio other CA: $(grep otherca "$WORK/tls.out")"

# mesh's own clients
pcap=$SHARED/corpus/emojivoto/grpc.pcap
export MESH_TOKEN_FILE=$WORK/token
"$MESH" replay -q "$pcap" --collector 127.0.0.1:$port --tls-ca "$WORK/server.pem" > /dev/null 2> "$WORK/replay.log" &&
    ok "mesh replay --tls-ca: 300 events acknowledged" || bad "replay over TLS: $(cat "$WORK/replay.log")"
timeout 30 "$MESH" stat deploy -A --collector 127.0.0.1:$port > "$WORK/plain.out" 2>&1; rc=$?
[ $rc = 1 ] && ok "mesh stat in cleartext against TLS: exit 1, $(head -1 "$WORK/plain.out")" || bad "cleartext stat: exit $rc $(cat "$WORK/plain.out")"
MESH_TLS_CA=$WORK/other.pem timeout 30 "$MESH" stat deploy -A --collector 127.0.0.1:$port > "$WORK/other.out" 2>&1; rc=$?
[ $rc = 1 ] && grep -q "certificate verify failed" "$WORK/other.out" && ok "mesh stat trusting another CA: exit 1, $(head -1 "$WORK/other.out")" ||
    bad "other CA stat: exit $rc $(cat "$WORK/other.out")"
MESH_TLS_CA=$WORK/server.pem "$MESH" stat deploy -A --collector 127.0.0.1:$port > "$WORK/stat.out" 2>&1 &&
    ok "mesh stat with MESH_TLS_CA: exit 0" || bad "stat over TLS: $(cat "$WORK/stat.out")"
# Watch (a server stream) over TLS: mesh tap sees a replay's events live
MESH_TLS_CA=$WORK/server.pem timeout 4 "$MESH" tap ns -A --collector 127.0.0.1:$port -o json > "$WORK/tap.out" 2>&1 &
tpid=$!
sleep 1
"$MESH" replay -q "$pcap" --labels "$SRC/tests/data/emojivoto.labels" --collector 127.0.0.1:$port --tls-ca "$WORK/server.pem" > /dev/null 2>&1
wait $tpid
n=$(grep -c '"proxy_direction":"replay"' "$WORK/tap.out")
[ "$n" = 300 ] && ok "mesh tap (Watch) over TLS: 300 events live" || bad "tap over TLS: $n events: $(head -3 "$WORK/tap.out")"
start_peer OK h1-ok || exit 1
MESH_TLS_CA=$WORK/server.pem start_proxy px --outbound 127.0.0.1:0 --admin off --route "*=127.0.0.1:$OK" \
    --collector 127.0.0.1:$port --namespace tls --deployment client || exit 1
for i in $(seq 20); do curl -s -o /dev/null -H "Cookie: c=secret-cookie-$i" "http://127.0.0.1:$pout/tls/$i"; done
kill -TERM $ppid; wait $ppid; prc=$?
PROXY_PIDS=()
grep -q "tap events: 20 acknowledged, 0 dropped" "$WORK/px.log" && [ $prc = 0 ] &&
    ok "mesh-proxy with MESH_TLS_CA: 20 events acknowledged over TLS" || bad "proxy over TLS: exit $prc $(tail -2 "$WORK/px.log")"
# the web dashboard over HTTPS, itself a client of the TLS collector
dport=$(free_port)
MESH_TLS_CA=$WORK/server.pem "$MESH" dashboard --port $dport --collector 127.0.0.1:$port \
    --tls-cert "$WORK/server.pem" --tls-key "$WORK/server.key" > "$WORK/dash.out" 2> "$WORK/dash.log" &
dpid=$!
wait_port $dport || exit 1
grep -q "https://127.0.0.1:$dport/" "$WORK/dash.out" && ok "dashboard: $(head -1 "$WORK/dash.out")" || bad "dashboard: $(cat "$WORK/dash.out" "$WORK/dash.log")"
code=$(curl -s -o "$WORK/index.html" -w '%{http_code}' --cacert "$WORK/server.pem" "https://127.0.0.1:$dport/")
[ "$code" = 200 ] && [ -s "$WORK/index.html" ] && ok "dashboard page over HTTPS: 200, $(wc -c < "$WORK/index.html") bytes" || bad "dashboard HTTPS: $code"
live=$(curl -s --max-time 10 --cacert "$WORK/server.pem" "https://127.0.0.1:$dport/api/live?max=1")
case "$live" in *"data:"*|"{"*) ok "dashboard /api/live over HTTPS, from the TLS collector: $(head -c 80 <<< "$live")" ;;
    *) bad "dashboard live: '$(head -c 200 <<< "$live")' $(tail -2 "$WORK/dash.log")" ;; esac
curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$dport/"; rc=$?
[ $rc != 0 ] && ok "dashboard in plain HTTP: refused (curl exit $rc)" || bad "dashboard answered plain HTTP"
curl -s -o /dev/null --max-time 5 --cacert "$WORK/other.pem" "https://127.0.0.1:$dport/"; rc=$?
[ $rc = 60 ] && ok "dashboard to a client trusting another CA: certificate refused (curl 60)" || bad "other CA curl: exit $rc"
kill -TERM $dpid; wait $dpid
sanitizer_check "$WORK/dash.log"
kill -TERM $cpid; wait $cpid; cpid=
n=$(sqlite3 -readonly "file:$WORK/mesh.db" "select count(*) from events where src_deploy = 'client' and path like '/tls/%'")
[ "$n" = 20 ] && ok "the proxy's 20 events are stored" || bad "stored from the proxy: $n"
! grep -qaF -e "secret-cookie" -e "$(cat "$WORK/token")" "$WORK"/mesh.db* && ok "no cookie value or token in the store" || bad "a secret is in the store"
sanitizer_check "$WORK/collector.log"
sanitizer_check "$WORK/px.log"
finish
