#!/bin/bash
# mesh-proxy's admin server (proxy/admin.c) on a real process: /metrics passes
# `promtool check metrics` (Debian package prometheus), /ready, /live, 404,
# 405, 431, HEAD and keep-alive answer as DESIGN.md says; with HTTP/1 traffic
# through the outbound listener, its request series show up.
# Usage: proxy_admin.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
command -v promtool > /dev/null || skip "promtool (Debian prometheus) missing"
command -v curl > /dev/null || skip "curl missing"
PROXY=$BUILD/mesh-proxy

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# an upstream for the outbound route
uport=$(free_port)
python3 -m http.server "$uport" --bind 127.0.0.1 --directory "$WORK" > "$WORK/upstream.log" 2>&1 &
upid=$!
# a slow upstream: a request in flight keeps a draining proxy up, so /ready can be seen at 503
sport=$(free_port)
python3 - "$sport" > "$WORK/slow.log" 2>&1 <<'PY' &
import http.server, sys, time
class Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print("started", flush=True)
        time.sleep(2)
        self.send_response(200); self.send_header("Content-Length", "3"); self.end_headers()
        self.wfile.write(b"ok\n")
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Slow).serve_forever()
PY
spid=$!
aport=$(free_port)
"$PROXY" --inbound off --outbound 127.0.0.1:0 --admin "127.0.0.1:$aport" \
    --namespace emojivoto --deployment vote-bot --pod 'vote-bot-"1"' \
    --route "web.emojivoto:80=127.0.0.1:$uport@emojivoto/web" --route "slow:80=127.0.0.1:$sport" \
    --drain-timeout 5s 2> "$WORK/proxy.log" &
ppid=$!
trap 'kill $ppid $upid $spid 2>/dev/null; wait $ppid $upid $spid 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do grep -q "admin listening" "$WORK/proxy.log" && break; sleep 0.1; done
grep -q "admin listening" "$WORK/proxy.log" || { echo "FAIL proxy did not start: $(cat "$WORK/proxy.log")"; exit 1; }
A=http://127.0.0.1:$aport

code() { curl -s -o "$WORK/body" -w '%{http_code}' "$@"; }

# promtool: exit 0, or 3 for lint findings where the only one allowed is the
# name Linkerd chose (response_latency_ms: "abbreviated units")
promcheck() {
    local out rc
    out=$(promtool check metrics < "$1" 2>&1); rc=$?
    if [ $rc -eq 0 ]; then return 0; fi
    [ $rc -eq 3 ] && ! grep -v '^response_latency_ms metric names should not contain abbreviated units$' <<< "$out" | grep -q .
}

c=$(code -D "$WORK/headers" "$A/metrics")
if [ "$c" = 200 ] && grep -qi '^content-type: text/plain; version=0.0.4' "$WORK/headers"; then
    ok "GET /metrics: 200 text/plain; version=0.0.4"
else
    bad "GET /metrics: $c $(cat "$WORK/headers")"
fi
if promcheck "$WORK/body"; then ok "promtool check metrics (idle proxy)"; else bad "promtool: $(promtool check metrics < "$WORK/body" 2>&1 | head -5)"; fi
for m in request_total response_total response_latency_ms tcp_open_total tcp_close_total \
         tcp_open_connections tcp_read_bytes_total tcp_write_bytes_total \
         tap_events_sent_total tap_events_dropped_total; do
    grep -q "^# TYPE $m " "$WORK/body" || bad "no family $m"
done
if grep -q '^tcp_open_total{direction="outbound",namespace="emojivoto",deployment="vote-bot",pod="vote-bot-\\"1\\""} ' "$WORK/body"; then
    ok "workload labels, escaped"
else
    bad "workload labels: $(grep '^tcp_open_total' "$WORK/body")"
fi

# traffic: an HTTP/1 request through the outbound listener to the upstream (a
# 404 from it: a success) and one whose authority has no route (a failure)
oport=$(sed -n 's/.*outbound listening on .*, port \([0-9]*\),.*/\1/p' "$WORK/proxy.log")
if [ -n "$oport" ]; then
    curl -s -o /dev/null --max-time 5 -H 'Host: web.emojivoto:80' "http://127.0.0.1:$oport/vote"
    curl -s -o /dev/null --max-time 5 -H $'Host: we"ird\\host' "http://127.0.0.1:$oport/"
fi
sleep 0.2
code "$A/metrics" > /dev/null
if grep -q '^request_total{direction="outbound",authority="web.emojivoto:80"' "$WORK/body"; then
    if promcheck "$WORK/body"; then ok "promtool check metrics after traffic"; else bad "promtool after traffic: $(promtool check metrics < "$WORK/body" 2>&1 | head -5)"; fi
    if grep -q '^response_total{direction="outbound",authority="web.emojivoto:80",.*dst_namespace="emojivoto",dst_deployment="web",classification="success",status_code="404"} 1$' "$WORK/body"; then
        ok "request through the proxy: counted with dst labels"
    else
        bad "response_total: $(grep '^response_total' "$WORK/body")"
    fi
else
    echo "note: no request series after traffic (HTTP/1 forwarding not in this build?)"
fi

c=$(code "$A/ready"); if [ "$c" = 200 ] && [ "$(cat "$WORK/body")" = ready ]; then ok "GET /ready: 200"; else bad "/ready: $c"; fi
c=$(code "$A/live"); if [ "$c" = 200 ] && [ "$(cat "$WORK/body")" = live ]; then ok "GET /live: 200"; else bad "/live: $c"; fi
c=$(code "$A/nope"); if [ "$c" = 404 ]; then ok "GET /nope: 404"; else bad "/nope: $c"; fi
c=$(code "$A/ready?verbose=1"); if [ "$c" = 200 ]; then ok "a query string is not the path"; else bad "/ready?…: $c"; fi
c=$(code -X POST -d x "$A/metrics" -D "$WORK/headers")
if [ "$c" = 405 ] && grep -qi '^allow: GET, HEAD' "$WORK/headers"; then ok "POST /metrics: 405 with Allow"; else bad "POST: $c"; fi
c=$(code -X DELETE "$A/live"); if [ "$c" = 405 ]; then ok "DELETE /live: 405"; else bad "DELETE: $c"; fi
# HEAD then GET on one connection: the GET's status line follows HEAD's empty line
r=$(timeout 5 python3 - "$aport" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\nGET /live HTTP/1.1\r\nHost: a\r\n\r\n")
got = b""
while not got.endswith(b"live\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
head, _, rest = got.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode(), b"Content-Length: 0" not in head, rest.split(b"\r\n")[0].decode())
PY
)
if [ "$r" = "HTTP/1.1 200 OK True HTTP/1.1 200 OK" ]; then ok "HEAD /metrics: 200, length announced, no body"; else bad "HEAD: $r"; fi
c=$(code -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" "$A/live")
if [ "$c" = 431 ]; then ok "9000-byte header: 431"; else bad "big head: $c"; fi
c=$(code -H "X-Big: $(head -c 7000 /dev/zero | tr '\0' a)" "$A/live")
if [ "$c" = 200 ]; then ok "7000-byte header: 200"; else bad "7000-byte head: $c"; fi
n=$(curl -sv "$A/live" "$A/ready" "$A/metrics" -o /dev/null -o /dev/null -o /dev/null 2>&1 | grep -c 'Re-using existing connection')
if [ "$n" -eq 2 ]; then ok "keep-alive: three requests, one connection"; else bad "keep-alive: $n reuses"; fi
# a bad request line: 400 and the connection closed
r=$(printf 'GET /live HTTP/1.1 junk\r\n\r\n' | timeout 5 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.sendall(sys.stdin.buffer.read())
print(s.recv(100).split(b"\r\n")[0].decode())' "$aport")
if [ "$r" = "HTTP/1.1 400 Bad Request" ]; then ok "bad request line: 400"; else bad "bad request: $r"; fi

# 64 admin connections at most; the rest are closed at once, and served again after
r=$(timeout 20 python3 - "$aport" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
time.sleep(0.2)
extra = socket.create_connection(("127.0.0.1", port)); extra.settimeout(3)
try:
    extra.sendall(b"GET /live HTTP/1.1\r\n\r\n"); refused = extra.recv(100) == b""
except OSError:
    refused = True
held[0].sendall(b"GET /live HTTP/1.1\r\n\r\n"); first = held[0].recv(100).startswith(b"HTTP/1.1 200")
for s in held: s.close()
time.sleep(0.2)
again = socket.create_connection(("127.0.0.1", port)); again.sendall(b"GET /live HTTP/1.1\r\n\r\n")
print(refused, first, again.recv(100).startswith(b"HTTP/1.1 200"))
PY
)
if [ "$r" = "True True True" ]; then ok "64 connections at most"; else bad "connection cap: $r"; fi

# SIGTERM with a request in flight: /ready turns 503, /live stays 200
if [ -n "$oport" ]; then
    curl -s -o "$WORK/slow.body" --max-time 10 -H 'Host: slow:80' "http://127.0.0.1:$oport/" &
    cpid=$!
    for _ in $(seq 50); do grep -q started "$WORK/slow.log" 2>/dev/null && break; sleep 0.1; done
fi
kill -TERM $ppid
sleep 0.3
if [ -n "$oport" ]; then
    c=$(code "$A/ready"); if [ "$c" = 503 ]; then ok "GET /ready while draining: 503"; else bad "/ready draining: $c"; fi
    c=$(code "$A/live"); if [ "$c" = 200 ]; then ok "GET /live while draining: 200"; else bad "/live draining: $c"; fi
    wait $cpid
    if [ "$(cat "$WORK/slow.body")" = ok ]; then ok "the request in flight finished"; else bad "in flight: $(cat "$WORK/slow.body")"; fi
fi
wait $ppid; rc=$?
if [ $rc -eq 0 ]; then ok "SIGTERM: exit 0"; else bad "SIGTERM: exit $rc $(tail -3 "$WORK/proxy.log")"; fi
finish
