#!/bin/bash
# Slowloris on both listeners (issue 9, "Load"): N connections to the
# outbound and N to the inbound listener say enough to be recognised (HTTP/1:
# the request line; h2: the client preface) and then trickle a request head
# one byte a second. mesh-proxy closes every one of them at --header-timeout
# (HTTP/1: 408, h2: GOAWAY), while legitimate requests on both listeners are
# answered throughout; afterwards its fds are back where they were.
# N more on each listener trickle from the first byte on (h1: the request
# line; h2: the preface): closed at --detect-timeout (1 s), h1 with a 408.
# Usage: proxy_slowloris.sh BUILD_DIR SOURCE_DIR SHARED_DIR   (exit 77: skipped)
set -u
. "$(dirname "$0")/../tools/testlib.sh"
. "$(dirname "$0")/../fault/lib/faultlib.sh"
command -v curl > /dev/null || skip "curl missing"
N=${LOAD_SLOW_CONNS:-500}
ulimit -n $((8 * N + 1000)) 2> /dev/null || true
waitfor=()
trap 'stop_proxies; stop_peers; kill "${waitfor[@]}" 2> /dev/null; rm -rf "$WORK"' EXIT
start_peer OK h1-ok || exit 1
start_proxy px --outbound 127.0.0.1:0 --inbound 127.0.0.1:0 --inbound-to 127.0.0.1:$OK --admin off \
    --route "*=127.0.0.1:$OK" --header-timeout 3s || exit 1
# warm-up: one request per listener pools one upstream connection each
curl -s -o /dev/null "http://127.0.0.1:$pout/warm"; curl -s -o /dev/null "http://127.0.0.1:$pin/warm"
fd0=$(fds $ppid)
legit() { # PORT: one request a 0.2 s for 10 s; prints "answered of sent"
    local sent=0 good=0
    for _ in $(seq 50); do
        sent=$((sent + 1))
        [ "$(curl -s -m 2 "http://127.0.0.1:$1/legit")" = ok ] && good=$((good + 1))
        sleep 0.2
    done
    echo "$good of $sent"
}
waitfor=()
for l in out:$pout in:$pin; do
    for proto in h1 h2 h1-first h2-first; do
        "$PY" "$FAULTPEER" slowloris "${l#*:}" "$N" 10 $proto > "$WORK/slow-${l%%:*}-$proto.out" 2>&1 &
        waitfor+=($!)
    done
done
sleep 1
fdmax=$(fds $ppid)
legit $pout > "$WORK/legit-out.txt" &
waitfor+=($!)
legit $pin > "$WORK/legit-in.txt" &
waitfor+=($!)
wait "${waitfor[@]}"
for l in out in; do
    for proto in h1 h2 h1-first h2-first; do
        r=$(cat "$WORK/slow-$l-$proto.out")
        # closed within [timeout, timeout + 1.5 s]: 3.0–4.5 s after connecting
        # (header timeout), 1.0–2.5 s (detect timeout)
        lo=2.9 hi=4.5
        case $proto in *-first) lo=0.9 hi=2.5 ;; esac
        if [[ $r =~ ^$N\ of\ $N\ closed,\ after\ ([0-9.]+)-([0-9.]+)\ s,\ 0\ open$ ]] &&
            awk -v a="${BASH_REMATCH[1]}" -v b="${BASH_REMATCH[2]}" -v lo=$lo -v hi=$hi 'BEGIN { exit !(a >= lo && b <= hi) }'; then
            ok "${l}bound $proto slowloris: $r"
        else
            bad "${l}bound $proto slowloris: $r"
        fi
    done
    r=$(cat "$WORK/legit-$l.txt")
    [ "$r" = "50 of 50" ] && ok "${l}bound legitimate requests meanwhile: $r answered" || bad "${l}bound legitimate: $r"
done
fd1=$(settle_fds $ppid "$fd0")
[ "$fd1" -le "$fd0" ] && ok "fds: $fd0 before, $fdmax under attack, $fd1 after" || bad "fds: $fd0 before, $fd1 after"
figure proxy_slowloris conns=$((8 * N)) header_timeout=3s fds=$fd0/$fdmax/$fd1 legit="$(cat "$WORK/legit-out.txt") + $(cat "$WORK/legit-in.txt")"
kill -TERM $ppid; wait $ppid
PROXY_PIDS=()
sanitizer_check "$WORK/px.log"
finish
