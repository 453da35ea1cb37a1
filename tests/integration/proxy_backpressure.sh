#!/bin/bash
# mesh-proxy's flow control end to end (issue 4, "flow control that applies
# backpressure end to end"): a client that stops reading a large download, or
# an upstream that stops taking an upload, holds the other side back instead
# of filling the proxy's memory; when the reader comes back, every byte
# arrives intact. Over HTTP/1.1 (socket buffers, the proxy's soft caps) and
# h2c (the stream and connection windows on both sessions).
# Usage: proxy_backpressure.sh BUILD_DIR SOURCE_DIR SHARED_DIR   (exit 77: skipped)
set -u
. "$(dirname "$0")/../tools/testlib.sh"
. "$(dirname "$0")/../fault/lib/faultlib.sh"
command -v nghttpd > /dev/null || skip "nghttpd missing (scripts/deps.sh: nghttp2-server)"
[ -x "$PROXY" ] || { echo "FAIL $PROXY is not built"; echo "0 passed, 1 failed"; exit 1; }
trap 'stop_proxies; stop_peers; kill $NGPID 2> /dev/null; wait $NGPID 2> /dev/null; rm -rf "$WORK"' EXIT
NGPID=
BIG=$((64 << 20))

# upstreams: h1-big (64 MiB of "y"), nghttpd with a 256 MiB file, and two
# that take nothing: a TCP sink (h1) and an h2 server that never opens a window
start_peer H1BIG h1-big || exit 1
start_peer SINK sink || exit 1
start_peer H2STUCK h2-silent || exit 1
mkdir -p "$WORK/www"
head -c $BIG /dev/urandom > "$WORK/www/big.bin"
BIG_SHA=$(sha256sum < "$WORK/www/big.bin" | cut -d' ' -f1)
Y_SHA=$(head -c $((64 << 20)) /dev/zero | tr '\0' y | sha256sum | cut -d' ' -f1)
NG=$(free_port)
nghttpd --no-tls -d "$WORK/www" "$NG" > "$WORK/nghttpd.log" 2>&1 &
NGPID=$!
wait_port "$NG" || exit 1
start_proxy px --outbound 127.0.0.1:0 --admin off \
    --route "big.h1=127.0.0.1:$H1BIG" --route "big.h2=127.0.0.1:$NG" \
    --route "sink.h1=127.0.0.1:$SINK" --route "stuck.h2=127.0.0.1:$H2STUCK" || exit 1
rss0=$(rss $ppid)
echo "proxy RSS before: $rss0 kB"

# pause_test PROTO HOST PATH SIZE SHA: download, reader away for 3 s
pause_test() {
    local out="$WORK/pause-$1.out" max=0 r
    "$PY" "$FAULTPEER" "$1-pause-get" "$pout" "$2" "$3" 3 > "$out" 2>&1 &
    local cpid_=$!
    for _ in $(seq 100); do grep -q stalled "$out" && break; sleep 0.05; done
    sleep 1.5 # the upstream keeps sending while it may
    for _ in 1 2 3 4 5; do r=$(rss $ppid); [ "$r" -gt $max ] && max=$r; sleep 0.2; done
    wait $cpid_
    local grow=$((max - rss0))
    grep -qx "bytes=$4 sha256=$5" "$out" &&
        ok "$1 download of $(($4 >> 20)) MiB, reader away 3 s: every byte arrives, sha256 matches ($(head -1 "$out"))" ||
        bad "$1 download after the pause: $(cat "$out")"
    rss_ok $grow 16384 && ok "$1 download: proxy RSS grew $grow kB while the reader was away (cap 16 MiB)" ||
        bad "$1 download: proxy RSS grew $grow kB ($rss0 → $max) while the reader was away"
}
pause_test h1 big.h1 /big $((64 << 20)) "$Y_SHA"
pause_test h2 big.h2 /big.bin $BIG "$BIG_SHA"

# uploads to upstreams that take nothing, pushed for 3 s
out=$("$PY" "$FAULTPEER" h1-push-post "$pout" sink.h1 /up 3)
r=$(rss $ppid)
sent=${out#sent=}
[ "$sent" -lt $((32 << 20)) ] &&
    ok "h1 upload to an upstream that reads nothing: the client is held back after $((sent >> 10)) KiB (socket buffers and the proxy's 256 KiB)" ||
    bad "h1 upload: '$out'"
rss_ok $((r - rss0)) 16384 && ok "h1 upload: proxy RSS grew $((r - rss0)) kB" || bad "h1 upload: RSS $rss0 → $r kB"
out=$("$PY" "$FAULTPEER" h2-push-post "$pout" stuck.h2 /up 3)
r=$(rss $ppid)
if [[ $out =~ ^granted=([0-9]+)\ sent=([0-9]+)$ ]] && [ "${BASH_REMATCH[2]}" -le $((1 << 20)) ] &&
    [ "${BASH_REMATCH[2]}" -gt 0 ]; then
    ok "h2 upload to an upstream that opens no window: the client may send ${BASH_REMATCH[2]} bytes, no more ($out)"
else
    bad "h2 upload: '$out' (wanted at most 1 MiB sent)"
fi
rss_ok $((r - rss0)) 16384 && ok "h2 upload: proxy RSS grew $((r - rss0)) kB" || bad "h2 upload: RSS $rss0 → $r kB"

kill -TERM $ppid; wait $ppid
PROXY_PIDS=()
sanitizer_check "$WORK/px.log"
finish
