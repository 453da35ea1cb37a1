#!/bin/bash
# `mesh demo` end to end: the story of issue 6 with the real binaries. While a
# 25-second demo runs, the views find its collector with no flags (state file),
# stat shows voting and web below 100% and emoji at 100%, tap shows VoteDoughnut
# failing with grpc_status 2 and top lists it at 0.00%. Afterwards nothing the
# demo started is left; the same after SIGTERM, and after SIGKILL (PDEATHSIG).
# Usage: demo.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
[ -x "$BUILD/mesh-proxy" ] || skip "mesh-proxy not built"
command -v python3 > /dev/null || skip "python3 missing"
trap 'cleanup; rm -rf "$WORK"' EXIT
# the state file and the demo's own directory stay in WORK: runs in parallel do not meet
mkdir -m 700 "$WORK/xdg"
export XDG_RUNTIME_DIR=$WORK/xdg TMPDIR=$WORK
unset MESH_COLLECTOR
dpid= tpid=
CHILDREN=()
cleanup() {
    [ -n "$tpid" ] && kill "$tpid" 2> /dev/null
    [ -n "$dpid" ] && kill -KILL "$dpid" 2> /dev/null # its children die with it (PDEATHSIG)
    wait 2> /dev/null
}

# start_demo ARGS…: runs `mesh demo ARGS` in the background until it printed
# its banner; sets dpid and CHILDREN (the pids it started).
start_demo() {
    "$MESH" demo "$@" > "$WORK/demo.out" 2> "$WORK/demo.err" &
    dpid=$!
    for _ in $(seq 600); do
        grep -q "^Try, in another terminal" "$WORK/demo.out" 2> /dev/null && break
        kill -0 $dpid 2> /dev/null || break
        sleep 0.1
    done
    if ! grep -q "^Try, in another terminal" "$WORK/demo.out"; then
        echo "FAIL the demo did not start:"; cat "$WORK/demo.out" "$WORK/demo.err"
        exit 1
    fi
    mapfile -t CHILDREN < <(pgrep -P $dpid)
}
# left_over: the pids of CHILDREN still alive (empty when none).
left_over() {
    local p alive=()
    for p in "${CHILDREN[@]}"; do kill -0 "$p" 2> /dev/null && alive+=("$p"); done
    echo "${alive[@]}"
}
wait_gone() {
    for _ in $(seq 100); do [ -z "$(left_over)" ] && return 0; sleep 0.1; done
    return 1
}

start_demo --duration 25s
[ ${#CHILDREN[@]} -eq 9 ] && ok "the demo started 9 processes (collector, 4 workloads, 4 sidecars)" ||
    bad "the demo started ${#CHILDREN[@]} processes: $(ps -o pid=,args= "${CHILDREN[@]}" 2>&1)"
addr=$(cut -d' ' -f1 "$XDG_RUNTIME_DIR/mesh/demo.addr" 2> /dev/null)
grep -q "collector  $addr " "$WORK/demo.out" && ok "state file names the demo's collector ($addr)" ||
    bad "state file: '$(cat "$XDG_RUNTIME_DIR/mesh/demo.addr" 2>&1)' vs $(grep collector "$WORK/demo.out")"

# stat, once voting has enough requests for the rates to mean something
rows() { "$MESH" stat deploy -n emojivoto -o json 2> "$WORK/stat.err"; }
end=$((SECONDS + 15))
while [ $SECONDS -lt $end ]; do
    n=$(rows | python3 -c 'import json,sys; print(sum(r["requests"] for r in json.load(sys.stdin) if r["name"] == "voting"))' 2> /dev/null)
    [ "${n:-0}" -ge 60 ] && break
    sleep 0.1
done
rows > "$WORK/stat.json"
check=$(python3 - "$WORK/stat.json" "$WORK/stat.err" <<'EOF'
import json, sys
try:
    rows = {r["name"]: r for r in json.load(open(sys.argv[1]))}
except ValueError:
    print("FAIL stat deploy -n emojivoto -o json: " + (open(sys.argv[1]).read() + open(sys.argv[2]).read()).strip())
    sys.exit()
def rate(name, lo, hi):
    r = rows.get(name)
    if r is None:
        return "FAIL deploy/%s: no row" % name
    s = r["success"]
    verdict = "ok  " if lo <= s <= hi else "FAIL"
    return "%s deploy/%s success %.4f (%d requests) in [%.2f, %.2f]" % (verdict, name, s, r["requests"], lo, hi)
print(rate("voting", 0.75, 0.95))
print(rate("web", 0.75, 0.97))
print(rate("emoji", 1.0, 1.0))
print(("ok   " if "vote-bot" in rows else "FAIL ") + "deploy/vote-bot has a row (rows: %s)" % ", ".join(sorted(rows)))
EOF
)
while read -r verdict rest; do
    [ "$verdict" = ok ] && ok "$rest" || bad "$rest"
done <<< "$check"

out=$("$MESH" stat ns/emojivoto 2>&1)
[ "$(sed 1d <<< "$out" | grep -c '^ns/emojivoto ')" = 1 ] && [ "$(wc -l <<< "$out")" = 2 ] &&
    ok "stat ns/emojivoto: one row: $(sed -n 2p <<< "$out" | tr -s ' ')" || bad "stat ns/emojivoto: $out"

# tap: live, until a failed VoteDoughnut shows (~0.6 a second); then stopped
"$MESH" tap deploy/web --to deploy/voting -o json > "$WORK/tap.json" 2> "$WORK/tap.err" &
tpid=$!
doughnut() { grep '"/emojivoto.v1.VotingService/VoteDoughnut"' "$WORK/tap.json" | grep -m1 '"grpc_status":2'; }
for _ in $(seq 200); do doughnut > /dev/null && break; sleep 0.1; done
kill $tpid 2> /dev/null; wait $tpid 2> /dev/null; tpid=
line=$(doughnut)
[ -n "$line" ] && ok "tap deploy/web --to deploy/voting: VoteDoughnut with grpc_status 2" ||
    bad "tap: no failed VoteDoughnut in $(wc -l < "$WORK/tap.json") lines: $(head -c 300 "$WORK/tap.json") $(cat "$WORK/tap.err")"
# the sidecars capture user-agent (--tap-header): web's gRPC client's, on the event
grep -q '"headers":\[{"name":"user-agent","value":"mesh-grpc/0.1"}\]' <<< "$line" &&
    ok "the event carries the captured user-agent header (mesh-grpc/0.1)" || bad "no user-agent header: $line"
# ... and voting's grpc-message, why it failed
grep -q '"response_headers":\[{"name":"grpc-message","value":"ERROR"' <<< "$line" &&
    ok "the event carries voting's grpc-message (ERROR)" || bad "no grpc-message: $line"

out=$("$MESH" top deploy/voting 2>&1)
grep -q 'VoteDoughnut .* 0\.00%$' <<< "$out" && ok "top deploy/voting: $(grep VoteDoughnut <<< "$out" | tr -s ' ')" ||
    bad "top deploy/voting: $(head -5 <<< "$out")"

# the end: duration up, everything stopped, state file gone
wait $dpid; rc=$?; dpid=
[ $rc -eq 0 ] && grep -q "stopped 9 processes" "$WORK/demo.out" && ok "exit 0 after --duration: $(tail -1 "$WORK/demo.out")" ||
    bad "exit $rc: $(tail -3 "$WORK/demo.out") $(cat "$WORK/demo.err")"
[ -z "$(left_over)" ] && ok "no process of the demo left" || bad "left over: $(ps -o pid=,args= $(left_over))"
[ ! -e "$XDG_RUNTIME_DIR/mesh/demo.addr" ] && [ -z "$(ls -d "$WORK"/mesh-demo-* 2> /dev/null)" ] &&
    ok "state file and run directory removed" || bad "left: $(ls "$XDG_RUNTIME_DIR/mesh" "$WORK")"

# SIGTERM: an orderly stop
start_demo
kill -TERM $dpid; wait $dpid; rc=$?; dpid=
[ $rc -eq 0 ] && wait_gone && ok "SIGTERM: exit 0, all ${#CHILDREN[@]} processes stopped" ||
    bad "SIGTERM: exit $rc, left: $(left_over)"

# SIGKILL: the children follow (PR_SET_PDEATHSIG), and the stale state file is ignored
start_demo
kill -KILL $dpid; wait $dpid 2> /dev/null; dpid_dead=$dpid dpid=
wait_gone && ok "SIGKILL: all ${#CHILDREN[@]} processes died with the demo" ||
    bad "SIGKILL: left: $(ps -o pid=,args= $(left_over))"
# a state file whose demo is gone is ignored: the default collector is asked instead
echo "127.0.0.1:1 $dpid_dead" > "$XDG_RUNTIME_DIR/mesh/demo.addr"
out=$("$MESH" stat deploy -n emojivoto 2>&1)
grep -q "127.0.0.1:1\b" <<< "$out" && bad "a dead demo's state file was used: $out" ||
    ok "a dead demo's state file is ignored"
finish
