#!/bin/bash
# mesh-proxy when the other side misbehaves (issue 9, "Faults"): an upstream
# that resets mid-response (HTTP/1: TCP RST; h2: RST_STREAM), one that never
# answers (mesh-proxy has no response timeout: the client's own timeout ends
# the request and the proxy must free it), and clients that leave mid-request
# and mid-response, over HTTP/1.1 and h2c. Each time: the client sees a
# broken response or a reset (not a clean one), the tap event says what broke,
# requests to a healthy upstream in between are unaffected, and afterwards the
# proxy holds no more descriptors and no more memory than before.
# Usage: proxy_upstream.sh BUILD_DIR SOURCE_DIR SHARED_DIR   (exit 77: skipped)
set -u
. "$(dirname "$0")/../tools/testlib.sh"
. "$(dirname "$0")/lib/faultlib.sh"
for tool in curl sqlite3; do command -v $tool > /dev/null || skip "$tool missing (scripts/deps.sh)"; done
[ -x "$PROXY" ] || { echo "FAIL $PROXY is not built"; echo "0 passed, 1 failed"; exit 1; }
N=${FAULT_ROUNDS:-200} # aborted requests of each kind
start_collector
trap 'stop_proxies; stop_peers; kill $cpid 2> /dev/null; wait $cpid 2> /dev/null; rm -rf "$WORK"' EXIT

start_peer OK h1-ok || exit 1
start_peer OK2 h2-ok || exit 1
start_peer RESET h1-reset-mid || exit 1
start_peer SILENT h1-silent || exit 1
start_peer BIG h1-big || exit 1
start_peer RESET2 h2-reset-mid || exit 1
start_peer SILENT2 h2-silent || exit 1
start_peer BIG2 h2-big || exit 1
start_proxy px --outbound 127.0.0.1:0 --admin off --collector 127.0.0.1:$port \
    --namespace fault --deployment client \
    --idle-timeout 2s --route "ok.local=127.0.0.1:$OK" --route "ok2.local=127.0.0.1:$OK2" --route "reset.local=127.0.0.1:$RESET" \
    --route "silent.local=127.0.0.1:$SILENT" --route "big.local=127.0.0.1:$BIG" \
    --route "reset2.local=127.0.0.1:$RESET2" --route "silent2.local=127.0.0.1:$SILENT2" \
    --route "big2.local=127.0.0.1:$BIG2" || exit 1
U=http://127.0.0.1:$pout
healthy() { # requests to the healthy upstreams, in between: 200 "ok" over h1 and h2
    [ "$(curl -s -m 5 -H 'Host: ok.local' "$U/healthy")" = ok ] &&
        [ "$(curl -s -m 5 --http2-prior-knowledge -H 'Host: ok2.local' "$U/healthy")" = ok ]
}

# warm up (pooled upstream connections, allocator arenas), then the baseline
for _ in $(seq 50); do curl -s -o /dev/null -H 'Host: ok.local' "$U/warm"; done
fd0=$(settle_fds $ppid 0) rss0=$(rss $ppid)
echo "baseline: $fd0 fds, $rss0 kB"

# ---- upstream resets mid-response ------------------------------------------------------------
out=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H 'Host: reset.local' "$U/r1"); rc=$?
case "$rc $out" in
    "18 200 "*|"56 200 "*) ok "h1 upstream RST mid-response: client gets 200 and a broken body (curl exit $rc, $out bytes)" ;;
    *) bad "h1 upstream RST mid-response: curl exit $rc, '$out'" ;;
esac
out=$("$PY" "$FAULTPEER" h2-get "$pout" reset2.local /r2)
# (when HEADERS, DATA and RST_STREAM arrive in one read, the reset may
# overtake the response head on its way out: a reset is what matters)
case "$out" in
    *"data="*" rst=2") ok "h2 upstream RST_STREAM mid-response: client sees '$out'" ;;
    *) bad "h2 upstream RST_STREAM mid-response: '$out'" ;;
esac
healthy && ok "healthy upstream unaffected" || bad "healthy upstream failed after resets"

# ---- upstream never answers: the client gives up ----------------------------------------------
t0=$(date +%s.%N)
curl -s -o /dev/null -m 1 -H 'Host: silent.local' "$U/s1"; rc1=$?
curl -s -o /dev/null -m 1 --http2-prior-knowledge -H 'Host: silent2.local' "$U/s2"; rc2=$?
[ $rc1 = 28 ] && [ $rc2 = 28 ] && ok "silent upstream: h1 and h2 clients time out on their own (curl 28)" ||
    bad "silent upstream: curl exits $rc1 / $rc2"
# many at once, left behind by their clients
for i in $(seq 50); do curl -s -o /dev/null -m 1 -H 'Host: silent.local' "$U/s1-$i" & done
for i in $(seq 50); do curl -s -o /dev/null -m 1 --http2-prior-knowledge -H 'Host: silent2.local' "$U/s2-$i" & done
wait_curls() { for j in $(jobs -p); do case " ${PEER_PIDS[*]} ${PROXY_PIDS[*]} $cpid " in *" $j "*) ;; *) wait "$j" ;; esac; done; }
wait_curls
healthy && ok "healthy upstream unaffected" || bad "healthy upstream failed after silent ones"

# ---- clients leave mid-request and mid-response -------------------------------------------------
# Two passes: the first sets the allocator's high-water mark (buffers sized by
# the largest transfer in flight), the second must not add to it.
abort_pass() {
    for kind in h1-abort-req:silent.local h1-abort-rsp:big.local h2-abort-req:silent2.local h2-abort-rsp:big2.local; do
        out=$("$PY" "$FAULTPEER" "${kind%%:*}" "$pout" "${kind#*:}" "$N")
        [ "$out" = "$N done" ] && ok "${kind%%:*}: $N clients left early (pass $1)" || bad "${kind%%:*}: $out"
    done
    healthy && ok "healthy upstream unaffected" || bad "healthy upstream failed after client aborts"
}
abort_pass 1
# the aborted requests' upstream connections go with them (HTTP/1 requests
# whose client closed while the upstream stayed silent: after --idle-timeout);
# pooled ones to ok.local stay
sleep 2
fd1=$(settle_fds $ppid "$fd0") rss1=$(rss $ppid)
echo "after pass 1: $fd1 fds, $rss1 kB"
abort_pass 2
fd2=$(settle_fds $ppid "$fd0") rss2=$(rss $ppid)
echo "after pass 2: $fd2 fds, $rss2 kB"
[ "$fd1" -le "$fd0" ] && [ "$fd2" -le "$fd0" ] && ok "fds: $fd0 before, $fd1 / $fd2 after each pass" ||
    bad "fd leak: $fd0 before, $fd1 / $fd2 after: $(ls -l /proc/$ppid/fd | tail -5)"
grow=$((rss2 - rss1))
rss_ok $grow 512 && ok "RSS: $rss0 kB before, $rss1 kB after pass 1, $rss2 kB after pass 2 ($grow kB)" ||
    bad "RSS grew $grow kB in pass 2 ($rss0 → $rss1 → $rss2)"
figure proxy_upstream aborted=$((8 * N + 102)) fds=$fd0/$fd1/$fd2 rss_kb=$rss0/$rss1/$rss2

# ---- what the events say --------------------------------------------------------------------------
kill -TERM $ppid; wait $ppid; prc=$?
PROXY_PIDS=()
[ $prc = 0 ] && ok "proxy drained and exited 0" || bad "proxy exit $prc: $(tail -3 "$WORK/px.log")"
sanitizer_check "$WORK/px.log"
q() { sqlite3 -readonly "file:$WORK/mesh.db" "$1" 2>&1; }
for _ in $(seq 50); do [ "$(q "select count(*) from events where authority = 'big2.local'")" -ge "$N" ] && break; sleep 0.1; done
q "select authority, proto, status, reset, error, count(*) from events group by 1, 2, 3, 4, 5" > "$WORK/events.txt"
cat "$WORK/events.txt"
# has COUNT WHERE WHAT: COUNT events match the SQL condition WHERE
has() {
    local n; n=$(q "select count(*) from events where $2")
    [ "$n" = "$1" ] && ok "events: $3" || bad "events: $3: $n, wanted $1 (where $2)"
}
has 1 "authority = 'reset.local' and status = 200 and error = 'upstream connection reset mid-response'" \
    "h1 upstream RST: 200 + 'upstream connection reset mid-response'"
has 1 "authority = 'reset2.local' and reset = 2" "h2 upstream RST_STREAM: reset 2 (INTERNAL_ERROR)"
has 51 "authority = 'silent.local' and status is null and error like 'client closed the connection; no response%'" \
    "h1 silent upstream, client gone: 51 ended by the idle timeout, no status"
has 51 "authority = 'silent2.local' and status is null and (reset is not null or error is not null) and path like '/s2%'" \
    "h2 silent upstream, client gone: 51 with the client's reset/close"
has $((2 * N)) "authority = 'silent.local' and status = 400 and error = 'client closed the connection mid-request'" \
    "h1 client left mid-request: $((2 * N)) × 400 'client closed the connection mid-request'"
has $((2 * N)) "authority = 'big.local' and status = 200 and error like 'downstream connection %'" \
    "h1 client left mid-response: $((2 * N)) × 200 + 'downstream connection reset/closed'"
has $((2 * N)) "authority = 'silent2.local' and path = '/upload' and (reset is not null or error is not null)" \
    "h2 client left mid-request: $((2 * N)) with a reset/error"
has $((2 * N)) "authority = 'big2.local' and status = 200 and (reset is not null or error is not null)" \
    "h2 client left mid-response: $((2 * N)) × 200 + reset/error"
has 0 "authority like 'ok%' and status <> 200" "healthy requests all 200"
bad_ok=$(q "select count(*) from events where authority not like 'ok%' and failed = 0")
[ "$bad_ok" = 0 ] && ok "every broken exchange is classified failed" || bad "$bad_ok broken exchanges classified as success"
finish
