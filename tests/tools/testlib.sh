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
