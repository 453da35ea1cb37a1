#!/bin/bash
# mesh-proxy's HTTP/2 and gRPC forwarding (proxy/h2.c) against real peers:
# nghttpd, nghttp and h2load (Debian nghttp2-server/-client), Python grpcio
# (emojigrpc.py from SHARED and tests/tools/grpc_stream.py: unary, server-,
# client- and bidi streaming, byte-exact), a hand-written h2 server for
# upstream RST_STREAM and GOAWAY, an endpoint that refuses connections and an
# authority without a route. Every request's tap event is then checked, field
# by field, in the collector's store. The emojivoto part needs SHARED.
# Usage: proxy_h2.sh BUILD_DIR SOURCE_DIR SHARED_DIR   (exit 77: skipped)
set -u
. "$2/tests/tools/testlib.sh"
PY=/usr/bin/python3
PROXY=$BUILD/mesh-proxy
TOOLS=$SRC/tests/tools
for tool in nghttpd nghttp h2load sqlite3; do
    command -v "$tool" > /dev/null || skip "$tool missing (Debian nghttp2-server, nghttp2-client, sqlite3)"
done
"$PY" -c 'import grpc' 2> /dev/null || skip "$PY cannot import grpc (Debian python3-grpcio)"
if [ ! -x "$PROXY" ] || [ ! -x "$MESH" ]; then
    echo "FAIL $PROXY or $MESH is not built"
    echo "0 passed, 1 failed"
    exit 1
fi

start_collector
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done
    kill "$cpid" 2> /dev/null
    wait 2> /dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# wait_for FILE PATTERN: up to 10 s for PATTERN to show up in FILE
wait_for() {
    for _ in $(seq 200); do grep -q "$2" "$1" 2> /dev/null && return 0; sleep 0.05; done
    echo "FAIL gave up waiting for \"$2\" in $1: $(head -c 2000 "$1")"
    exit 1
}
wait_port() {
    for _ in $(seq 200); do (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null && return 0; sleep 0.05; done
    echo "FAIL nothing listens on port $1"
    exit 1
}
q() { sqlite3 -readonly "$WORK/mesh.db" "$1"; }
expect() { # expect NAME GOT WANT
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got [$2], want [$3]"; fi
}

# --- backends
mkdir -p "$WORK/docroot"
echo hello > "$WORK/docroot/small.txt"
echo load > "$WORK/docroot/h2load.txt"
head -c 4194304 /dev/urandom > "$WORK/docroot/big.bin"
BIG_SHA=$(sha256sum < "$WORK/docroot/big.bin")
NPORT=$(free_port)
nghttpd --no-tls -d "$WORK/docroot" "$NPORT" > "$WORK/nghttpd.log" 2>&1 &
pids+=($!)
SPORT=$(free_port)
"$PY" "$TOOLS/grpc_stream.py" serve "$SPORT" > "$WORK/stream.log" 2>&1 &
pids+=($!)
RST_PORT=$(free_port)
"$PY" "$TOOLS/h2_raw_server.py" "$RST_PORT" rst:11 > "$WORK/rst.log" 2>&1 &
pids+=($!)
GA2_PORT=$(free_port)
"$PY" "$TOOLS/h2_raw_server.py" "$GA2_PORT" goaway:2 > "$WORK/goaway2.log" 2>&1 &
pids+=($!)
GA1_PORT=$(free_port)
"$PY" "$TOOLS/h2_raw_server.py" "$GA1_PORT" goaway:1 > "$WORK/goaway1.log" 2>&1 &
pids+=($!)
DEAD_PORT=$(free_port) # nothing listens there
EMOJI=
if [ -f "$SHARED/tools/emojigrpc.py" ]; then
    EPORT=$(free_port)
    "$PY" "$SHARED/tools/emojigrpc.py" serve "$EPORT" > "$WORK/emoji.log" 2>&1 &
    pids+=($!)
    EMOJI=1
fi
wait_port "$NPORT"
wait_for "$WORK/stream.log" listening
wait_for "$WORK/rst.log" listening
wait_for "$WORK/goaway2.log" listening
wait_for "$WORK/goaway1.log" listening
[ -n "$EMOJI" ] && wait_port "$EPORT"

# --- proxies: A routes by :authority, B sends everything to the emojivoto server
start_proxy() { # start_proxy NAME ARGS…: sets PORT to its outbound port
    local name=$1
    shift
    "$PROXY" --outbound 127.0.0.1:0 --admin off --inbound off --collector "127.0.0.1:$port" \
        --namespace test --deployment "$name" --pod "$name-0" "$@" 2> "$WORK/$name.log" &
    pids+=($!)
    eval "${name}_pid=$!"
    wait_for "$WORK/$name.log" "outbound listening"
    PORT=$(sed -n 's/.*outbound listening.*port \([0-9]*\),.*/\1/p' "$WORK/$name.log")
}
start_proxy pxa --max-header-bytes 16384 \
    --route "files.test=127.0.0.1:$NPORT" --route "stream.test=127.0.0.1:$SPORT" \
    --route "rst.test=127.0.0.1:$RST_PORT" --route "goaway2.test=127.0.0.1:$GA2_PORT" \
    --route "goaway1.test=127.0.0.1:$GA1_PORT" --route "down.test=127.0.0.1:$DEAD_PORT"
PA=$PORT
if [ -n "$EMOJI" ]; then
    start_proxy pxb --route "*=127.0.0.1:$EPORT" --tap-header grpc-status,grpc-message
    PB=$PORT
fi
URL=http://127.0.0.1:$PA
get() { timeout 20 nghttp -H ":authority: $1" "${@:3}" "$URL$2"; }

# --- plain HTTP/2 through nghttpd
expect "GET small file" "$(get files.test /small.txt)" hello
expect "GET 4 MiB file, sha256" "$(get files.test /big.bin | sha256sum)" "$BIG_SHA"
expect "POST 4 MiB body (nghttpd answers with the file)" \
    "$(get files.test /small.txt -d "$WORK/docroot/big.bin")" hello
big_header=$(head -c 20000 /dev/zero | tr '\0' x)
get files.test /big-header -v -H "x-big: $big_header" > "$WORK/431.out" 2>&1
grep -q ':status: 431' "$WORK/431.out" && ok "header list over --max-header-bytes: 431" ||
    bad "header list over --max-header-bytes: $(grep -E 'status|RST|GOAWAY' "$WORK/431.out")"

# --- load: h2load through the proxy, and directly for comparison
timeout 60 h2load -n 20000 -c 4 -m 10 -H ":authority: files.test" "$URL/h2load.txt" > "$WORK/h2load.out" 2>&1
grep -q "20000 succeeded" "$WORK/h2load.out" && ok "h2load -n 20000 -c 4 -m 10: all succeeded" ||
    bad "h2load: $(grep -E 'requests:|status codes' "$WORK/h2load.out")"
timeout 60 h2load -n 20000 -c 4 -m 10 "http://127.0.0.1:$NPORT/small.txt" > "$WORK/h2load-direct.out" 2>&1
echo "info h2load direct:      $(grep 'finished in' "$WORK/h2load-direct.out")"
echo "info h2load through mesh-proxy: $(grep 'finished in' "$WORK/h2load.out")"

# --- gRPC: every kind of call, byte-exact, through the proxy
timeout 120 "$PY" "$TOOLS/grpc_stream.py" check "127.0.0.1:$PA" stream.test > "$WORK/grpc.out" 2>&1
cat "$WORK/grpc.out" | grep -E '^(ok|FAIL) '
pass=$((pass + $(grep -c '^ok ' "$WORK/grpc.out")))
fail=$((fail + $(grep -c '^FAIL ' "$WORK/grpc.out")))
[ "$(grep -c '^ok ' "$WORK/grpc.out")" -eq 10 ] || bad "grpc_stream.py check: $(tail -5 "$WORK/grpc.out")"

if [ -n "$EMOJI" ]; then
    timeout 60 "$PY" "$SHARED/tools/emojigrpc.py" client "127.0.0.1:$EPORT" 300 7 > "$WORK/emoji.direct" 2>&1
    timeout 60 "$MESH" tap deploy/pxb -n test --collector "127.0.0.1:$port" -o json > "$WORK/tap.json" 2> "$WORK/tap.err" &
    tpid=$!
    sleep 1 # the Watch is open
    timeout 60 "$PY" "$SHARED/tools/emojigrpc.py" client "127.0.0.1:$PB" 300 7 > "$WORK/emoji.proxy" 2>&1
    for _ in $(seq 50); do [ "$(wc -l < "$WORK/tap.json")" -ge 300 ] && break; sleep 0.1; done
    kill $tpid 2> /dev/null; wait $tpid 2> /dev/null
    # --tap-header grpc-status,grpc-message: the trailers of the calls that sent
    # messages, the head of a trailers-only answer (VoteDoughnut's)
    "$PY" - "$WORK/tap.json" > "$WORK/tap.check" 2>&1 << 'PY'
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
assert len(events) >= 300, f"{len(events)} events on the tap"
ok = [e for e in events if e.get("grpc_status") == 0]
trailed = [e for e in ok if {"name": "grpc-status", "value": "0", "trailer": True} in e.get("response_headers", [])]
assert ok and len(trailed) == len(ok), f"{len(trailed)} of {len(ok)} OK calls with a grpc-status trailer"
bad = [e for e in events if e["path"].endswith("VoteDoughnut")]
assert bad, "no VoteDoughnut"
for e in bad:
    rs = {h["name"]: h for h in e.get("response_headers", [])}
    assert rs.get("grpc-status", {}).get("value") == "2" and "grpc-message" in rs, f"VoteDoughnut: {rs}"
print(f"{len(trailed)} OK calls with grpc-status 0 in their trailers; {len(bad)} VoteDoughnut with grpc-status 2 "
      f"and grpc-message {rs['grpc-message'].get('value')!r}{' (trailer)' if rs['grpc-message'].get('trailer') else ''}")
PY
    [ $? = 0 ] && ok "tap --tap-header grpc-status,grpc-message: $(cat "$WORK/tap.check")" || bad "tap trailers: $(tail -3 "$WORK/tap.check")"
    if cmp -s "$WORK/emoji.direct" "$WORK/emoji.proxy" && [ -s "$WORK/emoji.proxy" ]; then
        ok "emojivoto: 300 calls through the proxy return what they return directly"
    else
        bad "emojivoto: $(diff "$WORK/emoji.direct" "$WORK/emoji.proxy" | head -5)"
    fi
    expect "emojivoto: VoteDoughnut is UNKNOWN" \
        "$(awk '$1 ~ /VoteDoughnut$/ {print $2}' "$WORK/emoji.proxy")" 2
else
    echo "SKIP emojivoto part: $SHARED/tools/emojigrpc.py missing"
fi

# --- resets, GOAWAY, failures
get rst.test /reset -v > "$WORK/rst.out" 2>&1
grep -q 'error_code=ENHANCE_YOUR_CALM' "$WORK/rst.out" && ok "upstream RST_STREAM reaches the client with its code" ||
    bad "upstream RST_STREAM: $(grep -E 'RST|status' "$WORK/rst.out")"
get goaway2.test /a -v "$URL/b" > "$WORK/goaway2.out" 2>&1
if grep -q ':status: 200' "$WORK/goaway2.out" && grep -q 'error_code=REFUSED_STREAM' "$WORK/goaway2.out"; then
    ok "upstream GOAWAY: the processed stream answers, the other is REFUSED_STREAM"
else
    bad "upstream GOAWAY: $(grep -E 'RST|status|error_code' "$WORK/goaway2.out")"
fi
timeout 20 h2load -n 4 -c 1 -m 1 -H ":authority: goaway1.test" "$URL/g" > "$WORK/goaway1.out" 2>&1
if grep -q "4 succeeded" "$WORK/goaway1.out" && grep -q "conn 4" "$WORK/goaway1.log"; then
    ok "after an upstream GOAWAY new requests go to a new upstream connection"
else
    bad "GOAWAY then new requests: $(grep requests: "$WORK/goaway1.out"), $(tail -1 "$WORK/goaway1.log")"
fi
get down.test /x -v > "$WORK/down.out" 2>&1
grep -q ':status: 502' "$WORK/down.out" && grep -q "^connect to 127.0.0.1:$DEAD_PORT" "$WORK/down.out" &&
    ok "upstream down: 502 naming the connect error" || bad "upstream down: $(grep -v '^\[' "$WORK/down.out" | head -3)"
expect "upstream down, gRPC: UNAVAILABLE" \
    "$(timeout 20 "$PY" "$TOOLS/grpc_stream.py" call "127.0.0.1:$PA" down.test | cut -d' ' -f1-3)" \
    "UNAVAILABLE connect to"
expect "no route: 502 naming the authority" "$(get nowhere.test /x)" "no route for authority nowhere.test"
expect "no route, gRPC: UNAVAILABLE naming the authority" \
    "$(timeout 20 "$PY" "$TOOLS/grpc_stream.py" call "127.0.0.1:$PA" nowhere.test)" \
    "UNAVAILABLE no route for authority nowhere.test"

# --- drain: SIGTERM, the proxies finish, send every tap event and exit 0
for name in pxa ${EMOJI:+pxb}; do
    pid_var=${name}_pid
    kill -TERM "${!pid_var}"
    wait "${!pid_var}"
    expect "$name: exits 0 after SIGTERM" "$?" 0
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$WORK/$name.log"; then
        bad "$name: sanitizer report: $(grep -E -m3 'ERROR|runtime error' "$WORK/$name.log")"
    fi
done

# --- the tap events, field by field
row() { q "select method, scheme, authority, path, status, grpc_status, reset, req_bytes, rsp_bytes, proto,
           proxy_direction, src_deploy from events where $1 order by ts"; }
expect "events: h2load's 20000 requests, exactly" \
    "$(q "select count(*) from events where path = '/h2load.txt'")" 20000
expect "events: h2load's, each GET 200 h2 with 5 bytes" \
    "$(q "select count(*) from events where path = '/h2load.txt' and method = 'GET' and status = 200
          and grpc_status is null and reset is null and error is null and rsp_bytes = 5 and proto = 'h2'
          and authority = 'files.test' and dst = '127.0.0.1:$NPORT' and latency_us >= 0
          and duration_us >= latency_us")" 20000
expect "event: GET small" "$(row "path = '/small.txt' and method = 'GET'")" \
    "GET|http|files.test|/small.txt|200|||0|6|h2|outbound|pxa"
expect "event: GET big" "$(row "path = '/big.bin'")" "GET|http|files.test|/big.bin|200|||0|4194304|h2|outbound|pxa"
expect "event: POST big" "$(row "path = '/small.txt' and method = 'POST'")" \
    "POST|http|files.test|/small.txt|200|||4194304|6|h2|outbound|pxa"
expect "event: 431" "$(q "select status from events where path = '/big-header'")" 431
expect "event: upstream reset" "$(q "select status, reset from events where authority = 'rst.test'")" "|11"
expect "events: GOAWAY, one 200 and one REFUSED_STREAM" \
    "$(q "select status, reset from events where authority = 'goaway2.test' order by status")" "|7
200|"
expect "events: after GOAWAY" "$(q "select count(*) from events where authority = 'goaway1.test' and status = 200")" 4
expect "events: upstream down" \
    "$(q "select proto, status, grpc_status, error like 'connect to%' from events where authority = 'down.test' order by proto")" \
    "grpc|200|14|1
h2|502||1"
expect "events: no route" \
    "$(q "select proto, status, grpc_status, error from events where authority = 'nowhere.test' order by proto")" \
    "grpc|200|14|no route for authority nowhere.test
h2|502||no route for authority nowhere.test"
expect "event: gRPC NOT_FOUND" \
    "$(row "path = '/mesh.test.Stream/Fail'" | cut -d'|' -f1,4-7,10)" "POST|/mesh.test.Stream/Fail|200|5||grpc"
expect "event: gRPC cancelled by the client: reset CANCEL" \
    "$(q "select grpc_status, reset from events where path = '/mesh.test.Stream/Forever'")" "|8"
expect "event: gRPC client streaming bytes" \
    "$(q "select req_bytes, grpc_status from events where path = '/mesh.test.Stream/Gather'")" \
    "$((64 * (5 + 262144)))|0"
expect "events: gRPC calls, one each" \
    "$(q "select count(*) from events where authority = 'stream.test'")" \
    "$(q "select count(*) from events where authority = 'stream.test' and proto = 'grpc' and status = 200")"
if [ -n "$EMOJI" ]; then
    sqlite3 -readonly -separator ' ' "$WORK/mesh.db" \
        "select path, grpc_status, count(*) from events where authority = '127.0.0.1:$PB'
         group by path, grpc_status order by path, grpc_status" > "$WORK/emoji.events"
    if cmp -s "$WORK/emoji.events" "$WORK/emoji.proxy"; then
        ok "events: the emojivoto calls, path and grpc-status, exactly as the client saw them"
    else
        bad "emojivoto events: $(diff "$WORK/emoji.proxy" "$WORK/emoji.events" | head -5)"
    fi
fi
finish
