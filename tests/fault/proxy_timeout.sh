#!/bin/bash
# mesh-proxy's --response-timeout (issue 9, "upstream never answers"): a
# request sent whole to an upstream that stays silent is answered 504 after
# the timeout (gRPC: DEADLINE_EXCEEDED, trailers-only), over HTTP/1.1, h2c and
# gRPC, the client connection stays usable, and the tap event says so. What
# must not be cut: a response whose head came and whose body is slow, and a
# request whose own body takes longer than the timeout (the clock starts when
# the request has been sent whole).
# Usage: proxy_timeout.sh BUILD_DIR SOURCE_DIR SHARED_DIR   (exit 77: skipped)
set -u
. "$(dirname "$0")/../tools/testlib.sh"
. "$(dirname "$0")/lib/faultlib.sh"
for tool in curl sqlite3; do command -v $tool > /dev/null || skip "$tool missing (scripts/deps.sh)"; done
[ -x "$PROXY" ] || { echo "FAIL $PROXY is not built"; echo "0 passed, 1 failed"; exit 1; }
"$PY" -c 'import grpc' 2> /dev/null || skip "python3-grpcio missing (scripts/deps.sh)"
start_collector
trap 'stop_proxies; stop_peers; kill $cpid 2> /dev/null; wait $cpid 2> /dev/null; rm -rf "$WORK"' EXIT

start_peer OK h1-ok || exit 1
start_peer OK2 h2-ok || exit 1
start_peer SILENT h1-silent || exit 1
start_peer SILENT2 h2-silent || exit 1
start_peer BIG h1-big || exit 1
start_peer BIG2 h2-big || exit 1
start_proxy px --outbound 127.0.0.1:0 --admin off --collector 127.0.0.1:$port \
    --namespace fault --deployment client --response-timeout 1s \
    --route "ok.local=127.0.0.1:$OK" --route "ok2.local=127.0.0.1:$OK2" \
    --route "silent.local=127.0.0.1:$SILENT" --route "silent2.local=127.0.0.1:$SILENT2" \
    --route "big.local=127.0.0.1:$BIG" --route "big2.local=127.0.0.1:$BIG2" || exit 1
U=http://127.0.0.1:$pout

# ---- silent upstream: 504 after the timeout -------------------------------------------------
# h1: the 504, then a second request on the same client connection
out=$(curl -s -m 5 -H 'Host: silent.local' -w '%{http_code} %{time_total}\n' -o /dev/null "$U/s1" \
    --next -s -m 5 -H 'Host: ok.local' -w '%{http_code} %{num_connects}\n' -o /dev/null "$U/after" 2>&1)
read -r c1 t1 c2 nc <<< "$(echo $out)"
if [ "$c1" = 504 ] && awk -v t="$t1" 'BEGIN { exit !(t >= 0.95 && t < 3) }' && [ "$c2" = 200 ] && [ "$nc" = 0 ]; then
    ok "h1 silent upstream: 504 after ${t1}s, then 200 on the same connection"
else
    bad "h1 silent upstream: '$out' (wanted 504 after ~1 s, then 200 with no new connection)"
fi
out=$(curl -s -m 5 --http2-prior-knowledge -H 'Host: silent2.local' -w '%{http_code} %{time_total}' -o /dev/null "$U/s2")
read -r c1 t1 <<< "$out"
[ "$c1" = 504 ] && awk -v t="$t1" 'BEGIN { exit !(t >= 0.95 && t < 3) }' &&
    ok "h2 silent upstream: 504 after ${t1}s" || bad "h2 silent upstream: '$out'"
out=$("$PY" - "$pout" <<'EOF'
import sys, time, grpc
ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[1], options=[("grpc.default_authority", "silent2.local")])
call = ch.unary_unary("/emojivoto.v1.EmojiService/ListAll")
t0 = time.monotonic()
try:
    call(b"", timeout=5)
    print("no error")
except grpc.RpcError as e:
    print(e.code().name, "%.2f" % (time.monotonic() - t0), e.details())
EOF
)
read -r code secs details <<< "$out"
[ "$code" = DEADLINE_EXCEEDED ] && [ "$details" = "no response within the response timeout" ] &&
    awk -v t="$secs" 'BEGIN { exit !(t >= 0.95 && t < 3) }' &&
    ok "gRPC silent upstream: $code after ${secs}s, '$details'" || bad "gRPC silent upstream: '$out'"

# ---- what the timeout must leave alone ----------------------------------------------------------
out=$(curl -s -m 2.5 --limit-rate 1M -o /dev/null -w '%{http_code} %{size_download}' -H 'Host: big.local' "$U/big"); rc=$?
read -r c1 n1 <<< "$out"
[ $rc = 28 ] && [ "$c1" = 200 ] && [ "$n1" -gt 0 ] &&
    ok "h1 response head in time, body still coming after the timeout: 200, $n1 bytes, client's own timeout" ||
    bad "h1 slow body: curl exit $rc, '$out'"
out=$("$PY" "$FAULTPEER" h2-get "$pout" big2.local /big2 2>&1)
case "$out" in
    "headers :status=200 data=61440 "*) ok "h2 response head in time, body stalled: not cut ($out)" ;;
    *) bad "h2 slow body: '$out'" ;;
esac
out=$("$PY" "$FAULTPEER" h2-post-slow "$pout" ok2.local /upload 1.6)
[ "$out" = "headers :status=200 data=3 end" ] &&
    ok "h2 request body slower than the timeout: answered 200 ($out)" || bad "h2 slow upload: '$out'"
# (the peer answers only once it has the whole body)
exec 3<> "/dev/tcp/127.0.0.1/$pout"
printf 'POST /upload-slow HTTP/1.1\r\nHost: ok.local\r\nContent-Length: 4\r\n\r\nab' >&3
sleep 1.6
printf 'cd' >&3
line=; IFS= read -r -t 3 line <&3
exec 3>&-
[ "${line%$'\r'}" = "HTTP/1.1 200 OK" ] && ok "h1 request body slower than the timeout: answered 200" ||
    bad "h1 slow upload: '$line'"
[ "$(curl -s -m 5 -H 'Host: ok.local' "$U/healthy")" = ok ] && ok "healthy upstream unaffected" || bad "healthy upstream failed"

# ---- the events ---------------------------------------------------------------------------------
kill -TERM $ppid; wait $ppid; prc=$?
PROXY_PIDS=()
[ $prc = 0 ] && ok "proxy drained and exited 0" || bad "proxy exit $prc: $(tail -3 "$WORK/px.log")"
sanitizer_check "$WORK/px.log"
q() { sqlite3 -readonly "file:$WORK/mesh.db" "$1" 2>&1; }
for _ in $(seq 50); do [ "$(q "select count(*) from events where path = '/healthy'")" = 1 ] && break; sleep 0.1; done
q "select authority, proto, status, grpc_status, error, count(*) from events group by 1, 2, 3, 4, 5" > "$WORK/events.txt"
cat "$WORK/events.txt"
has() {
    local n; n=$(q "select count(*) from events where $2")
    [ "$n" = "$1" ] && ok "events: $3" || bad "events: $3: $n, wanted $1 (where $2)"
}
has 1 "authority = 'silent.local' and status = 504 and error = 'no response within the response timeout'" "h1: 504 + the reason"
has 1 "authority = 'silent2.local' and proto = 'h2' and status = 504 and error = 'no response within the response timeout'" "h2: 504 + the reason"
has 1 "authority = 'silent2.local' and proto = 'grpc' and grpc_status = 4" "gRPC: grpc_status 4 (DEADLINE_EXCEEDED)"
has 0 "authority in ('big.local', 'big2.local', 'ok.local', 'ok2.local') and status = 504" "no 504 where the head came in time or the upload was slow"
finish
