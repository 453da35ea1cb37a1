#!/bin/bash
# stat, top and tap plain and JSON output against golden files
# (tests/golden/views/): the emojivoto corpus replayed into a collector with
# the test labels, then read back over --collector and --db. Windows are
# explicit (--since 0: the data's own span; one fixed --since/--until for
# RPS), so nothing depends on the clock. A mismatch prints a unified diff.
# MESH_UPDATE_GOLDEN=1 rewrites the goldens instead (review the diff).
# Usage: views_golden.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
need_corpus
C=$SHARED/corpus/emojivoto
GOLD=$SRC/tests/golden/views
LABELS=$SRC/tests/data/emojivoto.labels
start_collector
export MESH_COLLECTOR=127.0.0.1:$port
mkdir -p "$WORK/out"

"$MESH" replay -q "$C"/*.pcap --labels "$LABELS" --collector "$MESH_COLLECTOR" ||
    { bad "replay --collector exit $?"; finish; exit; }

# TCP_CONN is run-dependent over a collector: distinct connections are a
# HyperLogLog estimate whose hashes include the replay's random sender id.
# Its digits become one right-aligned "#" (the column keeps its width, so alignment is still
# checked).
normalise() {
    python3 -c '
import re, sys
col = None
for line in sys.stdin:
    if line.startswith("["):
        col = None
    line = re.sub(r"\"tcp_conn\":\d+", "\"tcp_conn\":\"#\"", line)
    toks = list(re.finditer(r"\S+", line))
    if any(t.group() == "TCP_CONN" for t in toks):
        col = [t.group() for t in toks].index("TCP_CONN")
    elif col is not None and len(toks) > col and toks[col].group().isdigit():
        t = toks[col]
        line = line[:t.start()] + " " * (len(t.group()) - 1) + "#" + line[t.end():]
    sys.stdout.write(line)'
}

# golden NAME CMD…: runs `mesh CMD…`, compares stdout (normalised) with GOLD/NAME
golden() {
    local name=$1; shift
    local out=$WORK/out/$name
    if ! "$MESH" "$@" > "$out.raw" 2> "$WORK/out/$name.err"; then
        bad "$name: mesh $* exit $?: $(head -3 "$WORK/out/$name.err")"
        return
    fi
    normalise < "$out.raw" > "$out"
    if [ "${MESH_UPDATE_GOLDEN:-}" = 1 ]; then
        mkdir -p "$GOLD" && cp "$out" "$GOLD/$name" && ok "$name (golden rewritten)"
    elif [ ! -f "$GOLD/$name" ]; then
        bad "$name: no golden $GOLD/$name (MESH_UPDATE_GOLDEN=1 writes it)"
    elif diff -u "$GOLD/$name" "$out" > "$WORK/out/$name.diff"; then
        ok "$name: mesh $*"
    else
        bad "$name: mesh $* differs from its golden:"
        head -40 "$WORK/out/$name.diff"
    fi
}

# stat: resource forms, outputs
golden stat_au.txt stat --since 0
golden stat_au.json stat au --since 0 -o json
golden stat_deploy.txt stat deploy -n emojivoto --since 0
golden stat_deploy_wide.txt stat deploy -n emojivoto --since 0 -o wide
golden stat_deploy.json stat deploy -n emojivoto --since 0 -o json
golden stat_two.txt stat deploy/voting deploy/web -n emojivoto --since 0
golden stat_ns.json stat ns/emojivoto --since 0 -o json
golden stat_all_ns.txt stat ns deploy -A --since 0
# RPS over an explicit window: the capture's first 10 seconds
t0=$("$MESH" tap --db "$WORK/mesh.db" --since 0 -o json | python3 -c '
import json, sys; print(min(json.loads(l)["ts"] for l in sys.stdin) // 1000000)')
golden stat_window.json stat deploy -n emojivoto --since "$t0" --until "$((t0 + 10))" -o json
golden stat_db.txt stat deploy -n emojivoto --db "$WORK/mesh.db" --since 0

# top: the plain snapshot, filters, JSON
golden top.txt top --since 0
golden top_voting.txt top deploy/voting --hide-sources --since 0
golden top_doughnut.json top --since 0 -o json --path /emojivoto.v1.VotingService/VoteDoughnut
golden top_sort_worst.txt top --to deploy/web --sort worst --since 0

# tap: the store's events (the live Watch is tested by collector_views.sh)
golden tap_doughnut.json tap --db "$WORK/mesh.db" --since 0 -o json --path /emojivoto.v1.VotingService/VoteDoughnut
golden tap_5xx.txt tap --db "$WORK/mesh.db" --since 0 --status 5xx
golden tap_wide.txt tap deploy/emoji --db "$WORK/mesh.db" --since 0 -o wide --method GET --path /app

# the goldens themselves say what the issue asks: VoteDoughnut at 0% success
if grep -E '/emojivoto\.v1\.VotingService/VoteDoughnut ' "$GOLD/top.txt" | grep -qE ' 0\.00%$' &&
   python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert len(r)==1 and r[0]["success"]==0 and r[0]["count"]>0' "$GOLD/top_doughnut.json" &&
   grep -qE '^deploy/voting +- +[0-9.]+% ' "$GOLD/stat_deploy.txt"; then
    ok "goldens hold VoteDoughnut at 0.00% and voting below 100%"
else
    bad "goldens lost the VoteDoughnut row"
fi
finish
