#!/bin/bash
# Transparent interception end to end: two "pods" as network namespaces joined
# by a veth pair. Each runs `mesh init` (its own iptables NAT rules) and a
# `mesh-proxy --transparent` as uid 2102 (the rules let that uid's traffic
# out); pod B also runs an application (Python http.server on :8080) and the
# collector (on :8088, an ignored inbound port). A client in pod A connects to
# pod B's IP and port directly, knowing nothing of proxies: its request must
# succeed, and both proxies must tap it — outbound in A, inbound in B — with
# the workload labels of both sides. Root only (exit 77 otherwise); the root
# namespace's rules are never touched; namespaces and veths go on exit.
# Usage: transparent.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
BUILD=$1
MESH=$BUILD/mesh PROXY=$BUILD/mesh-proxy PY=/usr/bin/python3
pass=0 fail=0
ok()  { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
skip() { echo "SKIP: $1"; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root (network namespaces and iptables)"
for tool in ip iptables iptables-save setpriv nsenter curl sqlite3 timeout; do
    command -v $tool > /dev/null || skip "$tool missing (scripts/deps.sh installs it)"
done
[ -x $PY ] || skip "$PY missing"

NSA=kube-a-$$ NSB=kube-b-$$ VA=kva$$ VB=kvb$$
IPA=10.254.77.1 IPB=10.254.77.2
UID_PROXY=2102
WORK=$(mktemp -d /tmp/kube-e2e.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null; kill -9 "$p" 2>/dev/null; done
    ip netns del $NSA 2>/dev/null
    ip netns del $NSB 2>/dev/null
    ip link del $VA 2>/dev/null # gone with its namespace; only if the move failed
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ip netns add $NSA 2>/dev/null && ip netns add $NSB 2>/dev/null || skip "ip netns add does not work here"
ip link add $VA type veth peer name $VB 2>/dev/null || skip "cannot create a veth pair"
ip link set $VA netns $NSA && ip link set $VB netns $NSB || skip "cannot move veths into namespaces"
ina() { ip netns exec $NSA "$@"; }
inb() { ip netns exec $NSB "$@"; }
# background processes: nsenter execs (ip netns exec forks), so $! is the
# process itself and the cleanup's kill reaches it
bgin() { local ns=$1; shift; exec nsenter --net=/run/netns/$ns "$@"; } # only with &
ina ip link set lo up && ina ip addr add $IPA/30 dev $VA && ina ip link set $VA up
inb ip link set lo up && inb ip addr add $IPB/30 dev $VB && inb ip link set $VB up
ina iptables -t nat -L > /dev/null 2>&1 || skip "iptables does not work in a network namespace here"

# the rules: pod B also leaves its collector port alone (inbound from pod A's proxy)
ina "$MESH" init --proxy-uid $UID_PROXY > "$WORK/init-a.log" 2>&1 &&
    ok "mesh init in pod A" || { bad "mesh init in pod A: $(tail -3 "$WORK/init-a.log")"; exit 1; }
inb "$MESH" init --proxy-uid $UID_PROXY --inbound-ports-to-ignore 4190,4191,8088 > "$WORK/init-b.log" 2>&1 &&
    ok "mesh init in pod B" || { bad "mesh init in pod B: $(tail -3 "$WORK/init-b.log")"; exit 1; }
grep -q -- "-A PROXY_INIT_OUTPUT -p tcp -m comment --comment \"mesh-init/redirect-all-outgoing-to-proxy-port\" -j REDIRECT --to-ports 4140" "$WORK/init-a.log" &&
    ok "the rules after, as iptables-save prints them, are logged" || bad "no rules logged: $(tail -5 "$WORK/init-a.log")"

# pod B: the application and the collector
cat > "$WORK/app.py" <<'EOF'
import http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("hello from B; you are %s\n" % self.client_address[0]).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
EOF
bgin $NSB $PY "$WORK/app.py" 2> "$WORK/app.log" &
PIDS+=($!)
# beyond loopback the collector wants a token (issue 9); the proxies run as
# UID_PROXY and must be able to read it
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/token"
chmod 755 "$WORK"; chmod 644 "$WORK/token"
bgin $NSB "$MESH" collector --listen 0.0.0.0:8088 --db "$WORK/mesh.db" --token-file "$WORK/token" 2> "$WORK/collector.log" &
cpid=$!
PIDS+=($cpid)

start_proxy() { # NS NAME NS/DEPLOY/POD ARGS…
    local ns=$1 name=$2 labels=$3; shift 3
    IFS=/ read -r lns ldep lpod <<< "$labels"
    (bgin $ns setpriv --reuid $UID_PROXY --regid $UID_PROXY --clear-groups \
        "$PROXY" --transparent --namespace "$lns" --deployment "$ldep" --pod "$lpod" "$@" \
        2> "$WORK/$name.log") &
    PIDS+=($!)
}
start_proxy $NSA proxy-a test/client/client-0 --collector $IPB:8088 --token-file "$WORK/token"
start_proxy $NSB proxy-b test/server/server-0 --collector 127.0.0.1:8088 --token-file "$WORK/token"
ready() { # NS PORT: something accepts on 127.0.0.1:PORT inside NS (10 s at most)
    for _ in $(seq 100); do
        ip netns exec $1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$2" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
ready $NSB 8080 && ready $NSB 8088 && ready $NSA 4191 && ready $NSB 4191 ||
    { bad "pods did not come up: $(tail -2 "$WORK"/*.log)"; exit 1; }
grep -q "transparent" "$WORK/proxy-a.log" && ok "both proxies run transparent as uid $UID_PROXY" ||
    bad "proxy A: $(cat "$WORK/proxy-a.log")"

# the client in pod A talks to pod B's IP directly
got=$(ina timeout 10 curl -s -m 5 "http://$IPB:8080/hello")
[ "${got%%;*}" = "hello from B" ] && ok "the request from pod A to $IPB:8080 succeeds" ||
    bad "the request failed: '$got'"
# the application sees its proxy (loopback), not pod A: the request went through both
[ "${got##*you are }" = "127.0.0.1" ] && ok "pod B's application got it from its proxy on loopback" ||
    bad "pod B's application saw the client as '${got##*you are }'"
ina timeout 10 curl -s -m 5 -o /dev/null "http://$IPB:8080/second"
# a port nothing listens on: the proxies report the failure instead of hanging
code=$(ina timeout 10 curl -s -m 5 -o /dev/null -w '%{http_code}' "http://$IPB:9999/nothing")
[ "$code" = 502 ] && ok "to a closed port: 502 from the inbound proxy" || bad "to a closed port: $code"

# SIGTERM: each proxy drains and delivers its events, then the collector stops
for p in "${PIDS[@]:2}"; do kill "$p" 2>/dev/null; done
for p in "${PIDS[@]:2}"; do timeout 15 tail --pid="$p" -f /dev/null; done
kill $cpid; timeout 15 tail --pid=$cpid -f /dev/null

san=$(grep -l "Sanitizer\|runtime error" "$WORK"/proxy-*.log "$WORK/collector.log" 2>/dev/null)
[ -z "$san" ] && ok "no sanitizer report from the proxies or the collector" ||
    bad "sanitizer reports in: $san $(grep -m3 "Sanitizer\|runtime error" $san)"

q() { sqlite3 -readonly "file:$WORK/mesh.db" "$1" 2>&1; }
got=$(q "select proxy_direction, path, status, ifnull(src_ns,'-') || '/' || ifnull(src_deploy,'-') || '/' || ifnull(src_pod,'-'),
                ifnull(dst_ns,'-') || '/' || ifnull(dst_deploy,'-') || '/' || ifnull(dst_pod,'-'), dst
         from events where path != '/nothing' order by path, proxy_direction" | tr '|\n' '  ')
want="inbound /hello 200 test/client/client-0 test/server/server-0 127.0.0.1:8080 outbound /hello 200 test/client/client-0 test/server/server-0 $IPB:8080 inbound /second 200 test/client/client-0 test/server/server-0 127.0.0.1:8080 outbound /second 200 test/client/client-0 test/server/server-0 $IPB:8080 "
[ "$got" = "$want" ] && ok "both proxies tapped both requests: outbound in A to $IPB:8080, inbound in B, labelled test/client → test/server" ||
    { bad "events differ"; echo " got: $got"; echo "want: $want"; }
got=$(q "select proxy_direction || ' ' || ifnull(status, '-') from events where path = '/nothing' order by proxy_direction" | tr '\n' ' ')
[ "$got" = "inbound 502 outbound 502 " ] && ok "the failed request is tapped on both sides as 502" || bad "failed request events: $got"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
