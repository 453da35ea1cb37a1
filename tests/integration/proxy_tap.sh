#!/bin/bash
# Tap problems never touch traffic. mesh-proxy is told of a collector that is
# not running and given a queue of one batch: every request through it still
# succeeds, the events past the queue are dropped and counted (stderr at exit
# and tap_events_dropped_total on /metrics); when the collector comes up the
# proxy reconnects and delivers what it kept, so stored + dropped = sent.
# Usage: proxy_tap.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
for tool in nginx h2load curl sqlite3; do
    command -v $tool > /dev/null || skip "$tool missing (scripts/deps.sh installs it)"
done
trap 'stop_proxies; kill $cpid $npid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
cpid= npid=
n=5000

# nginx, one worker, in WORK: the backend
nport=$(free_port)
mkdir -p "$WORK/www" "$WORK/nginx"
echo "hello from nginx" > "$WORK/www/index.html"
cat > "$WORK/nginx/nginx.conf" <<EOF
worker_processes 1; daemon off; master_process off;
pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log error;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $WORK/nginx/b; proxy_temp_path $WORK/nginx/p;
  fastcgi_temp_path $WORK/nginx/f; uwsgi_temp_path $WORK/nginx/u; scgi_temp_path $WORK/nginx/s;
  server { listen 127.0.0.1:$nport; root $WORK/www; } }
EOF
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" 2> "$WORK/nginx.log" &
npid=$!
wait_port $nport || exit 1

cport=$(free_port) aport=$(free_port)
start_proxy tap --outbound 127.0.0.1:0 --admin 127.0.0.1:$aport --route "*=127.0.0.1:$nport" \
    --collector 127.0.0.1:$cport --tap-queue 1 --namespace test --deployment client || exit 1
out=$(h2load --h1 -n $n -c 4 "http://127.0.0.1:$pout/index.html" 2>&1)
succeeded=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' <<< "$out")
[ "$succeeded" = $n ] && ok "all $n requests succeeded with the collector down" ||
    bad "with the collector down: $(grep '^requests:' <<< "$out")"
metric() { curl -s "http://127.0.0.1:$aport/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $NF } END { print s + 0 }'; }
dropped=$(metric tap_events_dropped_total)
[ "$dropped" -gt 0 ] && [ "$dropped" -lt $n ] && ok "$dropped events dropped past the queue (metrics)" ||
    bad "tap_events_dropped_total = $dropped"

# the collector comes up: the proxy reconnects and sends what it kept
"$MESH" collector --listen 127.0.0.1:$cport --db "$WORK/mesh.db" 2> "$WORK/collector.log" &
cpid=$!
count() { sqlite3 -readonly "file:$WORK/mesh.db" 'select count(*) from events' 2> /dev/null || echo 0; }
want=$((n - dropped))
for _ in $(seq 300); do [ "$(count)" -ge $want ] && break; sleep 0.1; done
stored=$(count)
[ "$stored" -eq $want ] && ok "after reconnecting: $stored stored + $dropped dropped = $n sent" ||
    bad "stored $stored, dropped $dropped, sent $n"
sent=$(metric tap_events_sent_total)
[ "$sent" -eq "$stored" ] && ok "tap_events_sent_total = $sent" || bad "tap_events_sent_total = $sent, stored $stored"
requests=$(metric request_total)
[ "$requests" -eq $n ] && ok "request_total = $n" || bad "request_total = $requests"

# every stored event says what the request said
rows=$(sqlite3 -readonly "file:$WORK/mesh.db" "select count(*) from events where method = 'GET' and path = '/index.html' and status = 200 and proxy_direction = 'outbound' and src_deploy = 'client'" 2>&1)
[ "$rows" = "$stored" ] && ok "all $stored stored events: GET /index.html 200, outbound, from deploy client" ||
    bad "stored events that match: $rows of $stored"

# a quiet proxy's events show up live, not when a batch of 1000 is full
for i in 1 2 3; do curl -s -o /dev/null "http://127.0.0.1:$pout/index.html?live=$i"; done
for _ in $(seq 40); do [ "$(count)" -ge $((stored + 3)) ] && break; sleep 0.05; done
live=$(($(count) - stored))
[ $live -eq 3 ] && ok "3 more requests stored within 2 s, while the proxy runs" || bad "$live of 3 more requests stored within 2 s"
stored=$((stored + live))

kill -TERM $ppid; wait $ppid; rc=$?
PROXY_PIDS=()
[ $rc -eq 0 ] && grep -q "tap events: $stored acknowledged, $dropped dropped" "$WORK/tap.log" &&
    ok "exit 0: $(tail -1 "$WORK/tap.log")" || bad "exit $rc: $(tail -2 "$WORK/tap.log")"
finish
