#!/bin/bash
# mesh-proxy when its collector is slow or gone (issue 9, "Faults"). The
# collector-down-then-back case, with delivery of what was kept, is
# tests/integration/proxy_tap.sh; here: (1) a "collector" that accepts and
# never reads (a stuck process, a full disk behind it): requests are not
# slowed or failed, events past the bounded queue are dropped and counted,
# and memory and descriptors stay flat however many requests pass; (2) the
# collector goes away (connection refused on every reconnect): the same,
# and reconnect attempts leak no sockets.
# Usage: proxy_collector.sh BUILD_DIR SOURCE_DIR SHARED_DIR   (exit 77: skipped)
set -u
. "$(dirname "$0")/../tools/testlib.sh"
. "$(dirname "$0")/lib/faultlib.sh"
for tool in h2load curl; do command -v $tool > /dev/null || skip "$tool missing (scripts/deps.sh)"; done
[ -x "$PROXY" ] || { echo "FAIL $PROXY is not built"; echo "0 passed, 1 failed"; exit 1; }
trap 'stop_proxies; stop_peers; rm -rf "$WORK"' EXIT
N=${FAULT_REQUESTS:-20000}

start_peer OK h1-ok || exit 1
start_peer SINK sink || exit 1
aport=$(free_port)
start_proxy px --outbound 127.0.0.1:0 --admin 127.0.0.1:$aport --route "*=127.0.0.1:$OK" \
    --collector 127.0.0.1:$SINK --tap-queue 4 --namespace fault --deployment client || exit 1
metric() { curl -s "http://127.0.0.1:$aport/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $NF } END { printf "%d\n", s }'; }
load() { # h2load --h1 N requests; prints "succeeded failed"
    h2load --h1 -n "$1" -c 8 "http://127.0.0.1:$pout/x" 2>&1 |
        sed -n 's/^requests: .* \([0-9]*\) succeeded, \([0-9]*\) failed.*/\1 \2/p'
}

# ---- a collector that never reads ---------------------------------------------------------------
read -r s f <<< "$(load 10000)" # warm-up: the bounded queue (4 batches of 1000 + one filling) and the socket buffers fill up
fd0=$(fds $ppid) rss0=$(rss $ppid)
t0=$(date +%s%N)
read -r s1 f1 <<< "$(load "$N")"
t1=$(date +%s%N)
fd1=$(fds $ppid) rss1=$(rss $ppid)
read -r s2 f2 <<< "$(load "$N")"
fd2=$(fds $ppid) rss2=$(rss $ppid)
[ "$s1" = "$N" ] && [ "$s2" = "$N" ] && ok "stuck collector: 2 × $N requests succeeded ($f1 + $f2 failed), $(( N * 1000000000 / (t1 - t0 + 1) )) req/s" ||
    bad "stuck collector: succeeded $s1 / $s2 of $N"
dropped=$(metric tap_events_dropped_total) sent=$(metric tap_events_sent_total) total=$((10000 + 2 * N))
[ "$dropped" -gt $((total - 10000)) ] && ok "events dropped and counted: $dropped of $total (tap_events_dropped_total)" ||
    bad "tap_events_dropped_total = $dropped of $total"
[ "$fd2" -le "$fd0" ] && ok "fds flat: $fd0 → $fd1 → $fd2" || bad "fds grew: $fd0 → $fd1 → $fd2"
rss_ok $((rss2 - rss0)) 512 && ok "RSS flat: $rss0 → $rss1 → $rss2 kB" || bad "RSS grew: $rss0 → $rss1 → $rss2 kB"
figure proxy_collector_stuck requests=$((2 * N)) failed=$((f1 + f2)) events_dropped=$dropped sent=$sent fds=$fd0/$fd2 rss_kb=$rss0/$rss2

# ---- the collector goes away: every reconnect is refused ---------------------------------------------
stop_peers
start_peer OK h1-ok || exit 1 # stop_peers took the backend too
start_proxy px2 --outbound 127.0.0.1:0 --admin 127.0.0.1:0 --route "*=127.0.0.1:$OK" \
    --collector 127.0.0.1:$SINK --tap-queue 4 || exit 1
read -r s f <<< "$(load 10000)"
fd0=$(fds $ppid) rss0=$(rss $ppid)
for round in 1 2 3; do
    read -r s f <<< "$(load "$N")"
    [ "$s" = "$N" ] || bad "collector gone, round $round: $s of $N succeeded"
    sleep 1 # reconnect attempts meanwhile (backoff)
done
fd1=$(fds $ppid) rss1=$(rss $ppid)
[ "$s" = "$N" ] && ok "collector gone: 3 × $N requests succeeded"
[ "$fd1" -le "$fd0" ] && ok "fds flat while reconnecting: $fd0 → $fd1" || bad "fds grew while reconnecting: $fd0 → $fd1"
rss_ok $((rss1 - rss0)) 512 && ok "RSS flat: $rss0 → $rss1 kB" || bad "RSS grew: $rss0 → $rss1 kB"
figure proxy_collector_gone requests=$((3 * N)) fds=$fd0/$fd1 rss_kb=$rss0/$rss1
grep -q "^mesh-proxy: tap" "$WORK/px2.log"
for p in "${PROXY_PIDS[@]}"; do kill -TERM "$p"; done
for p in "${PROXY_PIDS[@]}"; do wait "$p"; done
PROXY_PIDS=()
sanitizer_check "$WORK/px.log"
sanitizer_check "$WORK/px2.log"
finish
