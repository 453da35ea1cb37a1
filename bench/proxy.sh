#!/bin/bash
# bench/proxy.sh [--runs N] [--requests N] [--seconds N] [--rate N] [--idle N]
#                [--collector-core CPUS] [--collector-sched idle|normal]
#                [--targets "direct mesh-tap …"] [--build DIR] [--record]
#
# A benchmark, not a test: mesh-proxy against the proxies users already run
# (issue 4). Targets with tap on: throughput ≥ 1.0× haproxy on h2c and ≥ 1.0×
# nginx on HTTP/1.1; added p99 at a fixed rate ≤ haproxy's; CPU tap on / tap
# off ≤ 1.15; RSS ≤ 10 MB with 1000 idle connections.
#
# Backends: nghttpd (h2c, one worker) and nginx (HTTP/1.1, one worker), each
# serving the same small file. In front of them, one at a time and in turns
# (run 1: every target, run 2: every target, ...; medians over --runs):
#   direct     the load generator talks to the backend itself
#   mesh-tap   mesh-proxy (outbound listener, route * → backend), tap on: a
#              `mesh collector` stores one event per request (SQLite on /tmp)
#   mesh-off   mesh-proxy without --collector (events counted, not sent)
#   haproxy    haproxy 2.6, nbthread 1; h2 on both sides for h2c
#   nginx      nginx 1.22, one worker; for h2c `listen http2` + grpc_pass
#              (nginx cannot proxy plain h2 upstream otherwise)
# Measures:
#   closed loop  h2c: h2load -n R -c 4 -m 10 -t 1; HTTP/1.1: wrk -t 1 -c 10 -d S
#                → req/s, and the proxy's CPU time per 100k requests
#                (/proc/PID/stat utime+stime; the tap-on figure adds nothing
#                for the collector, which runs as its own process)
#   fixed rate   h2load (--h1 for HTTP/1.1) -c 4 --rps RATE/4 for S seconds
#                with --log-file: p50 and p99 of the request times; "added"
#                is the target's minus direct's in the same run
#   idle         --idle keep-alive HTTP/1.1 connections (one request each,
#                then held open): the proxy's RSS (VmRSS) before and with them
# Pinning: every proxy on core 0, backends and load generators on core 1
# (taskset). The collector stands in for a component that runs elsewhere in a
# real mesh; on two cores it has to take CPU from the pipeline it measures, so
# by default it may run on either core with SCHED_IDLE (chrt --idle): it gets
# only the slack the proxies, backends and load generators leave and never
# preempts them. --collector-core takes a taskset list ("0", "1", "0,1") and
# --collector-sched normal gives it an ordinary share. A starved collector
# makes the proxy drop events, never slow down: the report gives the proxies'
# tap_events_dropped_total (from their admin ports) per run and the count the
# collector stored, so a run's tap-on figures can be read with them.
# Everything listens on 127.0.0.1; every process started here is stopped on
# exit; with --record the tables are appended to bench/RESULTS.md.
set -euo pipefail

usage() {
    sed -n '2,4p' "$0" | sed 's/^# //'
    exit 2
}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build RUNS=5 REQUESTS=200000 SECONDS_=10 RATE=1000 IDLE=1000 RECORD=0 COLCORE=0,1 COLSCHED=idle
TARGETS="direct mesh-tap mesh-off haproxy nginx"
while [ $# -gt 0 ]; do
    case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --idle) IDLE=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --collector-core) COLCORE=$2; shift 2 ;;
    --collector-sched) COLSCHED=$2; shift 2; [ "$COLSCHED" = idle ] || [ "$COLSCHED" = normal ] || usage ;;
    --targets) TARGETS=$2; shift 2 ;;
    --record) RECORD=1; shift ;;
    *) usage ;;
    esac
done
RESULTS=$ROOT/bench/RESULTS.md
PROXY=$BUILD/mesh-proxy MESH=$BUILD/mesh
for tool in h2load wrk nghttpd nginx haproxy taskset chrt curl; do
    command -v $tool >/dev/null || { echo "bench/proxy.sh: $tool is missing (scripts/deps.sh installs it)" >&2; exit 2; }
done
[ -x "$PROXY" ] && [ -x "$MESH" ] || { echo "bench/proxy.sh: build first: $PROXY" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
WORK=$(mktemp -d /tmp/mesh-bench-proxy.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
log() { echo "bench/proxy.sh: $*" >&2; }

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() { # PORT: until something accepts there (10 s at most)
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
        sleep 0.1
    done
    log "nothing listens on port $1"; exit 1
}
start() { # CORE LOGNAME CMD...: runs CMD pinned, remembers its pid in LAST
    local core=$1 name=$2; shift 2
    taskset -c "$core" "$@" >"$WORK/$name.log" 2>&1 &
    LAST=$!
    PIDS+=("$LAST")
}

# ---- backends ------------------------------------------------------------------------------
mkdir -p "$WORK/www" "$WORK/nginx-be" "$WORK/nginx-px"
head -c 612 /dev/zero | tr '\0' 'x' >"$WORK/www/index.html" # nginx's default page size
P_H2BE=$(free_port)
start 1 nghttpd nghttpd --no-tls -n 1 -d "$WORK/www" "$P_H2BE"
wait_port "$P_H2BE"

nginx_conf() { # DIR BODY: a self-contained, non-daemon, one-worker nginx config
    cat >"$1/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
pid $1/nginx.pid;
error_log $1/error.log error;
events { worker_connections 3000; }
http {
  access_log off;
  client_body_temp_path $1/tmp_body; proxy_temp_path $1/tmp_proxy;
  fastcgi_temp_path $1/tmp_fcgi; uwsgi_temp_path $1/tmp_uwsgi; scgi_temp_path $1/tmp_scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  $2
}
EOF
}
P_H1BE=$(free_port)
nginx_conf "$WORK/nginx-be" "server { listen 127.0.0.1:$P_H1BE; root $WORK/www; }"
start 1 nginx-be nginx -c "$WORK/nginx-be/nginx.conf" -p "$WORK/nginx-be"
wait_port "$P_H1BE"

# ---- proxies (all on core 0) ---------------------------------------------------------------
P_COL=$(free_port)
chrt=()
[ "$COLSCHED" = idle ] && chrt=(chrt --idle 0)
start "$COLCORE" collector "${chrt[@]}" "$MESH" collector --listen 127.0.0.1:$P_COL --db "$WORK/mesh.db" --max-db-size 16GiB
wait_port "$P_COL"

declare -A PORT PID ADMIN
for proto in h2 h1; do
    be=$P_H2BE
    [ $proto = h1 ] && be=$P_H1BE
    for tap in tap off; do
        p=$(free_port)
        col=()
        adm=off
        if [ $tap = tap ]; then
            adm=127.0.0.1:$(free_port)
            col=(--collector 127.0.0.1:$P_COL)
            ADMIN[$proto]=$adm
        fi
        start 0 "mesh-$tap-$proto" "$PROXY" --outbound 127.0.0.1:$p --admin "$adm" \
            --route "*=127.0.0.1:$be" "${col[@]}"
        PORT[mesh-$tap-$proto]=$p PID[mesh-$tap-$proto]=$LAST
        wait_port "$p"
    done
    p=$(free_port)
    if [ $proto = h2 ]; then
        bind="bind 127.0.0.1:$p proto h2" server="server s1 127.0.0.1:$be proto h2"
    else
        bind="bind 127.0.0.1:$p" server="server s1 127.0.0.1:$be"
    fi
    cat >"$WORK/haproxy-$proto.cfg" <<EOF
global
  nbthread 1
  maxconn 3000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend fe
  $bind
  default_backend be
backend be
  $server
EOF
    start 0 "haproxy-$proto" haproxy -f "$WORK/haproxy-$proto.cfg"
    PORT[haproxy-$proto]=$p PID[haproxy-$proto]=$LAST
    wait_port "$p"
    p=$(free_port)
    mkdir -p "$WORK/nginx-$proto"
    if [ $proto = h2 ]; then
        body="upstream be { server 127.0.0.1:$be; keepalive 64; }
  server { listen 127.0.0.1:$p http2; location / { grpc_pass grpc://be; } }"
    else
        body="upstream be { server 127.0.0.1:$be; keepalive 64; }
  server { listen 127.0.0.1:$p; location / { proxy_pass http://be;
    proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
    fi
    nginx_conf "$WORK/nginx-$proto" "$body"
    start 0 "nginx-$proto" nginx -c "$WORK/nginx-$proto/nginx.conf" -p "$WORK/nginx-$proto"
    PORT[nginx-$proto]=$p PID[nginx-$proto]=$LAST
    wait_port "$p"
done
PORT[direct-h2]=$P_H2BE PORT[direct-h1]=$P_H1BE

cpu_ticks() { # PID: utime + stime in clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat"
}
tap_counter() { # PROTO METRIC: the tap-on proxy's counter, from its admin port
    curl -sf "http://${ADMIN[$1]}/metrics" | awk -v m="$2" 'index($1, m) == 1 { s += $NF } END { print s + 0 }'
}
dropped() { tap_counter "$1" tap_events_dropped_total; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
HZ=$(getconf CLK_TCK)

# ---- measurements ----------------------------------------------------------------------------
# Results go to $WORK/res as lines "measure target proto value".
closed_loop() { # TARGET PROTO
    local t=$1 proto=$2 port=${PORT[$1-$2]} pid=${PID[$1-$2]:-} c0=0 c1=0 rps n out d0=0
    [ -n "$pid" ] && c0=$(cpu_ticks "$pid")
    [ "$t" = mesh-tap ] && d0=$(dropped "$proto")
    if [ "$proto" = h2 ]; then
        out=$(taskset -c 1 h2load -n "$REQUESTS" -c 4 -m 10 -t 1 "http://127.0.0.1:$port/index.html" || true)
        rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
        n=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
        [ "$n" = "$REQUESTS" ] || log "$t $proto: only $n of $REQUESTS succeeded"
    else
        out=$(taskset -c 1 wrk -t 1 -c 10 -d "${SECONDS_}s" "http://127.0.0.1:$port/index.html" || true)
        rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
        n=$(awk '/requests in/ {print $1}' <<<"$out")
        grep -q -E "Non-2xx|Socket errors" <<<"$out" && log "$t $proto: $(grep -E 'Non-2xx|Socket errors' <<<"$out")"
    fi
    if [ -z "$n" ] || [ "$n" = 0 ] || [ -z "$rps" ]; then
        log "$t $proto: no request succeeded"
        return
    fi
    echo "rps $t $proto $rps" >>"$WORK/res"
    [ "$t" = mesh-tap ] && awk -v d=$(($(dropped "$proto") - d0)) -v n="$n" \
        -v p="$proto" 'BEGIN { printf "dropped mesh-tap %s %.2f\n", p, 100 * d / n }' >>"$WORK/res"
    if [ -n "$pid" ]; then
        c1=$(cpu_ticks "$pid")
        awk -v d=$((c1 - c0)) -v hz="$HZ" -v n="$n" -v t="$t" -v p="$proto" \
            'BEGIN { printf "cpu %s %s %.3f\n", t, p, d / hz / n * 100000 }' >>"$WORK/res"
    fi
}

fixed_rate() { # TARGET PROTO: p50 and p99 (µs) at RATE req/s
    local t=$1 proto=$2 port=${PORT[$1-$2]} h1=() lat=$WORK/lat.log d0=0
    [ "$proto" = h1 ] && h1=(--h1)
    [ "$t" = mesh-tap ] && d0=$(dropped "$proto")
    rm -f "$lat"
    taskset -c 1 h2load "${h1[@]}" -c 4 -m 1 --rps $((RATE / 4)) -D "$SECONDS_" \
        --log-file="$lat" "http://127.0.0.1:$port/index.html" >/dev/null || true
    sort -n -k3,3 "$lat" | awk -v t="$t" -v p="$proto" '
        { v[NR] = $3; if ($2 >= 400 || $2 < 100) bad++ }
        END { if (NR == 0) exit 1
              printf "p50 %s %s %d\np99 %s %s %d\nfixed_n %s %s %d\n", t, p, v[int(NR * 0.5) + 1],
                     t, p, v[int(NR * 0.99) + 1], t, p, NR - bad }' >>"$WORK/res" ||
        log "$t $proto: no request finished at the fixed rate"
    [ "$t" = mesh-tap ] && echo "fixed_dropped mesh-tap $proto $(($(dropped "$proto") - d0))" >>"$WORK/res"
    return 0
}

idle_rss() { # TARGET: RSS before and with IDLE open keep-alive connections (HTTP/1.1)
    local t=$1 port=${PORT[$1-h1]} pid=${PID[$1-h1]}
    local before
    before=$(rss_kib "$pid")
    /usr/bin/python3 - "$port" "$IDLE" "$WORK/idle-ready" <<'EOF' &
import socket, sys, time
port, n, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conns = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /index.html HTTP/1.1\r\nHost: bench\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got or len(got) < got.index(b"\r\n\r\n") + 4 + 612:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("connection %d closed" % i)
        got += chunk
    conns.append(s)
open(ready, "w").write("ready")
time.sleep(30)
EOF
    local py=$!
    for _ in $(seq 600); do
        [ -f "$WORK/idle-ready" ] && break
        kill -0 $py 2>/dev/null || { log "$t: the idle connections failed"; return; }
        sleep 0.1
    done
    sleep 1
    echo "rss_idle $t h1 $(rss_kib "$pid")" >>"$WORK/res"
    echo "rss_before $t h1 $before" >>"$WORK/res"
    kill $py 2>/dev/null || true
    wait $py 2>/dev/null || true
    rm -f "$WORK/idle-ready"
}

log "warming up"
for proto in h2 h1; do
    for t in $TARGETS; do
        port=${PORT[$t-$proto]}
        taskset -c 1 h2load $([ $proto = h1 ] && echo --h1) -n 2000 -c 4 -m 1 \
            "http://127.0.0.1:$port/index.html" >/dev/null || log "warm-up failed: $t $proto"
    done
done
for run in $(seq "$RUNS"); do
    for proto in h2 h1; do
        for t in $TARGETS; do
            log "run $run/$RUNS: $proto $t"
            closed_loop "$t" "$proto"
            fixed_rate "$t" "$proto"
        done
    done
done
for t in mesh-tap haproxy nginx; do
    [[ " $TARGETS " == *" $t "* ]] || continue
    log "idle connections: $t"
    idle_rss "$t"
done
SENT=0 DROPPED=0
for proto in h2 h1; do
    SENT=$((SENT + $(tap_counter $proto tap_events_sent_total)))
    DROPPED=$((DROPPED + $(dropped $proto)))
done
STORED=$(sqlite3 "$WORK/mesh.db" 'select count(*) from events' 2>/dev/null || echo "?")

# ---- report ----------------------------------------------------------------------------------
median() { # MEASURE TARGET PROTO
    awk -v m="$1" -v t="$2" -v p="$3" '$1 == m && $2 == t && $3 == p { print $4 }' "$WORK/res" |
        sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
                                         else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
report() {
    local mach
    mach="$(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(lsb_release -ds 2>/dev/null || sed -n 's/^PRETTY_NAME="\(.*\)"/\1/p' /etc/os-release)"
    echo "## $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "\`bench/proxy.sh --runs $RUNS --requests $REQUESTS --seconds $SECONDS_ --rate $RATE --idle $IDLE --collector-core $COLCORE --collector-sched $COLSCHED\`; medians of $RUNS interleaved runs."
    echo "Machine: $mach; load before the run: $LOAD0. Proxies on core 0; backends (nghttpd, nginx, one worker each) and load generators on core 1; the collector on core $COLCORE, scheduling policy $COLSCHED."
    echo "$(haproxy -v | head -1 | cut -d' ' -f1-3), nginx $(nginx -v 2>&1 | cut -d/ -f2), nghttp2 $(nghttpd --version | awk '{print $2}'), mesh build: $(basename "$BUILD")."
    echo "Tap on: the proxies sent $SENT events and dropped $DROPPED over the whole benchmark; the collector stored $STORED."
    echo
    for proto in h2 h1; do
        local name="h2c (h2load -n $REQUESTS -c 4 -m 10 -t 1)"
        [ $proto = h1 ] && name="HTTP/1.1 (wrk -t 1 -c 10 -d ${SECONDS_}s; fixed rate: h2load --h1)"
        echo "### $name"
        echo
        echo "| target | req/s | × direct | CPU s / 100k req | p50 µs at $RATE/s | p99 µs | added p99 µs |"
        echo "|---|---:|---:|---:|---:|---:|---:|"
        local d99
        d99=$(median p99 direct $proto)
        for t in $TARGETS; do
            local r c p50 p99 add
            r=$(median rps $t $proto) c=$(median cpu $t $proto) p50=$(median p50 $t $proto) p99=$(median p99 $t $proto)
            add=$(awk -v a="$p99" -v b="$d99" 'BEGIN { if (a == "-" || b == "-") print "-"; else print a - b }')
            [ "$r" = "-" ] || r=$(printf '%.0f' "$r")
            [ $t = direct ] && add="" c="(backend)"
            echo "| $t | $r | $(ratio "$r" "$(median rps direct $proto)") | $c | $p50 | $p99 | $add |"
        done
        echo
    done
    echo "### targets (tap on)"
    echo
    local h2r h1r cpu_h2 cpu_h1 a_me a_ha rss
    h2r=$(ratio "$(median rps mesh-tap h2)" "$(median rps haproxy h2)")
    h1r=$(ratio "$(median rps mesh-tap h1)" "$(median rps nginx h1)")
    cpu_h2=$(ratio "$(median cpu mesh-tap h2)" "$(median cpu mesh-off h2)")
    cpu_h1=$(ratio "$(median cpu mesh-tap h1)" "$(median cpu mesh-off h1)")
    rss=$(awk '$1 == "rss_idle" && $2 == "mesh-tap" {printf "%.1f", $4 / 1024}' "$WORK/res")
    met() { awk -v v="$1" -v op="$2" -v lim="$3" 'BEGIN { if (v !~ /^-?[0-9.]+$/) print "?"; else if ((op == ">=" && v + 0 >= lim) || (op == "<=" && v + 0 <= lim)) print "yes"; else print "**no**" }'; }
    echo "| measure | value | target | met |"
    echo "|---|---:|---|---|"
    echo "| h2c req/s, mesh-proxy tap on / haproxy | $h2r | ≥ 1.0 | $(met "$h2r" '>=' 1.0) |"
    echo "| HTTP/1.1 req/s, mesh-proxy tap on / nginx | $h1r | ≥ 1.0 | $(met "$h1r" '>=' 1.0) |"
    for proto in h2 h1; do
        local me ha
        local sub='BEGIN { if (a == "-" || b == "-") print "-"; else print a - b }'
        me=$(awk -v a="$(median p99 mesh-tap $proto)" -v b="$(median p99 direct $proto)" "$sub")
        ha=$(awk -v a="$(median p99 haproxy $proto)" -v b="$(median p99 direct $proto)" "$sub")
        echo "| $proto added p99 at $RATE/s, mesh-proxy tap on vs haproxy (µs) | $me vs $ha | ≤ haproxy | $(met "$me" '<=' "$ha") |"
    done
    for proto in h2 h1; do
        echo "| tap events dropped in the $proto closed loop, % (median) / at the fixed rate (total) | $(median dropped mesh-tap $proto) / $(awk -v p=$proto '$1 == "fixed_dropped" && $3 == p { s += $4 } END { print s + 0 }' "$WORK/res") | | |"
    done
    echo "| CPU per request, tap on / tap off, h2c | $cpu_h2 | ≤ 1.15 | $(met "$cpu_h2" '<=' 1.15) |"
    echo "| CPU per request, tap on / tap off, HTTP/1.1 | $cpu_h1 | ≤ 1.15 | $(met "$cpu_h1" '<=' 1.15) |"
    echo "| RSS with $IDLE idle connections, MiB (before: $(awk '$1 == "rss_before" && $2 == "mesh-tap" {printf "%.1f", $4 / 1024}' "$WORK/res")) | $rss | ≤ 10 | $(met "$rss" '<=' 10) |"
    for t in haproxy nginx; do
        echo "| $t RSS with $IDLE idle connections, MiB | $(awk -v t=$t '$1 == "rss_idle" && $2 == t {printf "%.1f", $4 / 1024}' "$WORK/res") | | |"
    done
    echo
}
report | tee "$WORK/report.md"
if [ $RECORD = 1 ]; then
    "$ROOT/bench/record.sh" "bench/proxy.sh results" \
        '`bench/proxy.sh` compares mesh-proxy with haproxy and nginx (issue 4).' <"$WORK/report.md"
fi
