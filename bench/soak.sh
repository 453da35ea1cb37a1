#!/bin/bash
# bench/soak.sh [--requests N] [--seconds S] [--proto h1|h2] [--build DIR] [--record]
#
# A soak, not a test (issue 9, "Load"): N requests (default 1,000,000) over S
# seconds (default 600), rate-limited (h2load --rps), through mesh-proxy to
# nginx, tap on (a `mesh collector` stores every event). Every 10 s the
# proxy's and the collector's VmRSS and open fds are sampled; at the end:
# requests sent/failed, events stored, and the samples' first (after a 30 s
# warm-up) and last values and maximum. Pass: no failed request, every event
# stored, proxy RSS growth under 1 MiB and fds within 4 of the first sample after the warm-up (pooled upstream connections come and go).
# Runs under nice -n 10 (the machine may be shared); everything started here
# is stopped on exit; with --record the summary is appended to bench/RESULTS.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build REQUESTS=1000000 SECONDS_=600 PROTO=h1 RECORD=0
while [ $# -gt 0 ]; do
    case $1 in
    --requests) REQUESTS=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --proto) PROTO=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --record) RECORD=1; shift ;;
    *) sed -n '2,3p' "$0" | sed 's/^# //'; exit 2 ;;
    esac
done
PROXY=$BUILD/mesh-proxy MESH=$BUILD/mesh
for tool in h2load nginx sqlite3; do
    command -v $tool > /dev/null || { echo "bench/soak.sh: $tool is missing (scripts/deps.sh)" >&2; exit 2; }
done
[ -x "$PROXY" ] && [ -x "$MESH" ] || { echo "bench/soak.sh: build first: $PROXY" >&2; exit 2; }
WORK=$(mktemp -d /tmp/flt-soak.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2> /dev/null || true; done
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2> /dev/null && return 0; sleep 0.1; done; return 1; }
fds() { ls "/proc/$1/fd" 2> /dev/null | wc -l; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2> /dev/null; }

NPORT=$(free_port) CPORT=$(free_port) APORT=$(free_port)
mkdir -p "$WORK/www" "$WORK/ngx"
echo "hello from nginx" > "$WORK/www/index.html"
cat > "$WORK/ngx/nginx.conf" << EOF
worker_processes 1; daemon off; master_process off;
pid $WORK/ngx/nginx.pid; error_log $WORK/ngx/error.log error;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000; client_body_temp_path $WORK/ngx/b;
  proxy_temp_path $WORK/ngx/p; fastcgi_temp_path $WORK/ngx/f; uwsgi_temp_path $WORK/ngx/u;
  scgi_temp_path $WORK/ngx/s; server { listen 127.0.0.1:$NPORT $([ "$PROTO" = h2 ] && echo http2); root $WORK/www; } }
EOF
nice -n 10 nginx -c "$WORK/ngx/nginx.conf" -p "$WORK/ngx" 2> "$WORK/nginx.log" & PIDS+=($!)
nice -n 10 "$MESH" collector --listen 127.0.0.1:$CPORT --db "$WORK/mesh.db" 2> "$WORK/collector.log" & CPID=$!; PIDS+=($CPID)
wait_port $NPORT && wait_port $CPORT || { echo "bench/soak.sh: backends did not start" >&2; exit 1; }
nice -n 10 "$PROXY" --outbound 127.0.0.1:0 --admin 127.0.0.1:$APORT --route "*=127.0.0.1:$NPORT" \
    --collector 127.0.0.1:$CPORT --namespace soak --deployment client 2> "$WORK/proxy.log" & PPID_=$!; PIDS+=($PPID_)
for _ in $(seq 100); do grep -qs "outbound listening" "$WORK/proxy.log" && break; sleep 0.05; done
POUT=$(sed -n 's/.*outbound listening on .*, port \([0-9]*\),.*/\1/p' "$WORK/proxy.log")

CLIENTS=4
RPS=$(( (REQUESTS + SECONDS_ - 1) / SECONDS_ / CLIENTS + 1 ))
H2=(); [ "$PROTO" = h1 ] && H2=(--h1)
echo "bench/soak.sh: $REQUESTS requests, $CLIENTS clients × $RPS req/s, $PROTO, proxy pid $PPID_" >&2
nice -n 10 h2load "${H2[@]}" -n "$REQUESTS" -c $CLIENTS --rps $RPS "http://127.0.0.1:$POUT/index.html" > "$WORK/h2load.txt" 2>&1 &
LPID=$!; PIDS+=($LPID)
echo "t_s proxy_rss_kb proxy_fds collector_rss_kb collector_fds" > "$WORK/samples.txt"
t=0
while kill -0 $LPID 2> /dev/null; do
    echo "$t $(rss $PPID_) $(fds $PPID_) $(rss $CPID) $(fds $CPID)" >> "$WORK/samples.txt"
    sleep 10; t=$((t + 10))
done
wait $LPID || true
echo "$t $(rss $PPID_) $(fds $PPID_) $(rss $CPID) $(fds $CPID)" >> "$WORK/samples.txt"
count() { sqlite3 -readonly "file:$WORK/mesh.db" 'select count(*) from events' 2> /dev/null || echo 0; }
for _ in $(seq 100); do [ "$(count)" -ge "$REQUESTS" ] && break; sleep 0.2; done
stored=$(count)
req_line=$(grep '^requests:' "$WORK/h2load.txt")
succeeded=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$WORK/h2load.txt")
failed=$(sed -n 's/^requests: .* \([0-9]*\) failed.*/\1/p' "$WORK/h2load.txt")
status2xx=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' "$WORK/h2load.txt")
dropped=$(curl -s "http://127.0.0.1:$APORT/metrics" | awk '$1 ~ /^tap_events_dropped_total/ { s += $NF } END { printf "%d", s }')
# after the warm-up (30 s): first and last sample, max
summary=$(awk 'NR > 1 && $1 >= 30 { if (!n++) { r0 = $2; f0 = $3; c0 = $4; cf0 = $5 } r1 = $2; f1 = $3; c1 = $4; cf1 = $5; if ($2 > rm) rm = $2; if ($3 > fm) fm = $3 }
    END { printf "%d %d %d %d %d %d %d %d %d %d", r0, r1, rm, f0, f1, fm, c0, c1, cf0, cf1 }' "$WORK/samples.txt")
read -r r0 r1 rm f0 f1 fm c0 c1 cf0 cf1 <<< "$summary"
verdict=PASS
[ "${failed:-1}" = 0 ] && [ "$succeeded" = "$REQUESTS" ] && [ "$status2xx" = "$REQUESTS" ] || verdict=FAIL
[ "$stored" = "$REQUESTS" ] || verdict=FAIL
[ $((r1 - r0)) -lt 1024 ] && [ "$f1" -le $((f0 + 4)) ] || verdict=FAIL
duration=$(sed -n 's/^finished in \([0-9.]*[a-z]*\),.*/\1/p' "$WORK/h2load.txt")
result="| $(date -u +%Y-%m-%d) | soak $PROTO | $REQUESTS requests in $duration, $succeeded ok / ${failed:-?} failed, 2xx $status2xx | events stored $stored, dropped $dropped | proxy RSS $r0 → $r1 kB (max $rm), fds $f0 → $f1 (max $fm) | collector RSS $c0 → $c1 kB, fds $cf0 → $cf1 | $verdict |"
echo "$req_line" >&2
cat "$WORK/samples.txt" >&2
echo "$result"
if [ $RECORD = 1 ]; then
    { echo "## $(date -u '+%Y-%m-%d %H:%M UTC'): bench/soak.sh --requests $REQUESTS --seconds $SECONDS_ --proto $PROTO ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"; echo
      echo "| date | run | requests | events | proxy | collector | verdict |"; echo "|---|---|---|---|---|---|---|"; echo "$result"; } |
        "$ROOT/bench/record.sh" "bench/soak.sh results" \
            '`bench/soak.sh` (issue 9): a rate-limited load through mesh-proxy with a collector, RSS and fds sampled; flat and no error is the pass.' 
fi
[ $verdict = PASS ]
