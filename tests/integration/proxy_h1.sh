#!/bin/bash
# mesh-proxy forwarding HTTP/1.1 and opaque TCP between real peers: curl, wrk
# and raw sockets in front, nginx (static files, and echo_request_body from
# Debian's libnginx-mod-http-echo when installed) and a TCP echo server behind,
# the collector taking the tap events. Checks bodies byte for byte (Content-Length,
# chunked, 100-continue, HTTP/1.0), keep-alive, pipelining, HEAD, the proxy's own
# answers (431, 408, 502 for no route and for a dead backend), half-closed TCP,
# a short wrk run with no errors, a clean drain on SIGTERM, and that the stored
# events are the requests sent, field by field.
# Usage: proxy_h1.sh BUILD_DIR SOURCE_DIR SHARED_DIR   (exit 77: skipped)
set -u
. "$(dirname "$0")/../tools/testlib.sh"
PROXY=$BUILD/mesh-proxy
TOOLS=$SRC/tests/tools
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
command -v nginx > /dev/null || skip "nginx not found (Debian nginx-light)"
command -v curl > /dev/null || skip "curl not found"
command -v sqlite3 > /dev/null || skip "sqlite3 not found"
[ -x "$PROXY" ] || { echo "FAIL $PROXY is not built"; echo "0 passed, 1 failed"; exit 1; }
ECHO_MOD=/usr/lib/nginx/modules/ngx_http_echo_module.so

start_collector
pids=()
cleanup() {
    for p in "${pids[@]}" $cpid; do kill "$p" 2> /dev/null; done
    for p in "${pids[@]}" $cpid; do wait "$p" 2> /dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 100); do eval "$1" && return 0; sleep 0.05; done; return 1; }

# ---- peers --------------------------------------------------------------------------------
NGX=$(free_port)
DEAD=$(free_port) # nothing listens there
mkdir -p "$WORK/www" "$WORK/ngx"
echo hello > "$WORK/www/index.html"
head -c 3000000 /dev/urandom > "$WORK/www/big.bin"
head -c 2500000 /dev/urandom > "$WORK/post.bin"
have_echo=0
[ -f "$ECHO_MOD" ] && have_echo=1
{
    [ $have_echo = 1 ] && echo "load_module $ECHO_MOD;"
    cat << EOF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/ngx/nginx.pid;
error_log $WORK/ngx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/ngx/body;
    proxy_temp_path $WORK/ngx/proxy;
    fastcgi_temp_path $WORK/ngx/fastcgi;
    uwsgi_temp_path $WORK/ngx/uwsgi;
    scgi_temp_path $WORK/ngx/scgi;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$NGX;
        root $WORK/www;
        client_max_body_size 64m;
        client_body_buffer_size 64m;
EOF
    [ $have_echo = 1 ] && echo "        location /echo { echo_read_request_body; echo_request_body; }"
    echo "    }"
    echo "}"
} > "$WORK/ngx/nginx.conf"
nginx -e "$WORK/ngx/error.log" -c "$WORK/ngx/nginx.conf" -p "$WORK/ngx" > "$WORK/ngx/out" 2>&1 &
pids+=($!)
"$PY" "$TOOLS/tcp_echo.py" > "$WORK/echo.port" &
pids+=($!)
"$PY" "$TOOLS/h1_oneshot.py" > "$WORK/oneshot.port" &
pids+=($!)
wait_for "curl -sf -o /dev/null http://127.0.0.1:$NGX/index.html" || { bad "nginx did not start: $(cat "$WORK/ngx/error.log" "$WORK/ngx/out")"; finish; exit; }
wait_for "[ -s '$WORK/echo.port' ]" || { bad "tcp_echo did not start"; finish; exit; }
ECHO_PORT=$(head -n1 "$WORK/echo.port")
wait_for "[ -s '$WORK/oneshot.port' ]" || { bad "h1_oneshot did not start"; finish; exit; }
ONESHOT=$(head -n1 "$WORK/oneshot.port")

# ---- the proxy ------------------------------------------------------------------------------
"$PROXY" --outbound 127.0.0.1:0 --inbound 127.0.0.1:0 --inbound-to "127.0.0.1:$ECHO_PORT" \
    --admin off --collector "127.0.0.1:$port" --namespace test --deployment h1 --pod h1-0 \
    --route "web.local=127.0.0.1:$NGX" --route "down.local=127.0.0.1:$DEAD" \
    --route "oneshot.local=127.0.0.1:$ONESHOT" \
    --max-header-bytes 16384 --header-timeout 1s --idle-timeout 2s --drain-timeout 5s 2> "$WORK/proxy.log" &
ppid=$!
pids+=($ppid)
wait_for "grep -q 'inbound listening' '$WORK/proxy.log' && grep -q 'outbound listening' '$WORK/proxy.log'" ||
    { bad "mesh-proxy did not start: $(cat "$WORK/proxy.log")"; finish; exit; }
OUT=$(sed -n 's/.*outbound listening on .*, port \([0-9]*\),.*/\1/p' "$WORK/proxy.log")
IN=$(sed -n 's/.*inbound listening on .*, port \([0-9]*\),.*/\1/p' "$WORK/proxy.log")
U=http://127.0.0.1:$OUT
H=(-H 'Host: web.local')
: > "$WORK/expect" # METHOD PATH STATUS of every request sent through, in order
sent() { echo "$1 $2 $3" >> "$WORK/expect"; }

# ---- HTTP/1.1 -----------------------------------------------------------------------------
body=$(curl -s "${H[@]}" "$U/index.html")
[ "$body" = hello ] && ok "GET through the proxy" || bad "GET: '$body'"
sent GET /index.html 200

conns=$(curl -s "${H[@]}" -o /dev/null -o /dev/null -o /dev/null -w '%{num_connects} ' \
    "$U/index.html" "$U/index.html?2" "$U/index.html?3")
[ "$conns" = "1 0 0 " ] && ok "keep-alive: three requests on one connection" || bad "keep-alive: num_connects '$conns'"
sent GET /index.html 200; sent GET '/index.html?2' 200; sent GET '/index.html?3' 200

curl -s "${H[@]}" -o "$WORK/big.got" "$U/big.bin"
cmp -s "$WORK/big.got" "$WORK/www/big.bin" && ok "3 MB GET byte-exact" || bad "3 MB GET differs"
sent GET /big.bin 200

head=$(curl -s -I "${H[@]}" "$U/big.bin" | tr -d '\r')
echo "$head" | grep -q '^HTTP/1.1 200' && echo "$head" | grep -qi '^content-length: 3000000$' &&
    ok "HEAD: 200 with the GET's Content-Length, no body" || bad "HEAD: $head"
sent HEAD /big.bin 200

code=$(curl -s -o /dev/null -w '%{http_code}' "${H[@]}" "$U/nope")
[ "$code" = 404 ] && ok "404 passes through" || bad "404: $code"
sent GET /nope 404

if [ $have_echo = 1 ]; then
    # curl sends Expect: 100-continue for a body this big; nginx answers 100 first
    curl -s "${H[@]}" --data-binary @"$WORK/post.bin" -o "$WORK/post.got" -w '%{http_code}' "$U/echo" > "$WORK/code"
    cmp -s "$WORK/post.got" "$WORK/post.bin" && ok "2.5 MB POST (Content-Length, 100-continue) echoed byte-exact" ||
        bad "POST echo differs ($(cat "$WORK/code"), $(stat -c %s "$WORK/post.got") bytes)"
    sent POST /echo 200
    curl -s "${H[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/post.bin" -o "$WORK/chunked.got" "$U/echo"
    cmp -s "$WORK/chunked.got" "$WORK/post.bin" && ok "chunked POST echoed byte-exact" || bad "chunked POST differs"
    sent POST /echo 200
    curl -s -0 "${H[@]}" --data-binary @"$WORK/post.bin" -o "$WORK/post10.got" "$U/echo"
    cmp -s "$WORK/post10.got" "$WORK/post.bin" && ok "HTTP/1.0 POST: chunked response de-chunked, byte-exact" ||
        bad "HTTP/1.0 POST differs"
    sent POST /echo 200
else
    echo "note: $ECHO_MOD missing (Debian libnginx-mod-http-echo): POST echo checks left out"
fi

v10=$(curl -s -0 -v "${H[@]}" "$U/index.html" 2>&1 | tr -d '\r')
echo "$v10" | grep -q '^hello$' && echo "$v10" | grep -qi '^< connection: close' &&
    ok "HTTP/1.0 client: answered, then closed" || bad "HTTP/1.0: $v10"
sent GET /index.html 200

code=$(curl -s -o /dev/null -w '%{http_code}' "${H[@]}" -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)" "$U/index.html")
[ "$code" = 431 ] && ok "431 for a head over --max-header-bytes" || bad "431: got $code"

out=$(curl -s -w ' %{http_code}' -H 'Host: nowhere.local' "$U/")
case "$out" in *"nowhere.local"*" 502") ok "502 naming the unknown authority" ;; *) bad "unknown Host: '$out'" ;; esac
sent GET / 502

code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: down.local' "$U/")
[ "$code" = 502 ] && ok "502 when the backend is down" || bad "backend down: $code"
sent GET / 502

pipe=$("$PY" "$TOOLS/h1_client.py" pipeline "$OUT" web.local /index.html /nope /big.bin /index.html | tr '\n' ' ')
[ "$pipe" = "200 6 404 153 200 3000000 200 6 " ] && ok "pipelined requests answered in order" || bad "pipelining: '$pipe'"
sent GET /index.html 200; sent GET /nope 404; sent GET /big.bin 200; sent GET /index.html 200

# the backend closes each connection after one response, unannounced: the pooled
# connection is found dead when the next request is written to it, and retried
pipe=$("$PY" "$TOOLS/h1_client.py" pipeline "$OUT" oneshot.local /a /b /c | tr '\n' ' ')
[ "$pipe" = "200 11 200 11 200 11 " ] && ok "dead pooled connections: GETs retried on fresh ones" || bad "retry: '$pipe'"
sent GET /a 200; sent GET /b 200; sent GET /c 200

idle=$("$PY" "$TOOLS/h1_client.py" idle "$OUT" web.local)
case "$idle" in "closed after 2."*|"closed after 1.9"*) ok "idle keep-alive connection $idle (--idle-timeout 2s)" ;; *) bad "idle timeout: '$idle'" ;; esac
sent GET / 200

slow=$("$PY" "$TOOLS/h1_client.py" slowhead "$OUT")
case "$slow" in "HTTP/1.1 408 "*) ok "408 when the head is not complete in time ($slow s)" ;; *) bad "header timeout: '$slow'" ;; esac

# ---- opaque TCP (inbound: always to --inbound-to) ------------------------------------------
tcp=$("$PY" "$TOOLS/h1_client.py" tcp "$IN" 1000000)
[ "$tcp" = "echo ok" ] && ok "opaque TCP: 1 MB echoed exactly, half-close passed on" || bad "opaque TCP: $tcp"

# ---- load -----------------------------------------------------------------------------------
if command -v wrk > /dev/null; then
    wrk -t1 -c10 -d2s "${H[@]}" "$U/index.html?wrk" > "$WORK/wrk.txt" 2>&1
    rps=$(sed -n 's/^Requests\/sec: *//p' "$WORK/wrk.txt")
    if [ -n "$rps" ] && ! grep -qE 'Non-2xx|Socket errors' "$WORK/wrk.txt"; then
        ok "wrk -c10 -d2s: $rps req/s, no errors"
    else
        bad "wrk: $(cat "$WORK/wrk.txt")"
    fi
    wrk_n=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$WORK/wrk.txt")
fi

# ---- drain, then the stored events ------------------------------------------------------------
kill -TERM $ppid
for _ in $(seq 100); do kill -0 $ppid 2> /dev/null || break; sleep 0.1; done
if kill -0 $ppid 2> /dev/null; then
    bad "mesh-proxy still running 10 s after SIGTERM"
else
    wait $ppid
    rc=$?
    [ $rc = 0 ] && ok "SIGTERM: drained and exited 0" || bad "exit status $rc after SIGTERM: $(tail -3 "$WORK/proxy.log")"
fi
if grep -qE 'Sanitizer|runtime error' "$WORK/proxy.log"; then bad "sanitizer report: $(grep -A12 Sanitizer "$WORK/proxy.log" | head -30)"; fi

sqlite3 -readonly "$WORK/mesh.db" \
    "SELECT method, path, status FROM events WHERE path NOT LIKE '%wrk' ORDER BY ts, row_id" > "$WORK/got" 2>&1
tr '|' ' ' < "$WORK/got" > "$WORK/got.txt"
if diff "$WORK/expect" "$WORK/got.txt" > "$WORK/diff"; then
    ok "stored events equal the $(wc -l < "$WORK/expect") requests sent (method, path, status, in order)"
else
    bad "stored events differ: $(head -20 "$WORK/diff")"
fi
fields=$(sqlite3 -readonly "$WORK/mesh.db" "SELECT proto, scheme, authority, proxy_direction, src_deploy, dst,
    error IS NULL, latency_us >= 0, duration_us >= latency_us, rsp_bytes FROM events WHERE path = '/big.bin' LIMIT 1")
[ "$fields" = "http/1.1|http|web.local|outbound|h1|127.0.0.1:$NGX|1|1|1|3000000" ] &&
    ok "event fields: $fields" || bad "event fields: '$fields'"
err=$(sqlite3 -readonly "$WORK/mesh.db" "SELECT error FROM events WHERE authority = 'down.local'")
[ -n "$err" ] && ok "the dead backend's event says: $err" || bad "no error on the dead backend's event"
if [ -n "${wrk_n:-}" ]; then
    n=$(sqlite3 -readonly "$WORK/mesh.db" "SELECT count(*), sum(status = 200) FROM events WHERE path LIKE '%wrk'")
    [ "${n%%|*}" -ge "$wrk_n" ] && ok "wrk's $wrk_n requests stored ($n)" || bad "wrk events: $n for $wrk_n requests"
fi
finish
