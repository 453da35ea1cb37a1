#!/bin/bash
# `mesh dashboard` against a real demo, in headless Chromium (issue 8): the JSON and
# SSE endpoints answer from this demo's collector; the overview lists every deployment
# the collector reports (emoji, voting, web: failing ones marked); voting's page shows
# a failing VoteDoughnut row; screenshots are kept in BUILD/artifacts/. Bad usage
# exits 2; SIGTERM stops the server with 0; nothing is left running.
# Usage: dashboard.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
command -v chromium > /dev/null || skip "chromium missing (Debian: apt-get install chromium)"
command -v python3 > /dev/null || skip "python3 missing"
command -v curl > /dev/null || skip "curl missing"
[ -x "$BUILD/mesh-proxy" ] || skip "mesh-proxy not built"
dpid= wpid=
cleanup() {
    [ -n "$wpid" ] && kill "$wpid" 2> /dev/null && wait "$wpid" 2> /dev/null
    [ -n "$dpid" ] && kill -TERM "$dpid" 2> /dev/null && wait "$dpid" 2> /dev/null
    local left
    left=$(pgrep -f -- "--user-data-dir=$WORK/chrome") && kill -KILL $left 2> /dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
# this demo's state file stays in WORK: another demo on the machine is not ours
mkdir -m 700 "$WORK/xdg"
export XDG_RUNTIME_DIR=$WORK/xdg TMPDIR=$WORK
unset MESH_COLLECTOR
ART=$BUILD/artifacts
mkdir -p "$ART"
SECONDS=0

# bad usage: one line naming the input, exit 2
out=$("$MESH" dashboard --port 70000 2>&1); rc=$?
[ $rc -eq 2 ] && [ "$(wc -l <<< "$out")" = 1 ] && grep -q 70000 <<< "$out" &&
    ok "--port 70000: exit 2, '$out'" || bad "--port 70000: exit $rc: $out"
out=$("$MESH" dashboard --assets "$WORK/nowhere" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "$WORK/nowhere" <<< "$out" && ok "--assets with no index.html: exit 2" ||
    bad "--assets: exit $rc: $out"

# the demo (80 s at most whatever happens here), then the dashboard on a free port
"$MESH" demo --duration 80s --rate 10 > "$WORK/demo.out" 2> "$WORK/demo.err" &
dpid=$!
for _ in $(seq 300); do
    grep -q "^Try, in another terminal" "$WORK/demo.out" && break
    kill -0 $dpid 2> /dev/null || break
    sleep 0.1
done
grep -q "^Try, in another terminal" "$WORK/demo.out" ||
    { echo "FAIL the demo did not start:"; cat "$WORK/demo.out" "$WORK/demo.err"; exit 1; }
mapfile -t CHILDREN < <(pgrep -P $dpid)
collector=$(sed -n 's/^  collector  \([^ ]*\) .*/\1/p' "$WORK/demo.out")
"$MESH" dashboard --port 0 --collector "$collector" > "$WORK/dash.out" 2> "$WORK/dash.err" &
wpid=$!
for _ in $(seq 100); do grep -q "^mesh dashboard: http://" "$WORK/dash.out" && break; sleep 0.1; done
URL=$(sed -n 's#^mesh dashboard: \(http://[^ ]*/\) .*#\1#p' "$WORK/dash.out")
[ -n "$URL" ] && ok "mesh dashboard serves $URL (collector $collector)" ||
    { echo "FAIL mesh dashboard did not start: $(cat "$WORK/dash.out" "$WORK/dash.err")"; exit 1; }

# wait until the collector has voting's failed doughnuts in its window
get() { curl -sf --max-time 5 "$URL$1"; }
for _ in $(seq 150); do
    get "api/top?ns=emojivoto&deploy=voting" 2> /dev/null | grep -q '"/emojivoto.v1.VotingService/VoteDoughnut","count":[0-9]*,"failures":[1-9]' && break
    sleep 0.2
done
get "api/stat?type=deploy&ns=emojivoto" > "$WORK/deploy.json"
check=$(python3 - "$WORK/deploy.json" <<'EOF'
import json, sys
try:
    rows = {r["name"]: r for r in json.load(open(sys.argv[1]))["rows"]}
    names = sorted(rows)
    assert {"emoji", "voting", "web"} <= set(names), names
    assert rows["voting"]["success"] < 1 and rows["emoji"]["success"] == 1, rows
    print("ok " + " ".join(names))
except Exception as e:
    print("FAIL %r %s" % (e, open(sys.argv[1]).read()[:300]))
EOF
)
[ "${check%% *}" = ok ] && ok "/api/stat deployments: ${check#ok }; voting below 100%" || bad "/api/stat: $check"
DEPLOYS=${check#ok }
get "api/top?ns=emojivoto&deploy=voting" | grep -q '"path":"/emojivoto.v1.VotingService/VoteDoughnut","count":[0-9]*,"failures":[1-9][0-9]*,"success":0.000000' &&
    ok "/api/top deploy/voting: VoteDoughnut at 0%" || bad "/api/top: $(get "api/top?ns=emojivoto&deploy=voting" | head -c 300)"
out=$(curl -s --max-time 10 "${URL}api/live?max=1")
grep -q '^event: stat$' <<< "$out" && grep -q '"name":"voting"' <<< "$out" &&
    ok "/api/live (SSE): a stat event, the stream ended after max=1" || bad "/api/live: $(head -c 300 <<< "$out")"
out=$(curl -s --max-time 15 "${URL}api/tap?ns=emojivoto&deploy=web&max=3")
[ "$(grep -c '^event: tap$' <<< "$out")" = 3 ] &&
    ok "/api/tap (SSE) deploy/web: 3 live events, then the end (max=3)" || bad "/api/tap: $(head -c 400 <<< "$out")"
code=$(curl -s --path-as-is -o /dev/null -w '%{http_code}' "${URL}../CMakeLists.txt")
[ "$code" = 404 ] && ok "/../CMakeLists.txt: 404" || bad "/../CMakeLists.txt: $code"

# headless Chromium: ?snapshot keeps no stream open, so --virtual-time-budget can end
chrome() {
    HOME=$WORK timeout -k 5 40 chromium --headless --no-sandbox --disable-gpu \
        --user-data-dir="$WORK/chrome" --virtual-time-budget=8000 --window-size=1280,900 "$@" \
        2>> "$WORK/chrome.log"
}
chrome --dump-dom "${URL}?snapshot#/" > "$WORK/overview.html"
check=$(python3 - "$WORK/overview.html" $DEPLOYS <<'EOF'
import re, sys
dom, names = open(sys.argv[1]).read(), sys.argv[2:]
rows = re.findall(r'<tr( class="(\w+)")?>(.*?)</tr>', dom, re.S)
found = {}
for _, cls, cells in rows:
    m = re.search(r'<td[^>]*>emojivoto</td><td[^>]*><a href="#/deploy/emojivoto/([^"]+)">', cells)
    if m:
        found[m.group(1)] = cls
missing = [n for n in names if n not in found]
if missing or not names:
    print("FAIL deployments missing from the page: %s (found %s)" % (missing, found))
elif found.get("voting") != "failing" or found.get("web") != "failing" or found.get("emoji") == "failing":
    print("FAIL failing marks: %s" % found)
else:
    print("ok " + ", ".join("%s%s" % (n, " (failing)" if c == "failing" else "") for n, c in sorted(found.items())))
EOF
)
[ "${check%% *}" = ok ] && ok "overview in Chromium: ${check#ok }" || bad "overview: $check $(head -c 300 "$WORK/overview.html")"

chrome --dump-dom "${URL}?snapshot#/deploy/emojivoto/voting" > "$WORK/voting.html"
grep -o '<tr class="failing"><td class="mark">!</td><td[^>]*>web</td><td[^>]*>voting</td><td[^>]*>POST</td><td class="path">/emojivoto.v1.VotingService/VoteDoughnut</td>' \
    "$WORK/voting.html" > /dev/null && ok "voting's page in Chromium: a failing VoteDoughnut row (web → voting)" ||
    bad "voting's page: no failing VoteDoughnut row: $(sed 's/<[^>]*>/ /g' "$WORK/voting.html" | tr -s ' \n' ' ' | head -c 600)"
n=$(grep -o '<tr[^>]*><td class="mark">[!]*</td><td[^>]*>[0-9:.APM ]*</td><td[^>]*>\(in\|out\)</td>' "$WORK/voting.html" | wc -l)
[ "$n" -ge 1 ] && ok "voting's page: $n live tap rows" || bad "voting's page: no tap rows"
grep -q '<tr[^>]*title="user-agent: mesh-grpc/0.1"[^>]*><td class="mark">' "$WORK/voting.html" &&
    ok "voting's tap rows show the captured user-agent on hover" || bad "no tap row with a user-agent title"

rm -f "$ART/dashboard.png" "$ART/dashboard-overview.png"
chrome --screenshot="$ART/dashboard.png" "${URL}?snapshot#/deploy/emojivoto/voting" > /dev/null
chrome --screenshot="$ART/dashboard-overview.png" "${URL}?snapshot#/" > /dev/null
for f in "$ART/dashboard.png" "$ART/dashboard-overview.png"; do
    [ "$(head -c 8 "$f" 2> /dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] &&
        [ "$(stat -c %s "$f")" -gt 20000 ] && ok "screenshot saved: $f ($(stat -c %s "$f") bytes)" ||
        bad "no screenshot $f: $(tail -3 "$WORK/chrome.log")"
done

# the end: SIGTERM stops the dashboard (exit 0), then the demo; nothing left running
kill -TERM $wpid; wait $wpid; rc=$?; wpid=
[ $rc -eq 0 ] && ok "SIGTERM: mesh dashboard exit 0" || bad "SIGTERM: mesh dashboard exit $rc: $(cat "$WORK/dash.err")"
kill -TERM $dpid; wait $dpid; rc=$?; dpid=
alive=()
for p in "${CHILDREN[@]}"; do kill -0 "$p" 2> /dev/null && alive+=("$p"); done
chromes=$(pgrep -f -- "--user-data-dir=$WORK/chrome" | tr '\n' ' ')
[ $rc -eq 0 ] && [ ${#alive[@]} -eq 0 ] && [ -z "$chromes" ] &&
    ok "demo stopped (exit 0); none of its ${#CHILDREN[@]} processes nor Chromium left" ||
    bad "demo exit $rc; left: ${alive[*]} chromium: $chromes"
echo "     screenshots: $ART/dashboard.png $ART/dashboard-overview.png; took $SECONDS s"
finish
