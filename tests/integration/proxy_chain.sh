#!/bin/bash
# Two proxies in a row, as two meshed workloads talk: client → outbound proxy
# (test/client) → inbound proxy (test/server) → application. The outbound
# proxy says whose request it forwards (mesh-src), the inbound one takes that
# off before the application sees it and labels its events' source with it;
# the inbound proxy answers with its own labels (mesh-dst), which label the
# outbound event's destination though the route names none. What a client
# or an application sends under those names is dropped, never believed.
# Both proxies' events reach one collector, for HTTP/1.1 and for h2c.
# Usage: proxy_chain.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
for tool in curl nghttp nghttpd sqlite3; do
    command -v $tool > /dev/null || skip "$tool missing (scripts/deps.sh installs it)"
done
PY=/usr/bin/python3
apid= hpid=

# the application: answers with the request's header names, one per line
cat > "$WORK/app.py" <<'EOF'
import http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = "".join("%s: %s\n" % (k.lower(), v) for k, v in self.headers.items()).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.send_header("mesh-dst", "evil/evil/evil"); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
EOF
$PY "$WORK/app.py" > "$WORK/app.port" &
apid=$!
for _ in $(seq 100); do [ -s "$WORK/app.port" ] && break; sleep 0.05; done
aport=$(cat "$WORK/app.port")
mkdir -p "$WORK/www" && echo "h2 hello" > "$WORK/www/index.html"
hport=$(free_port)
nghttpd --no-tls -d "$WORK/www" $hport > /dev/null 2>&1 &
hpid=$!
wait_port $hport || exit 1
start_collector
# after start_collector, whose own trap this replaces: every process started
# here must end with the test, or ctest waits on the pipe they hold
trap 'stop_proxies; kill $apid $hpid $cpid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT

chain() { # APP_PORT: starts the two proxies in front of it; sets out_port
    start_proxy "server-$1" --inbound 127.0.0.1:0 --inbound-to 127.0.0.1:$1 --outbound off \
        --admin off --collector 127.0.0.1:$port --namespace test --deployment server --pod server-0 || exit 1
    local in_port=$pin
    start_proxy "client-$1" --outbound 127.0.0.1:0 --admin off --collector 127.0.0.1:$port \
        --route "svc.test:80=127.0.0.1:$in_port" --namespace test --deployment client --pod client-0 || exit 1
    out_port=$pout
}
chain $aport
seen=$(curl -s -D "$WORK/h1.head" -H "Host: svc.test:80" -H "mesh-src: evil/evil/evil" "http://127.0.0.1:$out_port/hello")
[ -n "$seen" ] && ! grep -q "^mesh-src" <<< "$seen" && ok "HTTP/1.1: the application does not see mesh-src" ||
    bad "HTTP/1.1: the application saw: $(grep -i mesh-src <<< "$seen")"
! grep -qi "^mesh-dst" "$WORK/h1.head" && ok "HTTP/1.1: the client does not see mesh-dst" ||
    bad "HTTP/1.1: the client saw: $(grep -i mesh-dst "$WORK/h1.head")"
curl -s -o /dev/null -H "Host: svc.test:80" "http://127.0.0.1:$out_port/second"
h1_out=$out_port
chain $hport
nghttp -v -H ":authority: svc.test:80" -H "mesh-src: evil/evil/evil" "http://127.0.0.1:$out_port/index.html" > "$WORK/nghttp.out" 2>&1 &&
    ok "h2c through both proxies" || bad "h2c: $(tail -3 "$WORK/nghttp.out")"
! grep -q "mesh-dst" "$WORK/nghttp.out" && ok "h2c: the client does not see mesh-dst" || bad "h2c: the client saw mesh-dst"
stop_proxies # SIGTERM: each drains and delivers its events before exiting

q() { sqlite3 -readonly "file:$WORK/mesh.db" "$1" 2>&1; }
# every request gives two events: the client's outbound one and the server's inbound one
got=$(q "select proxy_direction, proto, path, ifnull(src_ns,'-') || '/' || ifnull(src_deploy,'-') || '/' || ifnull(src_pod,'-'),
                ifnull(dst_ns,'-') || '/' || ifnull(dst_deploy,'-') || '/' || ifnull(dst_pod,'-'), status
         from events order by proto, path, proxy_direction" | tr '\n' ' ')
want="inbound h2 /index.html test/client/client-0 test/server/server-0 200 outbound h2 /index.html test/client/client-0 test/server/server-0 200 inbound http/1.1 /hello test/client/client-0 test/server/server-0 200 outbound http/1.1 /hello test/client/client-0 test/server/server-0 200 inbound http/1.1 /second test/client/client-0 test/server/server-0 200 outbound http/1.1 /second test/client/client-0 test/server/server-0 200 "
got=$(tr '|' ' ' <<< "$got")
[ "$got" = "$want" ] && ok "six events, from test/client/client-0 to test/server/server-0 on both sides, none from evil" ||
    { bad "events differ"; echo " got: $got"; echo "want: $want"; }
finish
