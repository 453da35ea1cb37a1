#!/bin/bash
# A capture replayed into a collector (--collector) and into a store (--db)
# gives stat, top and tap the same counts as tshark's reading of it; a live
# tap (Query.Watch) sees events while a replay streams in.
# Usage: collector_views.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
need_corpus
C=$SHARED/corpus/emojivoto
start_collector
export MESH_COLLECTOR=127.0.0.1:$port

# stat_matches JSON EXPECT: one row per authority with tshark's counts
stat_matches() {
    python3 - "$1" "$2" <<'PY'
import json, sys, collections
rows = {r["name"]: r for r in json.load(open(sys.argv[1]))}
want, fails = collections.Counter(), collections.Counter()
for line in open(sys.argv[2]):
    proto, method, auth, path, status, grpc = line.rstrip("\n").split("\t")
    want[auth] += 1
    fails[auth] += (grpc != "-" and grpc != "0") or (grpc == "-" and (status == "-" or int(status) >= 500))
bad = [(a, n, fails[a], rows.get(a)) for a, n in want.items()
       if a not in rows or rows[a]["requests"] != n or rows[a]["failures"] != fails[a]]
print("rows", len(rows), "mismatches", bad[:3])
sys.exit(1 if bad or len(rows) != len(want) else 0)
PY
}

"$MESH" replay -q "$C/grpc.pcap" --collector "$MESH_COLLECTOR" || bad "replay --collector exit $?"
"$MESH" stat au/127.0.0.1:18080 --since 0 -o json > "$WORK/stat.json"
if out=$(stat_matches "$WORK/stat.json" "$C/grpc.expect"); then ok "stat --collector after replay --collector: $out"; else bad "stat --collector: $out $(cat "$WORK/stat.json")"; fi
if "$MESH" stat au -o json | grep -q '^\[\]$'; then ok "stat -t 1m (default) leaves out the capture's old timestamps"; else bad "default window"; fi

"$MESH" replay -q "$C/mixed.pcap" --db "$WORK/replay.db" || bad "replay --db exit $?"
"$MESH" stat --db "$WORK/replay.db" --since 0 -o json > "$WORK/db.json"
if out=$(stat_matches "$WORK/db.json" "$C/mixed.expect"); then ok "stat --db after replay --db: $out"; else bad "stat --db: $out"; fi

"$MESH" top --since 0 > "$WORK/top.txt"
if grep -E '/emojivoto\.v1\.VotingService/VoteDoughnut ' "$WORK/top.txt" | grep -qE ' 0\.00%$'; then ok "top --collector lists VoteDoughnut at 0.00%"; else bad "top: $(head -3 "$WORK/top.txt")"; fi

n=$(grep -c $'\t2$' "$C/grpc.expect")
got=$("$MESH" tap --db "$WORK/mesh.db" --since 0 --path /emojivoto.v1.VotingService/VoteDoughnut -o json | grep -c '"grpc_status":2')
if [ "$got" -eq "$n" ]; then ok "tap --db: $got VoteDoughnut failures"; else bad "tap --db: $got, want $n"; fi

# live: a tap on the collector while another replay streams in. A one-request
# probe is replayed until the tap shows it, so the tap is known to be
# subscribed before the measured replay starts (no sleep to guess it).
"$MESH" tap --status 2xx -o json > "$WORK/live.json" 2> "$WORK/live.err" &
tpid=$!
# a watchdog, should the tap hang; it takes its sleep with it when stopped and
# holds no pipe of ctest's open
( trap 'kill $s 2>/dev/null; exit 0' TERM; sleep 60 & s=$!; wait $s; kill -TERM $tpid 2>/dev/null ) > /dev/null 2>&1 &
wpid=$!
for _ in $(seq 100); do
    "$MESH" replay -q "$SHARED/corpus/zeek/x-gzip.pcap" --collector "$MESH_COLLECTOR"
    grep -q '"authority":"localhost"' "$WORK/live.json" && break
    sleep 0.1
done
"$MESH" replay -q "$C/grpc.pcap" --collector "$MESH_COLLECTOR"
for _ in $(seq 100); do
    [ "$(grep -c '"authority":"127.0.0.1:18080"' "$WORK/live.json")" -ge 300 ] && break
    sleep 0.1
done
kill -INT $tpid; wait $tpid; trc=$?
kill $wpid 2>/dev/null
live=$(grep -c '"authority":"127.0.0.1:18080"' "$WORK/live.json")
if [ "$live" -eq 300 ] && [ $trc -eq 0 ]; then ok "live tap saw all $live requests and quit cleanly on Ctrl-C"; else bad "live tap: $live events, exit $trc $(cat "$WORK/live.err")"; fi
finish
