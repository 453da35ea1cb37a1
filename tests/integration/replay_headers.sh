#!/bin/bash
# Headers from captures (`mesh replay --tap-header`, `mesh tap --pcap
# --tap-header`): for every shared capture with tshark's reading (.expect),
# each exchange's user-agent, final response content-type and grpc-status
# trailer must be what tshark reads (tests/tools/headers_truth.py), as
# recorded and after mangle.py reorders and duplicates packets. --redact-header keeps names
# only; with --collector they reach a live tap, never the store; bad header
# options are one-line usage errors.
# Usage: replay_headers.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
need_corpus
command -v tshark >/dev/null || skip "tshark missing"
TRUTH=$SRC/tests/tools/headers_truth.py
H2PORTS="18080 18082" # the emojivoto captures' gRPC and h2c servers

check() { # LABEL PCAP TRUTH_FILE
    if ! "$MESH" replay -q -o json "$2" --tap-header user-agent,content-type,grpc-status > "$WORK/out.json" 2> "$WORK/err"; then
        bad "$1: mesh replay exited $?: $(cat "$WORK/err")"; return
    fi
    python3 "$TRUTH" mesh user-agent content-type grpc-status < "$WORK/out.json" > "$WORK/got"
    cmp_rows "$1" "$3" "$WORK/got"
}

for expect in "$SHARED"/corpus/*/*.expect; do
    pcap=${expect%.expect}.pcap
    name=$(basename "$(dirname "$pcap")")/$(basename "$pcap" .pcap)
    # shellcheck disable=SC2086
    python3 "$TRUTH" tshark "$pcap" user-agent content-type grpc-status $H2PORTS > "$WORK/truth"
    grep -q "user-agent=[^-]" "$WORK/truth" || bad "$name: tshark read no user-agent"
    check "$name" "$pcap" "$WORK/truth"
    python3 "$SHARED/tools/mangle.py" "$pcap" "$WORK/mangled.pcap" both 1
    check "$name mangled(both,1)" "$WORK/mangled.pcap" "$WORK/truth"
done

# redaction: the name stays, the value never shows
GRPC=$SHARED/corpus/emojivoto/grpc.pcap
"$MESH" replay -q -o json "$GRPC" --tap-header '*' --redact-header User-Agent > "$WORK/red.json"
n=$(grep -c '"name":"user-agent","redacted":true' "$WORK/red.json")
events=$(wc -l < "$WORK/red.json")
if [ "$n" -gt 0 ] && [ "$n" -eq "$events" ] && ! grep -q "grpc-python" "$WORK/red.json"; then
    ok "--redact-header: user-agent by name only in all $events events"
else
    bad "--redact-header: $n of $events events redact user-agent, grpc-python $(grep -c grpc-python "$WORK/red.json") times"
fi

# mesh tap --pcap shows them on its lines (plain: not a terminal)
"$MESH" tap --pcap "$SHARED/corpus/emojivoto/http1.pcap" --tap-header user-agent,server > "$WORK/tap.txt"
if grep -q '^req .* user-agent=curl/7.88.1$' "$WORK/tap.txt" && grep -q '^rsp .* server=nginx/1.22.1$' "$WORK/tap.txt"; then
    ok "mesh tap --pcap --tap-header: req and rsp lines end with the headers"
else
    bad "mesh tap --pcap --tap-header: $(head -2 "$WORK/tap.txt")"
fi
"$MESH" tap --pcap "$SHARED/corpus/emojivoto/http1.pcap" > "$WORK/tap0.txt"
if grep -q "user-agent" "$WORK/tap0.txt"; then
    bad "without --tap-header, headers were shown"
else
    ok "without --tap-header, no header is shown"
fi

# replay --collector: the headers reach a live tap, and never the store
start_collector
timeout 30 "$MESH" tap --collector "127.0.0.1:$port" -o json > "$WORK/live.json" 2> "$WORK/live.err" &
tpid=$!
for _ in $(seq 20); do # until the tap's Watch is in place and sees a replay
    "$MESH" replay -q "$GRPC" --collector "127.0.0.1:$port" --tap-header user-agent,grpc-status || bad "replay --collector exit $?"
    grep -q '"name":"user-agent","value":"grpc-python' "$WORK/live.json" && break
    sleep 0.25
done
kill $tpid 2>/dev/null; wait $tpid 2>/dev/null
with=$(grep -c '"name":"user-agent","value":"grpc-python' "$WORK/live.json")
trailers=$(grep -c '"name":"grpc-status","value":"0","trailer":true' "$WORK/live.json")
stored=$(sqlite3 "$WORK/mesh.db" 'select count(*) from events' 2>/dev/null || echo 0)
if [ "$with" -gt 0 ] && [ "$trailers" -gt 0 ] && [ "$stored" -gt 0 ] && ! grep -qaF grpc-python "$WORK"/mesh.db*; then
    ok "replay --collector --tap-header: on a live tap $with events with user-agent, $trailers with a grpc-status trailer; none in the store's $stored events"
else
    bad "replay --collector: $with events with user-agent and $trailers with a trailer on the tap, $stored stored, grpc-python in the store: $(grep -caF grpc-python "$WORK"/mesh.db* | tr '\n' ' ')"
fi

# bad options: exit 2, one line naming the option
usage() { # LABEL ARGS...
    local label=$1
    shift
    "$MESH" "$@" > /dev/null 2> "$WORK/err"
    local rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l < "$WORK/err")" -eq 1 ] && grep -q "header" "$WORK/err"; then
        ok "$label: exit 2, $(cat "$WORK/err")"
    else
        bad "$label: exit $rc: $(cat "$WORK/err")"
    fi
}
usage "not a header name" replay "$GRPC" --tap-header 'user agent'
usage "stat" stat --pcap "$GRPC" --tap-header user-agent
usage "tap from a collector" tap --collector 127.0.0.1:1 --tap-header user-agent
usage "replay into a store" replay "$GRPC" --db "$WORK/x.db" --tap-header user-agent
[ ! -e "$WORK/x.db" ] && ok "no store was created" || bad "a store was created"
finish
