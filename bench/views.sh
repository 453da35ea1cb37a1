#!/bin/bash
# bench/views.sh [--seconds N] [--record]
#
# A benchmark, not a test: the live screens' redraw bound (issue 5: ≤ 100 ms
# to redraw with 50k events/s arriving). A collector is fed as fast as it
# acknowledges by bench/tapgen.c (emojivoto-shaped events stamped "now", far
# above 50k/s on this machine) while one screen at a time runs in a detached
# tmux (160x40, private socket): `mesh top` (Query.Top every second, -t 1m),
# `mesh stat deploy -n emojivoto --watch`, and `mesh tap` (the Watch stream,
# every event). Keys are pressed during the run (sort, scroll, pause). Each
# screen writes, through MESH_UI_STATS, its redraw times (draw: erase, lay
# out, doupdate to the pty) and staleness (first unseen change → drawn)
# as p50/p99/max. Everything runs on 127.0.0.1, every process started here
# is stopped on exit; --record appends the table to bench/RESULTS.md.
set -euo pipefail

SECONDS_RUN=20
RECORD=0
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) SECONDS_RUN=${2:?--seconds needs a number}; shift 2 ;;
    --record) RECORD=1; shift ;;
    -h | --help) sed -n 2,15p "$0"; exit 0 ;;
    *) echo "usage: bench/views.sh [--seconds N] [--record]" >&2; exit 2 ;;
    esac
done
[[ $SECONDS_RUN =~ ^[1-9][0-9]*$ ]] || { echo "views.sh: --seconds must be a positive integer" >&2; exit 2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
MESH=${MESH:-$BUILD/mesh}
RESULTS=$ROOT/bench/RESULTS.md
WORK=$(mktemp -d /tmp/ui-bench.XXXXXX)
SOCK=ui-bench-$$
TM=(tmux -L "$SOCK" -f /dev/null)
COLLECTOR_PID=
GEN_PID=

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'views.sh: %s\n' "$*" >&2; exit 1; }
stop_pid() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    "${TM[@]}" kill-server 2>/dev/null || true
    stop_pid "$GEN_PID"
    stop_pid "$COLLECTOR_PID"
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v tmux >/dev/null || die "tmux missing (Debian tmux)"
for f in "$MESH" "$BUILD/libmesh_store.a" "$BUILD/libmesh_lib.a" "$BUILD/libmesh_proto.a"; do
    [ -e "$f" ] || die "$f missing: build first (cmake --build $BUILD), or set BUILD="
done
# shellcheck disable=SC2046 # pkg-config output is meant to split into flags
cc -O2 -Wall -I "$ROOT/lib" -I "$ROOT/store" -I "$BUILD/gen" -o "$WORK/tapgen" \
    "$ROOT/bench/tapgen.c" "$BUILD/libmesh_store.a" "$BUILD/libmesh_lib.a" "$BUILD/libmesh_proto.a" \
    $(pkg-config --libs sqlite3 libprotobuf-c libnghttp2 openssl) -lm

"$MESH" collector --listen 127.0.0.1:0 --db "$WORK/c.db" 2> "$WORK/collector.log" &
COLLECTOR_PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/collector.log" && break; sleep 0.1; done
port=$(sed -n 's/.*, port \([0-9]*\) .*/\1/p' "$WORK/collector.log")
[ -n "$port" ] || die "collector did not start: $(cat "$WORK/collector.log")"
ADDR=127.0.0.1:$port
"${TM[@]}" new-session -d -x 160 -y 40 -s b "env TERM=screen LANG=C.UTF-8 PS1='$ ' bash --norc --noprofile"
screen() { "${TM[@]}" capture-pane -p -t b; }
wait_for() { for _ in $(seq "${2:-100}"); do screen | grep -qE -- "$1" && return 0; sleep 0.1; done; return 1; }

# phase NAME MARKER CMD…: the screen under load, keys pressed now and then
declare -A RATE
phase() {
    local name=$1 marker=$2; shift 2
    log "$name: $* under load for ${SECONDS_RUN}s"
    "${TM[@]}" send-keys -t b "clear; MESH_UI_STATS=$WORK/$name.stats $* ; echo DONE-$name" Enter
    wait_for "$marker" || die "$name: the screen did not come up: $(screen | head -3)"
    "$WORK/tapgen" --addr "$ADDR" --seconds "$SECONDS_RUN" > "$WORK/$name.gen" 2> /dev/null &
    GEN_PID=$!
    local k=0
    while kill -0 "$GEN_PID" 2>/dev/null; do
        sleep 1
        case $((k++ % 6)) in
        0) "${TM[@]}" send-keys -t b j ;;
        1) "${TM[@]}" send-keys -t b NPage ;;
        2) "${TM[@]}" send-keys -t b '>' ;;
        3) "${TM[@]}" send-keys -t b Space ;;
        4) "${TM[@]}" send-keys -t b Space ;;
        5) "${TM[@]}" send-keys -t b G ;;
        esac
    done
    wait "$GEN_PID" || die "$name: tapgen failed"
    GEN_PID=
    "${TM[@]}" send-keys -t b q
    wait_for "^DONE-$name" 100 || die "$name: the screen did not quit"
    RATE[$name]=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' "$WORK/$name.gen")
    printf '%s rate=%s %s\n' "$name" "${RATE[$name]}" "$(cat "$WORK/$name.stats")"
}

phase top 'mesh top' "$MESH" top --collector "$ADDR"
phase stat 'mesh stat' "$MESH" stat deploy -n emojivoto --watch --collector "$ADDR"
phase tap 'mesh tap' "$MESH" tap --collector "$ADDR"

field() { sed -n "s/.*\\b$2=\\([0-9]*\\).*/\\1/p" "$WORK/$1.stats"; }
ms() { awk -v us="$1" 'BEGIN { printf "%.1f", us / 1000 }'; }
table() {
    echo "| screen | events/s fed | redraws | draw p50 / p99 / max (ms) | stale p50 / p99 / max (ms) | events seen by the screen | ≤ 100 ms |"
    echo "|---|---|---|---|---|---|---|"
    for n in top stat tap; do
        local max stalemax okay
        max=$(field $n draw_max_us); stalemax=$(field $n stale_max_us)
        okay=yes; [ "$max" -le 100000 ] || okay="**no**"
        echo "| $n | ${RATE[$n]} | $(field $n draws) | $(ms "$(field $n draw_p50_us)") / $(ms "$(field $n draw_p99_us)") / $(ms "$max") | $(ms "$(field $n stale_p50_us)") / $(ms "$(field $n stale_p99_us)") / $(ms "$stalemax") | $(field $n events) | $okay |"
    done
}
table
if [ "$RECORD" -eq 1 ]; then
    {
        printf '## %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
        printf 'bench/views.sh --seconds %s, %s, %s cores; mesh from %s.\n\n' "$SECONDS_RUN" \
            "$(uname -m)" "$(nproc)" "$BUILD"
        table
    } | "$ROOT/bench/record.sh" "bench/views.sh results" \
        '`bench/views.sh` measures the views (issue 5).' 
fi
