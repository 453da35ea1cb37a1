#!/bin/bash
# mesh-proxy's core with real sockets: bad usage gets one line and exit 2;
# options come from the environment; a silent connection (a server that
# speaks first) is forwarded as opaque TCP after the detect timeout; the
# connection cap closes what is over it; SIGTERM lets the request in flight
# finish, refuses new connections, and exits 0.
# Usage: proxy_core.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
PY=/usr/bin/python3
trap 'stop_proxies; kill $bpid $spid 2>/dev/null; rm -rf "$WORK"' EXIT
bpid= spid=

# ---- usage errors: one line naming the input, exit 2 ------------------------------------
usage_case() { # WHAT ARGS…: mesh-proxy ARGS must fail with exit 2 and one line naming WHAT
    local what=$1; shift
    "$PROXY" "$@" > /dev/null 2> "$WORK/err"
    local rc=$? lines
    lines=$(wc -l < "$WORK/err")
    if [ $rc -eq 2 ] && [ "$lines" -eq 1 ] && grep -qF -- "$what" "$WORK/err"; then
        ok "usage: $* → exit 2: $(cat "$WORK/err")"
    else
        bad "usage: $* → exit $rc, $lines line(s): $(cat "$WORK/err")"
    fi
}
usage_case --bogus --bogus
usage_case --admin --admin
usage_case "web=nowhere" --route web=nowhere
usage_case "--max-conns 0" --max-conns 0
usage_case "--idle-timeout soon" --idle-timeout soon
usage_case "$WORK/none.routes" --routes "$WORK/none.routes"
printf 'web:80=127.0.0.1:1\nbroken line\n' > "$WORK/bad.routes"
usage_case "broken" --routes "$WORK/bad.routes"
usage_case "stray" --outbound 127.0.0.1:0 stray
MESH_PROXY_OUTBOUND=nonsense usage_case nonsense
"$PROXY" --help | grep -q -- "--inbound-to" && ok "--help names the options" || bad "--help"

# a port already taken: a runtime failure (exit 1), one line
$PY -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(30)' > "$WORK/taken" &
spid=$!
for _ in $(seq 100); do [ -s "$WORK/taken" ] && break; sleep 0.05; done
"$PROXY" --outbound 127.0.0.1:$(cat "$WORK/taken") --admin off 2> "$WORK/err"
rc=$?
[ $rc -eq 1 ] && grep -q "listen on 127.0.0.1:$(cat "$WORK/taken")" "$WORK/err" &&
    ok "port in use → exit 1: $(tail -1 "$WORK/err")" || bad "port in use → exit $rc: $(cat "$WORK/err")"
kill $spid 2>/dev/null; wait $spid 2>/dev/null; spid=

# ---- a server that speaks first: opaque TCP after the detect timeout ------------------------
# It greets, then echoes one line back upper-cased, then closes.
cat > "$WORK/greeter.py" <<'EOF'
import socket, sys, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0)); srv.listen(64)
print(srv.getsockname()[1], flush=True)
def serve(c):
    c.sendall(b"220 greeter ready\r\n")
    data = b""
    while b"\n" not in data:
        chunk = c.recv(4096)
        if not chunk: break
        data += chunk
    c.sendall(data.upper()); c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
$PY "$WORK/greeter.py" > "$WORK/greeter.port" &
bpid=$!
for _ in $(seq 100); do [ -s "$WORK/greeter.port" ] && break; sleep 0.05; done
bport=$(cat "$WORK/greeter.port")
MESH_PROXY_OUTBOUND=127.0.0.1:0 MESH_PROXY_ADMIN=off start_proxy speak \
    --route "*=127.0.0.1:$bport" --detect-timeout 200ms --max-conns 3 || exit 1
[ -n "$pout" ] && ok "listeners from the environment (outbound port $pout)" || bad "no outbound port: $(cat "$WORK/speak.log")"
got=$($PY - "$pout" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
t0 = time.time()
greeting = s.recv(100)
waited = time.time() - t0
s.sendall(b"hello there\n")
reply = b""
while True:
    chunk = s.recv(100)
    if not chunk: break
    reply += chunk
print(repr(greeting), repr(reply), "%.2f" % waited)
EOF
)
case $got in
"b'220 greeter ready\\r\\n' b'HELLO THERE\\n' 0."[1-9]*) ok "server-speaks-first forwarded as TCP after the detect timeout: $got" ;;
*) bad "server-speaks-first: $got" ;;
esac

# ---- the connection cap --------------------------------------------------------------------
got=$($PY - "$pout" <<'EOF'
import socket, sys
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
for s in held:  # each greets once it is forwarded
    assert s.recv(100).startswith(b"220"), "held connection not forwarded"
extra = socket.create_connection(("127.0.0.1", port), timeout=5)
try:
    data = extra.recv(100)
    print("over-cap:", "closed" if data == b"" else repr(data))
except ConnectionResetError:
    print("over-cap: closed")
for s in held: s.close()
EOF
)
[ "$got" = "over-cap: closed" ] && ok "a connection over --max-conns 3 is closed at once" || bad "cap: $got"
stop_proxies

# ---- SIGTERM: the request in flight finishes, then exit 0 ------------------------------------
cat > "$WORK/slow.py" <<'EOF'
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        time.sleep(1.0)
        body = b"slow answer\n"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
EOF
kill $bpid 2>/dev/null; wait $bpid 2>/dev/null
$PY "$WORK/slow.py" > "$WORK/slow.port" &
bpid=$!
for _ in $(seq 100); do [ -s "$WORK/slow.port" ] && break; sleep 0.05; done
start_proxy drain --outbound 127.0.0.1:0 --admin off --route "*=127.0.0.1:$(cat "$WORK/slow.port")" || exit 1
curl -s -o "$WORK/slow.out" -w '%{http_code}' "http://127.0.0.1:$pout/" > "$WORK/slow.code" &
cpid=$!
sleep 0.3 # the request is in flight: the backend answers after 1 s
kill -TERM $ppid
sleep 0.1
curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$pout/" && bad "a new connection was accepted while draining" ||
    ok "no new connection accepted while draining"
wait $cpid
[ "$(cat "$WORK/slow.code")" = 200 ] && grep -q "slow answer" "$WORK/slow.out" &&
    ok "the request in flight at SIGTERM finished (200)" || bad "in flight: $(cat "$WORK/slow.code")"
wait $ppid; rc=$?
PROXY_PIDS=()
[ $rc -eq 0 ] && ok "exit 0 after draining" || bad "exit $rc after SIGTERM: $(tail -2 "$WORK/drain.log")"
grep -q "draining 1 connection" "$WORK/drain.log" && ok "drain logged" || bad "log: $(cat "$WORK/drain.log")"
finish
