#!/bin/bash
# Prometheus and Grafana against a real demo (issue 8): promtool accepts the
# shipped config and rules; a real Prometheus on loopback, fed the demo's file_sd
# targets, scrapes the four sidecars; then every PromQL expression of the Grafana
# dashboards (panels and variable queries, template variables filled in) and of
# the recording rules (as Prometheus loaded them) returns data through
# /api/v1/query, and so does every recorded series.
# Usage: prometheus.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
command -v prometheus > /dev/null && command -v promtool > /dev/null ||
    skip "prometheus/promtool missing (Debian: apt-get install prometheus)"
command -v python3 > /dev/null || skip "python3 missing"
[ -x "$BUILD/mesh-proxy" ] || skip "mesh-proxy not built"
DASH=$SRC/dashboards
dpid= ppid_=
cleanup() {
    [ -n "$ppid_" ] && kill "$ppid_" 2> /dev/null && wait "$ppid_" 2> /dev/null
    [ -n "$dpid" ] && kill -TERM "$dpid" 2> /dev/null && wait "$dpid" 2> /dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
# this demo's state and targets files stay in WORK: another demo on the machine is not ours
mkdir -m 700 "$WORK/xdg"
export XDG_RUNTIME_DIR=$WORK/xdg TMPDIR=$WORK
unset MESH_COLLECTOR
SECONDS=0

out=$(promtool check rules "$DASH/prometheus/mesh.rules.yml" 2>&1) &&
    ok "promtool check rules: $(grep -o 'SUCCESS.*' <<< "$out")" || bad "promtool check rules: $out"
out=$(promtool check config "$DASH/prometheus/prometheus.yml" 2>&1) &&
    ok "promtool check config prometheus.yml" || bad "promtool check config: $out"

# the demo, for at most 80 s whatever happens to this script
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
targets=$(sed -n 's/^  prometheus \([^ ]*\) .*/\1/p' "$WORK/demo.out")
[ "$targets" = "$XDG_RUNTIME_DIR/mesh/demo-targets.json" ] && ok "the demo names its file_sd file ($targets)" ||
    bad "file_sd path: '$targets' (banner: $(grep prometheus "$WORK/demo.out"))"
check=$(python3 - "$targets" <<'EOF'
import json, sys
try:
    groups = json.load(open(sys.argv[1]))
    deps = sorted(g["labels"]["deployment"] for g in groups)
    assert deps == ["emoji", "vote-bot", "voting", "web"], deps
    assert all(len(g["targets"]) == 1 and g["targets"][0].startswith("127.0.0.1:") for g in groups)
    assert all(g["labels"]["namespace"] == "emojivoto" and g["labels"]["pod"].startswith(g["labels"]["deployment"] + "-") for g in groups)
    print("ok " + ", ".join("%s=%s" % (g["labels"]["pod"], g["targets"][0]) for g in groups))
except Exception as e:
    print("FAIL %r" % e)
EOF
)
[ "${check%% *}" = ok ] && ok "file_sd targets: ${check#ok }" || bad "file_sd targets: $check $(cat "$targets" 2>&1)"

# Prometheus: the shipped config and rules, a 1 s scrape and evaluation, this demo's targets
cp "$DASH/prometheus/mesh.rules.yml" "$WORK/"
sed -e 's/^\(  *\)scrape_interval: .*/\1scrape_interval: 1s/' \
    -e 's/^\(  *\)scrape_timeout: .*/\1scrape_timeout: 1s/' \
    -e 's/^\(  *\)evaluation_interval: .*/\1evaluation_interval: 1s/' \
    -e 's/^\(  *\)refresh_interval: .*/\1refresh_interval: 1s/' \
    -e "s#^\\(  *- \\)/tmp/mesh-demo-.*-targets.json#\\1$targets#" \
    "$DASH/prometheus/prometheus.yml" > "$WORK/prometheus.yml"
grep -q "$targets" "$WORK/prometheus.yml" || bad "could not point the config at $targets"
port=$(free_port)
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
    --web.listen-address="127.0.0.1:$port" --storage.tsdb.retention.time=1h \
    > "$WORK/prometheus.log" 2>&1 &
ppid_=$!
API=http://127.0.0.1:$port
for _ in $(seq 200); do
    curl -sf "$API/-/ready" > /dev/null 2>&1 && break
    kill -0 $ppid_ 2> /dev/null || break
    sleep 0.1
done
curl -sf "$API/-/ready" > /dev/null 2>&1 && ok "prometheus ready on 127.0.0.1:$port" ||
    { echo "FAIL prometheus did not start:"; tail -20 "$WORK/prometheus.log"; exit 1; }

# data is in when the four sidecars are up and the demo's rates and latencies show
q() { curl -sf --max-time 5 "$API/api/v1/query" --data-urlencode "query=$1"; }
n() { q "$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["result"]))' 2> /dev/null; }
start=$SECONDS
while [ $((SECONDS - start)) -lt 30 ]; do
    [ "$(n 'up{job="mesh-proxy"} == 1')" = 4 ] &&
        [ "$(n 'histogram_quantile(0.5, sum by (deployment, le) (rate(response_latency_ms_bucket[30s])))')" = 4 ] &&
        [ "$(n 'deployment:response_latency_ms:p99_1m')" -ge 4 ] && break
    sleep 0.5
done
[ "$(n 'up{job="mesh-proxy"} == 1')" = 4 ] && ok "4 sidecars scraped, data in after $((SECONDS - start)) s" ||
    bad "targets up: $(q 'up' | head -c 600)"

# every expression of the dashboards and the rules
python3 - "$API" "$DASH/grafana"/*.json > "$WORK/exprs.out" <<'EOF'
import json, re, sys, time, urllib.parse, urllib.request
api, files = sys.argv[1], sys.argv[2:]
# what Grafana fills in, with the demo's names; web has inbound and outbound traffic
VARS = {"__rate_interval": "30s", "__interval": "15s", "__range": "5m", "__range_s": "300",
        "namespace": "emojivoto", "deployment": "web", "datasource": "prometheus"}
def fill(expr):
    out = re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", lambda m: VARS.get(m.group(1) or m.group(2), m.group(0)), expr)
    if "$" in out:
        raise ValueError("unknown template variable in " + out)
    return out
def label_values(query):  # Grafana's variable query → the PromQL that answers it
    m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", query, re.S)
    return "count by (%s) (%s)" % (m.group(2), m.group(1)) if m else query

exprs = []  # (where, expr)
def walk(node, where, title):
    if isinstance(node, dict):
        title = node.get("title", title) if isinstance(node.get("title"), str) else title
        if isinstance(node.get("expr"), str):
            exprs.append(("%s: %s [%s]" % (where, title, node.get("refId", "?")), node["expr"]))
        for v in node.values():
            walk(v, where, title)
    elif isinstance(node, list):
        for v in node:
            walk(v, where, title)
for f in files:
    dash = json.load(open(f))
    name = f.rsplit("/", 1)[-1]
    walk(dash.get("panels", []), name, "")
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            exprs.append(("%s: variable $%s" % (name, var["name"]), label_values(query)))
def get(path, **params):
    with urllib.request.urlopen(api + path + ("?" + urllib.parse.urlencode(params) if params else ""), timeout=5) as r:
        return json.load(r)
rules = get("/api/v1/rules")["data"]["groups"]
records = []
for g in rules:
    for r in g["rules"]:
        exprs.append(("mesh.rules.yml: %s" % r["name"], r["query"]))
        records.append(r["name"])
        if r.get("health") != "ok":
            print("FAIL rule %s: health %s %s" % (r["name"], r.get("health"), r.get("lastError", "")))
for name in records:
    exprs.append(("recorded series", name))
print("info %d expressions: %d from the dashboards, %d rules, %d recorded series" % (
    len(exprs), len(exprs) - 2 * len(records), len(records), len(records)))
pending = list(exprs)
deadline = time.time() + 20  # a rate needs two scrapes, a rule one evaluation
while True:
    left = []
    for where, expr in pending:
        try:
            res = get("/api/v1/query", query=fill(expr))
            n = len(res["data"]["result"]) if res.get("status") == "success" else 0
            why = "" if res.get("status") == "success" else res.get("error", "")
        except Exception as e:
            n, why = 0, str(e)
        if n > 0:
            print("ok   %s: %d series" % (where, n))
        else:
            left.append((where, expr, why))
    if not left or time.time() > deadline:
        break
    pending = [(w, e) for w, e, _ in left]
    time.sleep(1)
for where, expr, why in left:
    print("FAIL %s: no data%s: %s" % (where, " (" + why + ")" if why else "", " ".join(expr.split())))
EOF
total=0 good=0
while read -r verdict rest; do
    case $verdict in
    ok) good=$((good + 1)); total=$((total + 1)) ;;
    FAIL) bad "$rest"; total=$((total + 1)) ;;
    info) echo "     $rest" ;;
    esac
done < "$WORK/exprs.out"
[ "$total" -ge 40 ] && [ "$good" = "$total" ] && ok "$good of $total expressions returned data" ||
    bad "$good of $total expressions returned data"

# the end: Prometheus, then the demo (and its nine processes) stopped
kill "$ppid_"; wait "$ppid_" 2> /dev/null; ppid_=
kill -TERM $dpid; wait $dpid; rc=$?; dpid=
alive=()
for p in "${CHILDREN[@]}"; do kill -0 "$p" 2> /dev/null && alive+=("$p"); done
[ $rc -eq 0 ] && [ ${#alive[@]} -eq 0 ] && [ ! -e "$targets" ] &&
    ok "demo stopped (exit 0), none of its ${#CHILDREN[@]} processes left, targets file removed" ||
    bad "demo exit $rc, left: ${alive[*]}, targets: $(ls "$targets" 2>&1)"
echo "     took $SECONDS s"
finish
