# tests/fault/lib/faultlib.sh — sourced by tests/fault/*.sh and tests/load/*.sh
# after tests/tools/testlib.sh: process figures (fds, RSS) and the fault peers.
FAULTPEER=$SRC/tests/fault/faultpeer.py
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
PEER_PIDS=()
# fds PID / rss PID: open descriptors and VmRSS (kB) of a process
fds() { ls "/proc/$1/fd" 2> /dev/null | wc -l; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2> /dev/null; }
# settle_fds PID MAX: waits (5 s at most) until PID has at most MAX fds; prints the count
settle_fds() {
    local n
    for _ in $(seq 100); do
        n=$(fds "$1")
        [ "$n" -le "$2" ] && break
        sleep 0.05
    done
    echo "$n"
}
# start_peer VAR MODE: faultpeer.py serve MODE; its port into VAR
start_peer() {
    local var=$1 mode=$2 port
    "$PY" "$FAULTPEER" serve "$mode" > "$WORK/peer-$mode.port" 2> "$WORK/peer-$mode.log" &
    PEER_PIDS+=($!)
    for _ in $(seq 100); do [ -s "$WORK/peer-$mode.port" ] && break; sleep 0.05; done
    port=$(head -n1 "$WORK/peer-$mode.port")
    [ -n "$port" ] || { echo "FAIL peer $mode did not start: $(cat "$WORK/peer-$mode.log")"; return 1; }
    printf -v "$var" %s "$port"
}
stop_peers() { for p in "${PEER_PIDS[@]}"; do kill "$p" 2> /dev/null; wait "$p" 2> /dev/null; done; PEER_PIDS=(); }
# figure KEY=VALUE…: one line docs/RELIABILITY.md quotes
figure() { echo "figure $*"; }
# sanitizer_check LOG: a failure when an ASan/UBSan/LSan report is in LOG
sanitizer_check() {
    if grep -qE 'Sanitizer|runtime error' "$1"; then bad "sanitizer report in $(basename "$1"): $(grep -m1 -A8 -E 'Sanitizer|runtime error' "$1")"; fi
}
# rss_ok GROWTH_KB LIMIT_KB: 0 when growth is under the limit, or always under
# ASan (its quarantine holds freed memory: RSS says nothing there; leaks are
# LeakSanitizer's report when the process exits, which sanitizer_check reads)
ASAN_BUILD=0
ldd "$PROXY" 2> /dev/null | grep -q libasan && ASAN_BUILD=1
rss_ok() {
    if [ $ASAN_BUILD = 1 ]; then echo "note: ASan build: RSS growth of $1 kB not compared"; return 0; fi
    [ "$1" -lt "$2" ]
}
