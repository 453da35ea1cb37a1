#!/bin/bash
# bench/replay.sh [--runs N] [--tshark-runs N] [--record] [--fresh] [--keep] [--perf]
#
# A benchmark, not a test: how fast and how lean `mesh replay` reads a large
# capture, next to two peers measured in the same run on the same file:
#   - tshark -T fields extracting the same HTTP/1.1 and HTTP/2 headers (the
#     tool people reach for today; the ceiling we want to be far below), and
#   - bench/pcaploop.c, a bare pcap_next_ex loop (the floor: reading the file
#     and nothing else).
#
# The capture is recorded the way ../shared/tools/mkcorpus.sh does it (tcpdump
# on lo while real clients talk to real servers): h2load -n 150000 -c 4 -m 10
# against nghttpd --no-tls, then a few seconds of wrk against nginx, ~400 MB.
# It is kept in bench/data/ (gitignored) and reused by later runs; --fresh
# records a new one.
#
# Each tool runs N times (tshark fewer: it takes minutes), interleaved so that
# noise on a shared machine spreads over all three; wall time and peak RSS come
# from /usr/bin/time; medians and ratios are printed as a markdown table, and
# appended to bench/RESULTS.md with --record.
#
# Needs root on Debian 12 (installs its packages, captures on lo). Every server
# and load generator listens on / talks to 127.0.0.1 only, every step has a
# timeout, and the servers and tcpdump are stopped on exit, error or Ctrl-C.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/replay.sh [--runs N] [--tshark-runs N] [--record] [--fresh] [--keep] [--perf]

  --runs N          runs of mesh replay and of the bare pcap loop (default 5)
  --tshark-runs N   runs of tshark (default 3; one run takes minutes)
  --record          append the results as a dated section to bench/RESULTS.md
  --fresh           record a new capture even if bench/data/ has one
  --keep            keep the scratch directory (configs, logs, outputs)
  --perf            also profile one mesh replay run (perf record): top 10 symbols
EOF
}

RUNS=5
TSHARK_RUNS=3
RECORD=0
FRESH=0
KEEP=0
PERF=0
while [ $# -gt 0 ]; do
    case $1 in
    --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
    --tshark-runs) TSHARK_RUNS=${2:?--tshark-runs needs a number}; shift 2 ;;
    --record) RECORD=1; shift ;;
    --fresh) FRESH=1; shift ;;
    --keep) KEEP=1; shift ;;
    --perf) PERF=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
for n in "$RUNS" "$TSHARK_RUNS"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "replay.sh: run counts must be positive integers" >&2; exit 2; }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=$ROOT/bench/data
PCAP=$DATA/replay.pcap
META=$DATA/replay.meta      # ports and client counts of the recorded capture
RESULTS=$ROOT/bench/RESULTS.md
MESH=${MESH:-$ROOT/build/mesh}  # MESH=path/to/mesh benchmarks another build

# The workload (see the issue): h2load against nghttpd, then wrk against nginx.
H2LOAD_REQUESTS=150000
H2LOAD_ARGS=(-n "$H2LOAD_REQUESTS" -c 4 -m 10)
WRK_SECONDS=3
WRK_ARGS=(-t 2 -c 8 -d "${WRK_SECONDS}s" --timeout 2s)
# nginx serves a file this big to wrk: ~3 KB makes ~120k exchanges and ~400 MB
# in 3 s here. Much bigger bodies push >300 MB/s through tcpdump, which then
# drops packets on 2 cores (seen with 12 KB: half the packets lost).
WRK_BODY_BYTES=3000
TCPDUMP_BUFFER_KIB=262144   # -B: 256 MiB of kernel ring, so nothing is dropped

# Upper bounds on every step, in seconds: the script always stops by itself.
T_SERVER_START=10
T_H2LOAD=300
T_WRK=$((WRK_SECONDS + 30))
T_MESH=900
T_LOOP=300
T_TSHARK=3600

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'replay.sh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (apt-get, tcpdump on lo)"

# --- scratch space and cleanup ------------------------------------------------
# Background processes (servers, tcpdump) are stopped by pid in cleanup(), on
# every way out: normal end, `set -e` failure, Ctrl-C, SIGTERM.
WORK=$(mktemp -d /tmp/mesh-bench.XXXXXX)
NGINX_PID=
NGHTTPD_PID=
TCPDUMP_PID=

stop_pid() { # stop_pid PID SIGNAL: signal a child, give it 5 s, then SIGKILL
    local pid=$1 sig=$2 i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill "-$sig" "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

stop_servers() {
    # tcpdump first: on SIGTERM it flushes the file and prints its counters
    stop_pid "$TCPDUMP_PID" TERM; TCPDUMP_PID=
    stop_pid "$NGINX_PID" TERM; NGINX_PID=      # master stops its worker
    stop_pid "$NGHTTPD_PID" TERM; NGHTTPD_PID=
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_servers
    rm -f "$PCAP.part"
    if [ "$KEEP" -eq 1 ]; then
        echo "scratch directory kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- packages -------------------------------------------------------------------
# One apt-get update, and only if something is missing.
install_packages() {
    local pkgs=(nghttp2-client nghttp2-server nginx-light wrk tcpdump tshark
        libpcap-dev gcc libc6-dev pkg-config time iproute2 procps coreutils)
    local missing=() p
    [ "$PERF" -eq 0 ] || pkgs+=(linux-perf)
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# --- mesh and the bare loop -------------------------------------------------------
build_tools() {
    if [ ! -x "$MESH" ] && [ "$MESH" = "$ROOT/build/mesh" ]; then
        log "building mesh (Release) into build/"
        "$ROOT/scripts/deps.sh"
        cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build "$ROOT/build" -j2
    fi
    [ -x "$MESH" ] || die "$MESH is not an executable"
    # Not built by CMake on purpose: it is the peer, not part of mesh.
    # shellcheck disable=SC2046 # pkg-config output is meant to split into flags
    cc -O2 -Wall -o "$WORK/pcaploop" "$ROOT/bench/pcaploop.c" $(pkg-config --cflags --libs libpcap)
}

# --- recording --------------------------------------------------------------------
# (no `| grep -q` on these: under pipefail, an early exit of grep can fail ss)
port_in_use() { [ -n "$(ss -Htan "( sport = :$1 or dport = :$1 )")" ]; }

free_port() { # free_port [EXCLUDE]: a random high loopback port nobody uses
    local port i
    for i in $(seq 100); do
        port=$((20000 + RANDOM % 40000))
        [ "$port" != "${1:-}" ] && ! port_in_use "$port" && { echo "$port"; return 0; }
    done
    die "no free port found"
}

wait_listen() { # wait_listen PORT PID NAME: until PORT listens, or fail
    local port=$1 pid=$2 name=$3 i
    for i in $(seq $((T_SERVER_START * 10))); do
        [ -n "$(ss -Htln "sport = :$port")" ] && return 0
        kill -0 "$pid" 2>/dev/null || die "$name exited at start: $(tail -3 "$WORK/$name".*)"
        sleep 0.1
    done
    die "$name not listening on $port after ${T_SERVER_START}s"
}

meta_get() { awk -F= -v k="$1" '$1 == k { print substr($0, length(k) + 2) }' "$META"; }

record_capture() {
    local h1_port h2_port www=$WORK/www i
    h2_port=$(free_port)
    h1_port=$(free_port "$h2_port")
    mkdir -p "$DATA" "$www"
    # workers run as nobody: the files they serve must be world-readable
    chmod 755 "$WORK" "$www"
    echo '<html>index</html>' >"$www/index.html"
    head -c $((WRK_BODY_BYTES * 3 / 4)) /dev/urandom | base64 -w 76 >"$www/asset.txt"
    chmod 644 "$www"/*

    cat >"$WORK/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $WORK/nginx.pid; error_log $WORK/nginx.log;
events { worker_connections 256; }
http { access_log off;
  server { listen 127.0.0.1:$h1_port; location / { root $www; } } }
EOF
    log "starting nghttpd on 127.0.0.1:$h2_port and nginx on 127.0.0.1:$h1_port"
    nghttpd --no-tls -a 127.0.0.1 -d "$www" "$h2_port" >"$WORK/nghttpd.log" 2>&1 &
    NGHTTPD_PID=$!
    nginx -p "$WORK/" -e "$WORK/nginx.log" -c "$WORK/nginx.conf" >"$WORK/nginx.out" 2>&1 &
    NGINX_PID=$!
    wait_listen "$h2_port" "$NGHTTPD_PID" nghttpd
    wait_listen "$h1_port" "$NGINX_PID" nginx

    # -s 0: whole packets; -B: a big kernel buffer, or the burst of h2load
    # overruns it; no -U: buffered writes cost tcpdump less CPU.
    tcpdump -i lo -n -s 0 -B "$TCPDUMP_BUFFER_KIB" -w "$PCAP.part" \
        "tcp port $h2_port or tcp port $h1_port" >"$WORK/tcpdump.log" 2>&1 &
    TCPDUMP_PID=$!
    for i in $(seq $((T_SERVER_START * 10))); do
        grep -q 'listening on' "$WORK/tcpdump.log" && break
        kill -0 "$TCPDUMP_PID" 2>/dev/null || die "tcpdump failed: $(cat "$WORK/tcpdump.log")"
        sleep 0.1
    done
    grep -q 'listening on' "$WORK/tcpdump.log" || die "tcpdump not capturing after ${T_SERVER_START}s"

    log "h2load ${H2LOAD_ARGS[*]} against nghttpd"
    timeout --foreground "$T_H2LOAD" h2load "${H2LOAD_ARGS[@]}" \
        "http://127.0.0.1:$h2_port/index.html" >"$WORK/h2load.log" 2>&1 ||
        die "h2load failed: $(tail -3 "$WORK/h2load.log")"
    log "wrk ${WRK_ARGS[*]} against nginx"
    timeout --foreground "$T_WRK" wrk "${WRK_ARGS[@]}" \
        "http://127.0.0.1:$h1_port/asset.txt" >"$WORK/wrk.log" 2>&1 ||
        die "wrk failed: $(tail -3 "$WORK/wrk.log")"
    sleep 1 # let the last FINs reach tcpdump
    stop_servers

    # "requests: 150000 total, 150000 started, 150000 done, 150000 succeeded, ..."
    local h2_done wrk_done wrk_conns dropped captured
    h2_done=$(awk '/^requests:/ { print $6 }' "$WORK/h2load.log")
    # "  123456 requests in 3.00s, 1.23GB read"
    wrk_done=$(awk '/ requests in / { print $1 }' "$WORK/wrk.log")
    wrk_conns=$(awk '/threads and/ { print $4 }' "$WORK/wrk.log")
    captured=$(awk '/packets captured/ { print $1 }' "$WORK/tcpdump.log")
    dropped=$(awk '/packets dropped by kernel/ { print $1 }' "$WORK/tcpdump.log")
    if [ -z "$h2_done" ] || [ -z "$wrk_done" ] || [ -z "$dropped" ]; then
        die "could not read the client or tcpdump summaries (see $WORK)"
    fi
    mv "$PCAP.part" "$PCAP"
    chown 0:0 "$PCAP" # tcpdump wrote it as its own unprivileged user
    cat >"$META" <<EOF
recorded=$(date -u +%Y-%m-%dT%H:%M:%SZ)
h2_port=$h2_port
h1_port=$h1_port
h2load_done=$h2_done
wrk_done=$wrk_done
wrk_conns=$wrk_conns
tcpdump_captured=$captured
tcpdump_dropped=$dropped
EOF
    log "recorded $PCAP: $captured packets, $dropped dropped by kernel"
    [ "$dropped" -eq 0 ] || log "WARNING: tcpdump dropped packets: replay cannot be complete (--fresh to record again)"
}

# --- measuring ----------------------------------------------------------------------
# measure NAME TIMEOUT CMD...: one run, stdout to /dev/null; appends
# "WALL_S RSS_KIB" to $WORK/NAME.runs. Wall time is taken around /usr/bin/time
# from $EPOCHREALTIME (ms resolution; %e has only 10 ms, too coarse for the
# bare loop); peak RSS is time's %M, of the tool alone since `timeout` sits
# outside /usr/bin/time. Returns the command's exit status.
measure() {
    local name=$1 limit=$2 t0 t1 rc=0
    shift 2
    t0=$EPOCHREALTIME
    timeout --foreground "$limit" /usr/bin/time -f '%e %M' -o "$WORK/$name.time" \
        "$@" >/dev/null 2>>"$WORK/$name.err" || rc=$?
    t1=$EPOCHREALTIME
    if [ "$rc" -ne 0 ]; then
        echo "replay.sh: $name exited $rc (stderr: $WORK/$name.err)" >&2
        return "$rc"
    fi
    awk -v t0="$t0" -v t1="$t1" '{ printf "%.3f %d\n", t1 - t0, $2 }' \
        "$WORK/$name.time" >>"$WORK/$name.runs"
}

median() { # median FILE COLUMN
    sort -n -k "$2,$2" "$1" | awk -v c="$2" '{ v[NR] = $c }
        END { if (NR == 0) exit 1; m = int((NR + 1) / 2)
              printf "%.3f\n", (NR % 2) ? v[m] : (v[m] + v[m + 1]) / 2 }'
}

# --- main -----------------------------------------------------------------------------
install_packages
build_tools

if [ "$FRESH" -eq 1 ] || [ ! -s "$PCAP" ] || [ ! -s "$META" ]; then
    record_capture
else
    log "reusing $PCAP (recorded $(meta_get recorded); --fresh records anew)"
fi
H2_PORT=$(meta_get h2_port)

# file into the page cache, so that no tool pays the first read from disk
cat "$PCAP" >/dev/null

LOOP_OUT=$("$WORK/pcaploop" "$PCAP") # "PACKETS BYTES"
NPACKETS=${LOOP_OUT%% *}
FILE_BYTES=$(stat -c %s "$PCAP")

# Completeness: mesh's events against what the clients say they sent. wrk does
# not count the requests in flight when it stops (at most one per connection).
MESH_OK=1
MESH_EVENTS=$(timeout --foreground "$T_MESH" "$MESH" replay -o json "$PCAP" \
    2>"$WORK/mesh.summary" | wc -l) || MESH_OK=0
[ "$MESH_OK" -eq 1 ] || log "mesh replay failed: $(tail -3 "$WORK/mesh.summary")"

TSHARK_CMD=(tshark -r "$PCAP" -T fields -e http.request.method -e http.request.uri
    -e http.host -e http.response.code -e http2.header.name -e http2.header.value
    -d "tcp.port==$H2_PORT,http2" -o tcp.desegment_tcp_streams:TRUE)

# tshark's own count, in one untimed run: HTTP/1.x lines with a method, plus
# each :method among the HTTP/2 header names (comma-separated, one frame a line)
log "tshark, untimed: counting the requests it decodes"
TSHARK_REQUESTS=$(timeout --foreground "$T_TSHARK" "${TSHARK_CMD[@]}" 2>>"$WORK/tshark.err" |
    awk -F'\t' '$1 != "" { n++ }
        { k = split($5, names, ","); for (j = 1; j <= k; j++) if (names[j] == ":method") n++ }
        END { print n + 0 }')

for i in $(seq "$RUNS"); do
    log "round $i/$RUNS"
    measure loop "$T_LOOP" "$WORK/pcaploop" "$PCAP"
    if [ "$MESH_OK" -eq 1 ]; then
        measure mesh "$T_MESH" "$MESH" replay -q -o json "$PCAP" || MESH_OK=0
    fi
    if [ "$i" -le "$TSHARK_RUNS" ]; then
        measure tshark "$T_TSHARK" "${TSHARK_CMD[@]}"
    fi
done
# more tshark runs than rounds asked for: finish them
for ((i = RUNS + 1; i <= TSHARK_RUNS; i++)); do
    measure tshark "$T_TSHARK" "${TSHARK_CMD[@]}"
done

# --- report ------------------------------------------------------------------------------
stat_of() { # stat_of NAME wall|rss: median, or "n/a" if the tool failed
    local col=1
    [ "$2" = rss ] && col=2
    if [ -s "$WORK/$1.runs" ] && { [ "$1" != mesh ] || [ "$MESH_OK" -eq 1 ]; }; then
        median "$WORK/$1.runs" "$col"
    else
        echo n/a
    fi
}
runs_of() { if [ -s "$WORK/$1.runs" ]; then wc -l <"$WORK/$1.runs"; else echo 0; fi; }

MESH_T=$(stat_of mesh wall); MESH_M=$(stat_of mesh rss)
TSH_T=$(stat_of tshark wall); TSH_M=$(stat_of tshark rss)
LOOP_T=$(stat_of loop wall); LOOP_M=$(stat_of loop rss)

# ratio A B OP TARGET FORMAT: "value | target | met", n/a when a side is missing
ratio() {
    awk -v a="$1" -v b="$2" -v op="$3" -v tgt="$4" -v fmt="$5" 'BEGIN {
        sym = (op == ">=") ? "≥" : "≤"
        if (a == "n/a" || b == "n/a" || b + 0 == 0) { print "n/a | " sym " " tgt " | n/a"; exit }
        r = a / b; ok = (op == ">=") ? r >= tgt : r <= tgt
        printf fmt " | %s %s | %s\n", r, sym, tgt, ok ? "yes" : "**no**" }'
}
mib() { awk -v k="$1" 'BEGIN { if (k == "n/a") print k; else printf "%.1f", k / 1024 }'; }

H2_DONE=$(meta_get h2load_done)
WRK_DONE=$(meta_get wrk_done)
WRK_CONNS=$(meta_get wrk_conns)
SENT=$((H2_DONE + WRK_DONE))
[ "$MESH_OK" -eq 1 ] || MESH_EVENTS="n/a (mesh replay failed)"

TABLE=$WORK/table.md
{
    echo "Capture: \`bench/data/replay.pcap\`, $(awk -v b="$FILE_BYTES" 'BEGIN { printf "%.0f MB", b / 1e6 }'), $NPACKETS packets, $(meta_get tcpdump_dropped) dropped by kernel while recording."
    echo "Requests completed by the clients: $SENT (h2load $H2_DONE + wrk $WRK_DONE, plus up to $WRK_CONNS wrk left in flight); requests tshark decodes: $TSHARK_REQUESTS; events from mesh replay: $MESH_EVENTS."
    [ "$MESH_OK" -eq 0 ] || echo "mesh's summary: $(tail -1 "$WORK/mesh.summary" | sed 's/^[^:]*: //')."
    echo
    echo "| tool | runs | wall, median (s) | peak RSS, median (MiB) |"
    echo "|---|---:|---:|---:|"
    echo "| \`mesh replay -q -o json\` | $(runs_of mesh) | $MESH_T | $(mib "$MESH_M") |"
    echo "| \`tshark -T fields\` (6 fields, desegmented) | $(runs_of tshark) | $TSH_T | $(mib "$TSH_M") |"
    echo "| bare \`pcap_next_ex\` loop | $(runs_of loop) | $LOOP_T | $(mib "$LOOP_M") |"
    echo
    echo "| ratio | value | target | met |"
    echo "|---|---:|---|---|"
    echo "| tshark / mesh, wall | $(ratio "$TSH_T" "$MESH_T" ">=" 50 "%.0f×") |"
    echo "| mesh / tshark, peak RSS | $(ratio "$MESH_M" "$TSH_M" "<=" 0.1 "%.3f") |"
    echo "| mesh / bare loop, wall | $(ratio "$MESH_T" "$LOOP_T" "<=" 3 "%.1f×") |"
} >"$TABLE"

# Where mesh's time goes: a flat profile of one run, top 10 symbols.
if [ "$PERF" -eq 1 ] && [ "$MESH_OK" -eq 1 ]; then
    log "perf record of one mesh replay run"
    timeout --foreground "$T_MESH" perf record -q -F 2999 -o "$WORK/perf.data" -- \
        "$MESH" replay -q -o json "$PCAP" >/dev/null 2>"$WORK/perf.err"
    {
        echo
        echo "Profile of one \`mesh replay -q -o json\` run (perf record -F 2999, top 10 symbols):"
        echo
        echo '```'
        perf report -i "$WORK/perf.data" --stdio --no-children --sort dso,sym 2>/dev/null |
            awk '/^ +[0-9.]+%/ && n++ < 10' # reads all: no SIGPIPE under pipefail
        echo '```'
    } >>"$TABLE"
fi
cat "$TABLE"

if [ "$RECORD" -eq 1 ]; then
    INTRO=$(cat <<EOF
\`bench/replay.sh\` records ~400 MB of loopback traffic (h2load
\`${H2LOAD_ARGS[*]}\` against nghttpd --no-tls, then ${WRK_SECONDS} s of wrk against
nginx) and reads it with \`mesh replay -q -o json\`, with \`tshark -T fields\`
extracting the same headers, and with a bare \`pcap_next_ex\` loop
(\`bench/pcaploop.c\`). Wall time and peak RSS come from \`/usr/bin/time\`.

Targets: mesh at least 50× faster than tshark, at most a tenth of its peak RSS,
and within 3× of the bare loop.

Machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/^MemTotal/ { printf "%.0f GB", $2 / 1e6 }' /proc/meminfo) RAM, Debian 12.
Numbers are medians over several runs on a shared, noisy 2-core machine: read
the ratios (peers measured in the same run, interleaved) rather than the
absolute times.
EOF
)
    {
        echo "## $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo
        echo "mesh build type: $(awk -F= '/^CMAKE_BUILD_TYPE:/ { print ($2 == "" ? "default (RelWithDebInfo)" : $2) }' "$ROOT/build/CMakeCache.txt" 2>/dev/null);" \
            "$(tshark --version 2>/dev/null | awk 'NR == 1 { sub(/\.$/, ""); print }'); libpcap $(pkg-config --modversion libpcap);" \
            "runs: $RUNS (tshark $TSHARK_RUNS)."
        echo
        cat "$TABLE"
    } | "$ROOT/bench/record.sh" "bench/replay.sh results" "$INTRO"
fi

[ "$MESH_OK" -eq 1 ] || die "mesh replay failed; its numbers are missing"
