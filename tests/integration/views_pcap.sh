#!/bin/bash
# stat, top and tap over captures (--pcap): counts and success rates agree
# with tshark's reading of the same capture (.expect), labels group rows by
# deployment, and the VoteDoughnut failure shows at 0% success.
# Usage: views_pcap.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
C=$SHARED/corpus/emojivoto
[ -f "$C/grpc.pcap" ] || skip "$C missing"

# stat -o json per authority == counts from tshark's reading
"$MESH" stat --pcap "$C/mixed.pcap" -o json > "$WORK/stat.json" || bad "stat exit $?"
if python3 - "$WORK/stat.json" "$C/mixed.expect" <<'PY'
import json, sys, collections
rows = {r["name"]: r for r in json.load(open(sys.argv[1]))}
want = collections.Counter(); fails = collections.Counter()
for line in open(sys.argv[2]):
    proto, method, auth, path, status, grpc = line.rstrip("\n").split("\t")
    want[auth] += 1
    failed = (grpc != "-" and grpc != "0") or (grpc == "-" and (status == "-" or int(status) >= 500))
    fails[auth] += failed
ok = True
for auth, n in want.items():
    r = rows.get(auth)
    if r is None or r["requests"] != n or r["failures"] != fails[auth] or r["type"] != "au":
        print("mismatch", auth, n, fails[auth], r); ok = False
    elif abs(r["success"] - (n - fails[auth]) / n) > 1e-6:
        print("success ratio", auth, r["success"]); ok = False
sys.exit(0 if ok and len(rows) == len(want) else 1)
PY
then ok "stat -o json: rows, requests and failures per authority match tshark"; else bad "stat -o json vs tshark"; fi

# plain table
"$MESH" stat --pcap "$C/grpc.pcap" > "$WORK/stat.txt"
if head -1 "$WORK/stat.txt" | grep -qE '^NAME +MESHED +SUCCESS +RPS +LATENCY_P50 +LATENCY_P95 +LATENCY_P99 +TCP_CONN$' &&
   grep -qE '^au/127\.0\.0\.1:18080 ' "$WORK/stat.txt"; then ok "stat table"; else bad "stat table: $(cat "$WORK/stat.txt")"; fi

# labels: deployments in a namespace
printf '127.0.0.1:18080 emojivoto/voting\n127.0.0.1:18081 emojivoto/web\n[::1]:18081 emojivoto/web\n127.0.0.1:18082 emojivoto/emoji\n' > "$WORK/labels.map"
"$MESH" stat deploy -n emojivoto --pcap "$C/mixed.pcap" --labels "$WORK/labels.map" -o json > "$WORK/deploy.json"
if python3 - "$WORK/deploy.json" <<'PY'
import json, sys
rows = {r["name"]: r for r in json.load(open(sys.argv[1]))}
assert set(rows) == {"voting", "web", "emoji"}, rows.keys()
assert all(r["namespace"] == "emojivoto" and r["type"] == "deploy" for r in rows.values())
assert 0.5 < rows["voting"]["success"] < 1.0, rows["voting"]
assert rows["emoji"]["success"] < 1.0 or rows["emoji"]["requests"] > 0
PY
then ok "stat deploy -n emojivoto with --labels"; else bad "stat deploy: $(cat "$WORK/deploy.json")"; fi
"$MESH" stat ns/emojivoto --pcap "$C/mixed.pcap" --labels "$WORK/labels.map" -o json > "$WORK/ns.json"
if python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert len(r)==1 and r[0]["name"]=="emojivoto" and r[0]["requests"]==598, r' "$WORK/ns.json"; then
    ok "stat ns/emojivoto: one row with every request"; else bad "stat ns: $(cat "$WORK/ns.json")"; fi

# top: VoteDoughnut at 0.00%
"$MESH" top --pcap "$C/grpc.pcap" > "$WORK/top.txt"
if head -1 "$WORK/top.txt" | grep -qE '^Source +Destination +Method +Path +Count +Best +Worst +Last +Success Rate$' &&
   grep -E '/emojivoto\.v1\.VotingService/VoteDoughnut ' "$WORK/top.txt" | grep -qE ' 0\.00%$'; then
    ok "top lists VoteDoughnut at 0.00%"; else bad "top: $(head -5 "$WORK/top.txt")"; fi
n=$(grep -c $'\tPOST\t127.0.0.1:18080\t/emojivoto.v1.VotingService/VoteDoughnut\t' "$C/grpc.expect")
"$MESH" top --pcap "$C/grpc.pcap" -o json --path /emojivoto.v1.VotingService/VoteDoughnut > "$WORK/top.json"
if python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert len(r)==1 and r[0]["count"]==int(sys.argv[2]) and r[0]["success"]==0, r' "$WORK/top.json" "$n"; then
    ok "top -o json --path: $n VoteDoughnut calls, all failed"; else bad "top json: $(cat "$WORK/top.json")"; fi

# tap: filters, and the three-line format
"$MESH" tap --pcap "$C/http1.pcap" --status 5xx > "$WORK/tap.txt"
want=$(grep -c $'\t500\t-$' "$C/http1.expect")
got=$(grep -c '^req ' "$WORK/tap.txt")
if [ "$got" -eq "$want" ] && ! grep -q ':status=200' "$WORK/tap.txt" && grep -q '^rsp .*:status=500 latency=' "$WORK/tap.txt" && grep -q '^end .* duration=.* response-length=' "$WORK/tap.txt"; then
    ok "tap --status 5xx: $got of $want"; else bad "tap --status 5xx: got $got want $want"; fi
"$MESH" tap deploy/web --to deploy/voting --pcap "$C/mixed.pcap" --labels "$WORK/labels.map" -o json > "$WORK/tap.json"
"$MESH" tap --to deploy/voting --pcap "$C/mixed.pcap" --labels "$WORK/labels.map" -o json --method POST --path /emojivoto.v1.VotingService/VoteDoughnut > "$WORK/tap2.json"
if [ ! -s "$WORK/tap.json" ] && [ -s "$WORK/tap2.json" ] && python3 -c '
import json,sys
ev=[json.loads(l) for l in open(sys.argv[1])]
assert ev and all(e["grpc_status"]==2 and e["dst_labels"]["deployment"]=="voting" for e in ev)' "$WORK/tap2.json"; then
    ok "tap --to deploy/voting -o json: VoteDoughnut with grpc_status 2"; else bad "tap json"; fi
"$MESH" tap --pcap "$C/grpc.pcap" --max-rps 5 > /dev/null 2> "$WORK/err"
if grep -q "not shown (--max-rps)" "$WORK/err"; then ok "tap --max-rps holds back events"; else bad "tap --max-rps"; fi
"$MESH" tap --pcap "$C/http1.pcap" --min-latency 1h > "$WORK/none.txt"
if [ ! -s "$WORK/none.txt" ]; then ok "tap --min-latency 1h shows nothing"; else bad "tap --min-latency"; fi

finish
