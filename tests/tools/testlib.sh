# tests/tools/testlib.sh — sourced by the integration scripts.
# Sets BUILD, SRC, SHARED (the script's arguments), MESH and a scratch WORK
# directory removed on exit; ok/bad count results and finish prints the
# "N passed, N failed" line ctest and CI read, and sets the exit status.
BUILD=$1 SRC=$2 SHARED=$3
MESH=$BUILD/mesh
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
pass=0 fail=0
ok()  { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
skip() { echo "SKIP: $1"; exit 77; }
need_corpus() { [ -d "$SHARED/corpus" ] || skip "$SHARED/corpus missing"; }
need_editcap() { command -v editcap >/dev/null || skip "editcap (Debian wireshark-common) missing"; }
# cmp_rows LABEL TRUTH GOT: ../shared/tools/cmp.py's verdict on two row files as ok/bad
cmp_rows() {
    local out
    if out=$(python3 "$SHARED/tools/cmp.py" "$2" "$3"); then ok "$1: $out"; else bad "$1: $out"; fi
}
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }
# start_collector: `mesh collector` on a free loopback port with a store in
# WORK; sets cpid and port, and stops it on exit.
start_collector() {
    "$MESH" collector --listen 127.0.0.1:0 --db "$WORK/mesh.db" 2> "$WORK/collector.log" &
    cpid=$!
    trap 'kill $cpid 2>/dev/null; wait $cpid 2>/dev/null; rm -rf "$WORK"' EXIT
    for _ in $(seq 50); do grep -q listening "$WORK/collector.log" && break; sleep 0.1; done
    port=$(sed -n 's/.*, port \([0-9]*\) .*/\1/p' "$WORK/collector.log")
    [ -n "$port" ] || { echo "FAIL collector did not start: $(cat "$WORK/collector.log")"; exit 1; }
}
# free_port: a loopback port nothing listens on right now.
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s at most).
wait_port() {
    for _ in $(seq 200); do
        (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
        sleep 0.05
    done
    echo "FAIL nothing listens on port $1"; return 1
}
# start_proxy NAME ARGS…: mesh-proxy with ARGS (its listeners on port 0 are
# fine), log in WORK/NAME.log; sets ppid and, from its log, pin/pout/padm (the
# bound inbound, outbound and admin ports, empty when off). Stopped on exit.
PROXY=$BUILD/mesh-proxy
PROXY_PIDS=()
start_proxy() {
    local name=$1; shift
    "$PROXY" "$@" 2> "$WORK/$name.log" &
    ppid=$!
    PROXY_PIDS+=("$ppid")
    for _ in $(seq 100); do grep -q "^mesh-proxy: tap" "$WORK/$name.log" && break; sleep 0.05; done
    pin=$(sed -n 's/^mesh-proxy: inbound listening on .*, port \([0-9]*\),.*/\1/p' "$WORK/$name.log")
    pout=$(sed -n 's/^mesh-proxy: outbound listening on .*, port \([0-9]*\),.*/\1/p' "$WORK/$name.log")
    padm=$(sed -n 's/^mesh-proxy: admin listening on .*, port \([0-9]*\)$/\1/p' "$WORK/$name.log")
    grep -q "^mesh-proxy: tap" "$WORK/$name.log" || { echo "FAIL mesh-proxy did not start: $(cat "$WORK/$name.log")"; return 1; }
}
stop_proxies() { for p in "${PROXY_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; PROXY_PIDS=(); }
