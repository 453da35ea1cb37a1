#!/bin/bash
# bench/collector.sh [--seconds N] [--events N] [--generators N] [--runs N]
#                    [--record] [--keep] [--perf]
#
# A benchmark, not a test: `mesh collector` end to end, gRPC over loopback
# into SQLite on disk (issue 3). Targets: ≥ 300k events/s on one core, Stat
# ≤ 50 ms at 10M events, collector RSS ≤ 64 MB.
#
# The collector is pinned to core 0 (taskset -c 0); the load generators
# (bench/tapgen.c: mesh_tapsend on a mesh_loop, emojivoto-shaped events, as
# fast as the acknowledgements allow, each with its own sender id) and the
# query client to core 1. Two collectors run one after the other, each on a
# fresh bench/data/collector.db (gitignored):
#
#   1. sustained ingest: the generators send live events (timestamps = now)
#      for --seconds; events acknowledged / time, the slowest and fastest
#      10-second interval, the collector's CPU time from /proc/PID/stat
#      (events per CPU-second: the figure to compare on a shared machine),
#      the time it was runnable but waited for core 0 (/proc/PID/schedstat)
#      and its RSS from /proc/PID/status. Then
#      Query.Stat -t 1m on that store (a minute of ingest at full speed),
#      idle, and again while the generators send at full speed for 30 s (a
#      Stat call waits for the commit in progress).
#   2. history: a fresh store filled with --events events back-dated over the
#      last hour (tapgen --spread-seconds 3600), the ingest rate of the fill,
#      then Query.Stat for deploy in emojivoto, -t 1m and -t 1h, --runs calls
#      each from Python's grpcio timed client-side (median, p95), and the
#      store's own share: mesh_store_stat() timed on a read-only connection
#      (tapgen --stat-db).
#
# Peak RSS is VmHWM of each collector just before it is stopped. With
# --perf, a third short run of phase 1 profiles the collector (perf record
# -g, 10 s) and prints the top symbols. The collectors are started with
# --max-db-size 64GiB: at ~110 bytes an event (schema 2), 10M events are
# ~1.1 GB, past the 1 GiB default, and retention would delete the history
# being measured. BUILD=DIR benchmarks the build in DIR (default build/).
#
# Everything listens on / talks to 127.0.0.1, every step has a timeout, and
# every process started here is stopped on exit, error or Ctrl-C; the store
# is deleted at the end unless --keep.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/collector.sh [--seconds N] [--events N] [--generators N] [--runs N]
                          [--record] [--keep] [--perf]

  --seconds N      sustained ingest run (default 60)
  --events N       events in the store for the Stat measurements (default 10000000)
  --generators N   load generators, each its own sender id, all on core 1 (default 1)
  --runs N         Stat calls per window (default 20)
  --record         append the results as a dated section to bench/RESULTS.md
  --keep           keep the store and the scratch directory
  --perf           also profile the collector under load (perf record, 10 s)
EOF
}

SECONDS_RUN=60
EVENTS=10000000
GENERATORS=1
RUNS=20
RECORD=0
KEEP=0
PERF=0
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) SECONDS_RUN=${2:?--seconds needs a number}; shift 2 ;;
    --events) EVENTS=${2:?--events needs a number}; shift 2 ;;
    --generators) GENERATORS=${2:?--generators needs a number}; shift 2 ;;
    --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
    --record) RECORD=1; shift ;;
    --keep) KEEP=1; shift ;;
    --perf) PERF=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
for n in "$SECONDS_RUN" "$EVENTS" "$GENERATORS" "$RUNS"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "collector.sh: numbers must be positive integers" >&2; exit 2; }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}   # BUILD=path/to/build-dir: another build (its libraries and mesh)
MESH=${MESH:-$BUILD/mesh}  # MESH=path/to/mesh benchmarks another build
DATA=$ROOT/bench/data
DB=$DATA/collector.db
RESULTS=$ROOT/bench/RESULTS.md
SPREAD_SECONDS=3600        # history for -t 1h
CLK_TCK=$(getconf CLK_TCK)

# Upper bounds on every step, in seconds: the script always stops by itself.
T_START=10
T_INGEST=$((SECONDS_RUN + 60))
T_FILL=1500
T_QUERY=300

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'collector.sh: %s\n' "$*" >&2; exit 1; }

# --- scratch space and cleanup ------------------------------------------------
WORK=$(mktemp -d /tmp/mesh-bench-collector.XXXXXX)
COLLECTOR_PID=
SAMPLER_PID=
GEN_PIDS=()
PERF_PID=

stop_pid() { # stop_pid PID SIGNAL: signal a child, give it 10 s, then SIGKILL
    local pid=$1 sig=$2 i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill "-$sig" "$pid" 2>/dev/null || true
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

remove_db() { rm -f "$DB" "$DB-wal" "$DB-shm"; }

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${GEN_PIDS[@]}"; do stop_pid "$pid" TERM; done
    stop_pid "$PERF_PID" INT
    stop_pid "$SAMPLER_PID" TERM
    stop_pid "$COLLECTOR_PID" TERM
    if [ "$KEEP" -eq 1 ]; then
        echo "kept: $WORK and $DB" >&2
    else
        remove_db
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- packages, mesh, tapgen, Python classes ---------------------------------------
install_packages() {
    local pkgs=(gcc libc6-dev pkg-config util-linux procps coreutils
        python3-grpcio python3-protobuf protobuf-compiler)
    local missing=() p
    [ "$PERF" -eq 0 ] || pkgs+=(linux-perf)
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}), and not root to install them"
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build_tools() {
    local libs=("$BUILD/libmesh_store.a" "$BUILD/libmesh_lib.a" "$BUILD/libmesh_proto.a") f need=0
    for f in "$MESH" "${libs[@]}"; do [ -e "$f" ] || need=1; done
    if [ "$need" -eq 1 ]; then
        log "building mesh (Release) into build/"
        [ "$(id -u)" -ne 0 ] || "$ROOT/scripts/deps.sh"
        [ -f "$BUILD/CMakeCache.txt" ] ||
            cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build "$BUILD" -j"$(nproc)" --target mesh mesh_store
    fi
    [ -x "$MESH" ] || die "$MESH is not an executable"
    # Not built by CMake on purpose: a load generator, not part of mesh.
    # shellcheck disable=SC2046 # pkg-config output is meant to split into flags
    cc -O2 -Wall -I "$ROOT/lib" -I "$ROOT/store" -I "$BUILD/gen" -o "$WORK/tapgen" \
        "$ROOT/bench/tapgen.c" "${libs[@]}" \
        $(pkg-config --libs sqlite3 libprotobuf-c libnghttp2 openssl) -lm
    mkdir -p "$WORK/py"
    protoc --python_out="$WORK/py" -I "$ROOT/proto" "$ROOT/proto/mesh/tap/v1/tap.proto"
}

# The Query.Stat client: RUNS timed calls per window on one channel, after
# two untimed ones (connection, page cache). Prints, per window,
# "NAME median=MS p95=MS requests=N rows=N".
write_stat_client() {
    cat >"$WORK/stat.py" <<'EOF'
import sys, time, grpc
addr, pydir, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, pydir)
from mesh.tap.v1 import tap_pb2 as pb
ch = grpc.insecure_channel(addr)
grpc.channel_ready_future(ch).result(timeout=10)
stat = ch.unary_unary("/mesh.tap.v1.Query/Stat", request_serializer=pb.StatRequest.SerializeToString,
                      response_deserializer=pb.StatResponse.FromString)
for name in sys.argv[4:]:
    last_s = {"1m": 60, "1h": 3600}[name]
    req = pb.StatRequest(resources=[pb.Resource(type="deploy", namespace="emojivoto")],
                         window=pb.TimeWindow(last_us=last_s * 1_000_000))
    times = []
    for i in range(runs + 2):
        t0 = time.perf_counter()
        resp = stat(req, timeout=60)
        if i >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    p95 = times[max(0, -(-runs * 95 // 100) - 1)]
    print("stat_%s median=%.2f p95=%.2f requests=%d rows=%d" % (name, times[runs // 2] * 1e3,
          p95 * 1e3, sum(r.requests for r in resp.rows), len(resp.rows)))
EOF
}

# --- the collector ------------------------------------------------------------------
if [ "$(nproc)" -ge 2 ]; then
    PIN_COLLECTOR=(taskset -c 0)
    PIN_CLIENT=(taskset -c 1)
else
    PIN_COLLECTOR=()
    PIN_CLIENT=()
fi
PORT=

start_collector() { # start_collector NAME: fresh store, port picked by the kernel
    local name=$1 i
    remove_db
    mkdir -p "$DATA"
    # write back what earlier runs (or other tenants) left dirty first: a
    # checkpoint's fsync in the collector's loop otherwise waits behind it
    # (seen: seconds in folio_wait_writeback after 4 GB of dirty pages)
    sync
    "${PIN_COLLECTOR[@]}" "$MESH" collector --listen 127.0.0.1:0 --db "$DB" \
        --max-db-size 64GiB 2>"$WORK/$name.log" &
    COLLECTOR_PID=$!
    for i in $(seq $((T_START * 10))); do
        grep -q 'listening on' "$WORK/$name.log" && break
        kill -0 "$COLLECTOR_PID" 2>/dev/null || die "collector exited at start: $(cat "$WORK/$name.log")"
        sleep 0.1
    done
    PORT=$(sed -n 's/.*, port \([0-9]*\) .*/\1/p' "$WORK/$name.log")
    [ -n "$PORT" ] || die "collector not listening after ${T_START}s: $(cat "$WORK/$name.log")"
    # RSS every second, to see growth rather than only the peak
    # (the subshell must not run cleanup() when signalled: traps off)
    (trap - EXIT INT TERM
    while kill -0 "$COLLECTOR_PID" 2>/dev/null; do
        awk -v t="$EPOCHREALTIME" '/^VmRSS/ { print t, $2 }' "/proc/$COLLECTOR_PID/status" 2>/dev/null
        sleep 1
    done) >"$WORK/$name.rss" &
    SAMPLER_PID=$!
}

proc_kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$COLLECTOR_PID/status"; }
# user + system CPU seconds of the collector (fields 14 and 15; comm has no spaces)
proc_cpu() { awk -v hz="$CLK_TCK" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$COLLECTOR_PID/stat"; }
# seconds the collector was runnable but waited for its core (other processes
# on core 0): on a shared machine, why its CPU share of the run is below 100%
proc_rqwait() { awk '{ printf "%.2f\n", $2 / 1e9 }' "/proc/$COLLECTOR_PID/schedstat" 2>/dev/null || echo 0; }

stop_collector() { # stop_collector NAME: SIGTERM, and its exit status must be 0
    local name=$1 rc=0
    stop_pid "$SAMPLER_PID" TERM; SAMPLER_PID=
    kill -TERM "$COLLECTOR_PID" 2>/dev/null || true
    timeout 30 tail --pid="$COLLECTOR_PID" -f /dev/null || true
    wait "$COLLECTOR_PID" || rc=$?
    COLLECTOR_PID=
    [ "$rc" -eq 0 ] || die "collector ($name) exited $rc after SIGTERM: $(tail -5 "$WORK/$name.log")"
    if grep -v 'listening on' "$WORK/$name.log" | grep -q .; then
        log "collector ($name) said: $(grep -v 'listening on' "$WORK/$name.log" | head -5)"
    fi
}

# --- generators ---------------------------------------------------------------------
# start_generators NAME TIMEOUT TAPGEN-ARGS...: GENERATORS tapgens on core 1,
# each with its own sender id and seed; wait_generators waits for them. Their
# last lines go to $WORK/NAME.gen.N, the per-10-second lines to NAME.gen.N.err.
start_generators() {
    local name=$1 limit=$2 i
    shift 2
    GEN_PIDS=()
    for i in $(seq "$GENERATORS"); do
        timeout --foreground "$limit" "${PIN_CLIENT[@]}" "$WORK/tapgen" --addr "127.0.0.1:$PORT" \
            --sender "bench-$name-$i-$$" --seed "$i" "$@" \
            >"$WORK/$name.gen.$i" 2>"$WORK/$name.gen.$i.err" &
        GEN_PIDS+=($!)
    done
}

wait_generators() { # wait_generators NAME
    local pid rc=0
    for pid in "${GEN_PIDS[@]}"; do wait "$pid" || rc=$?; done
    GEN_PIDS=()
    [ "$rc" -eq 0 ] || die "a generator failed ($rc): $(cat "$WORK/$1".gen.*.err | tail -5)"
}

gen_sum() { # gen_sum NAME KEY [FORMAT]: sum of KEY=VALUE over the generators' last lines
    cat "$WORK/$1".gen.[0-9]* | tr ' ' '\n' |
        awk -F= -v k="$2" -v f="${3:-%.0f}" '$1 == k { s += $2 } END { printf f "\n", s }'
}
gen_max() { # gen_max NAME KEY
    cat "$WORK/$1".gen.[0-9]* | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k && $2 > m { m = $2 } END { print m + 0 }'
}

run_stats() { # run_stats NAME WINDOW...: the grpcio client on core 1
    local name=$1
    shift
    timeout --foreground "$T_QUERY" "${PIN_CLIENT[@]}" /usr/bin/python3 "$WORK/stat.py" \
        "127.0.0.1:$PORT" "$WORK/py" "$RUNS" "$@" >"$WORK/$name.stat.tmp" 2>"$WORK/stat.err" ||
        die "the Stat client failed: $(tail -5 "$WORK/stat.err")"
}

kv() { # kv FILE LINE-NAME KEY: KEY=VALUE from the line starting with LINE-NAME
    awk -v n="$2" -v k="$3" '$1 == n { for (i = 2; i <= NF; i++) { split($i, a, "=")
        if (a[1] == k) print a[2] } }' "$1"
}

# --- main -------------------------------------------------------------------------------
install_packages
build_tools
write_stat_client
[ "$(nproc)" -ge 2 ] || log "WARNING: one CPU: collector and generators share it (no pinning)"

# 1. sustained ingest
log "phase 1: ${SECONDS_RUN}s of live events from $GENERATORS generator(s) (collector on core 0)"
start_collector live
RSS_IDLE=$(proc_kib VmRSS)
CPU0=$(proc_cpu)
RQ0=$(proc_rqwait)
T0=$EPOCHREALTIME
start_generators live "$T_INGEST" --seconds "$SECONDS_RUN"
wait_generators live
T1=$EPOCHREALTIME
CPU1=$(proc_cpu)
RQ1=$(proc_rqwait)
LIVE_ACKED=$(gen_sum live acked)
LIVE_SECS=$(gen_max live seconds)
LIVE_RATE=$(awk -v a="$LIVE_ACKED" -v s="$LIVE_SECS" 'BEGIN { printf "%.0f", a / s }')
LIVE_MIN10=$(gen_sum live min10)   # per generator, summed: the aggregate's lower bound
LIVE_MAX10=$(gen_sum live max10)
LIVE_DROPPED=$(gen_sum live dropped)
LIVE_GEN_CPU=$(gen_sum live cpu %.2f)
COL_CPU=$(awk -v a="$CPU0" -v b="$CPU1" 'BEGIN { printf "%.2f", b - a }')
COL_WAIT=$(awk -v a="$RQ0" -v b="$RQ1" 'BEGIN { printf "%.2f", b - a }')
COL_WAIT_PCT=$(awk -v c="$COL_WAIT" -v t0="$T0" -v t1="$T1" 'BEGIN { printf "%.0f", 100 * c / (t1 - t0) }')
COL_CORE=$(awk -v c="$COL_CPU" -v t0="$T0" -v t1="$T1" 'BEGIN { printf "%.0f", 100 * c / (t1 - t0) }')
GEN_CORE=$(awk -v c="$LIVE_GEN_CPU" -v t0="$T0" -v t1="$T1" 'BEGIN { printf "%.0f", 100 * c / (t1 - t0) }')
PER_CPU_S=$(awk -v a="$LIVE_ACKED" -v c="$COL_CPU" 'BEGIN { printf "%.0f", a / c }')
LIVE_DB_BYTES=$(($(stat -c %s "$DB") + $(stat -c %s "$DB-wal" 2>/dev/null || echo 0)))
log "phase 1: $LIVE_ACKED events acknowledged in ${LIVE_SECS}s: $LIVE_RATE events/s; collector CPU ${COL_CPU}s, waited ${COL_WAIT}s for its core"
log "phase 1: Stat -t 1m on the live store ($LIVE_ACKED events, all in the last ~$((SECONDS_RUN + 10))s)"
run_stats live 1m
mv "$WORK/live.stat.tmp" "$WORK/live.stat"
log "phase 1: Stat -t 1m while the generators send at full speed"
start_generators load "$T_INGEST" --seconds 30
sleep 3
run_stats load 1m
mv "$WORK/load.stat.tmp" "$WORK/load.stat"
wait_generators load
LIVE_HWM=$(proc_kib VmHWM)

if [ "$PERF" -eq 1 ]; then
    log "profile: 10 s of perf record on the collector under the same load"
    start_generators perf "$T_INGEST" --seconds 14
    sleep 2
    "${PIN_CLIENT[@]}" perf record -q --call-graph dwarf,16384 -F 499 -p "$COLLECTOR_PID" -o "$WORK/perf.data" \
        -- sleep 10 >/dev/null 2>"$WORK/perf.err" &
    PERF_PID=$!
    wait "$PERF_PID" || log "perf record failed: $(tail -3 "$WORK/perf.err")"
    PERF_PID=
    wait_generators perf
fi
stop_collector live

# 2. history: EVENTS back-dated over the last hour, then Stat
log "phase 2: $EVENTS events back-dated over ${SPREAD_SECONDS}s into a fresh store"
start_collector hist
PER_GEN=$(((EVENTS + GENERATORS - 1) / GENERATORS))
start_generators hist "$T_FILL" --count "$PER_GEN" --spread-seconds "$SPREAD_SECONDS"
wait_generators hist
HIST_ACKED=$(gen_sum hist acked)
HIST_SECS=$(gen_max hist seconds)
HIST_RATE=$(awk -v a="$HIST_ACKED" -v s="$HIST_SECS" 'BEGIN { printf "%.0f", a / s }')
log "phase 2: $HIST_ACKED events in ${HIST_SECS}s: $HIST_RATE events/s; Stat -t 1m and -t 1h, $RUNS calls each"
run_stats hist 1m 1h
mv "$WORK/hist.stat.tmp" "$WORK/hist.stat"
timeout --foreground "$T_QUERY" "${PIN_CLIENT[@]}" "$WORK/tapgen" --stat-db "$DB" --runs "$RUNS" \
    >"$WORK/store.stat" 2>"$WORK/store.stat.err" ||
    die "tapgen --stat-db failed: $(tail -3 "$WORK/store.stat.err")"
HIST_HWM=$(proc_kib VmHWM)
HIST_DB_BYTES=$(($(stat -c %s "$DB") + $(stat -c %s "$DB-wal" 2>/dev/null || echo 0)))
stop_collector hist
# every acknowledged event stored once: the store at rest against the acks
HIST_STORED=n/a
if command -v sqlite3 >/dev/null; then
    HIST_STORED=$(timeout 300 sqlite3 -readonly "$DB" 'SELECT count(*) FROM events') ||
        HIST_STORED="n/a (sqlite3 failed)"
    [ "$HIST_STORED" = "$HIST_ACKED" ] ||
        log "WARNING: $HIST_ACKED events acknowledged, but the store holds $HIST_STORED"
fi

# --- report ------------------------------------------------------------------------------
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
kfmt() { awk -v v="$1" 'BEGIN { printf "%.0fk", v / 1000 }'; }
met() { # met VALUE OP TARGET
    awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v <= t
        print ok ? "yes" : "**no**" }'
}
rss_trend() { # first, middle and last VmRSS samples (MiB) of a phase
    awk '{ v[NR] = $2 } END { if (NR) printf "%.1f → %.1f → %.1f", v[1] / 1024, v[int((NR + 1) / 2)] / 1024, v[NR] / 1024 }' "$1"
}
PEAK_HWM=$((LIVE_HWM > HIST_HWM ? LIVE_HWM : HIST_HWM))
S1M=$(kv "$WORK/hist.stat" stat_1m median); S1M95=$(kv "$WORK/hist.stat" stat_1m p95)
S1H=$(kv "$WORK/hist.stat" stat_1h median); S1H95=$(kv "$WORK/hist.stat" stat_1h p95)
L1M=$(kv "$WORK/live.stat" stat_1m median); L1M95=$(kv "$WORK/live.stat" stat_1m p95)
B1M=$(kv "$WORK/load.stat" stat_1m median); B1M95=$(kv "$WORK/load.stat" stat_1m p95)
W1M=$(kv "$WORK/store.stat" stat_1m median); W1M95=$(kv "$WORK/store.stat" stat_1m p95)
W1H=$(kv "$WORK/store.stat" stat_1h median); W1H95=$(kv "$WORK/store.stat" stat_1h p95)

TABLE=$WORK/table.md
{
    echo "Sustained run: $GENERATORS generator(s), ${SECONDS_RUN} s of live events, $LIVE_ACKED acknowledged ($LIVE_DROPPED dropped by the senders), store $(awk -v b="$LIVE_DB_BYTES" 'BEGIN { printf "%.2f GB", b / 1e9 }') on disk ($(awk -v b="$LIVE_DB_BYTES" -v n="$LIVE_ACKED" 'BEGIN { printf "%.0f", b / n }') bytes/event)."
    echo "History: $HIST_ACKED events back-dated over the last ${SPREAD_SECONDS} s into a fresh store (\`SELECT count(*) FROM events\` afterwards: $HIST_STORED), $(awk -v b="$HIST_DB_BYTES" 'BEGIN { printf "%.2f GB", b / 1e9 }') on disk;" \
        "Stat -t 1h counted $(kv "$WORK/hist.stat" stat_1h requests) requests in $(kv "$WORK/hist.stat" stat_1h rows) rows, -t 1m $(kv "$WORK/hist.stat" stat_1m requests)."
    echo "Stat: deploy in emojivoto, $RUNS calls per window after 2 untimed ones, grpcio client timed in Python on core 1, collector idle."
    echo
    echo "| measure | value | target | met |"
    echo "|---|---:|---|---|"
    echo "| ingest, sustained ${SECONDS_RUN} s (events acked / s) | $(kfmt "$LIVE_RATE") | ≥ 300k | $(met "$LIVE_RATE" ">=" 300000) |"
    echo "| ingest, slowest / fastest 10 s | $(kfmt "$LIVE_MIN10") / $(kfmt "$LIVE_MAX10") | | |"
    echo "| collector CPU during the run | ${COL_CPU} s, ${COL_CORE}% of core 0 | | |"
    echo "| collector runnable, waiting for core 0 (other processes on it) | ${COL_WAIT} s, ${COL_WAIT_PCT}% of the run | | |"
    echo "| events per collector CPU-second | $(kfmt "$PER_CPU_S") | ≥ 300k | $(met "$PER_CPU_S" ">=" 300000) |"
    echo "| generator CPU | ${LIVE_GEN_CPU} s, ${GEN_CORE}% of core 1 | | |"
    echo "| collector RSS during the run (start → middle → end, MiB) | $(rss_trend "$WORK/live.rss") | | |"
    echo "| ingest while filling history to $(kfmt "$HIST_ACKED") events | $(kfmt "$HIST_RATE") | | |"
    echo "| Stat -t 1m, $(kfmt "$HIST_ACKED") store: median / p95 (ms) | $S1M / $S1M95 | ≤ 50 | $(met "$S1M95" "<=" 50) |"
    echo "| Stat -t 1h, $(kfmt "$HIST_ACKED") store: median / p95 (ms) | $S1H / $S1H95 | ≤ 50 | $(met "$S1H95" "<=" 50) |"
    echo "| \`mesh_store_stat\` alone -t 1m: median / p95 (ms) | $W1M / $W1M95 | | |"
    echo "| \`mesh_store_stat\` alone -t 1h: median / p95 (ms) | $W1H / $W1H95 | | |"
    echo "| Stat -t 1m right after the sustained run ($(kfmt "$LIVE_ACKED") events in the last minute or two): median / p95 (ms) | $L1M / $L1M95 | | |"
    echo "| Stat -t 1m while ingesting at full speed: median / p95 (ms) | $B1M / $B1M95 | | |"
    echo "| collector peak RSS (VmHWM; idle at start $(mib "$RSS_IDLE") MiB) | $(mib "$PEAK_HWM") MiB | ≤ 64 MB | $(met "$((PEAK_HWM * 1024))" "<=" 64000000) |"
} >"$TABLE"

if [ "$PERF" -eq 1 ] && [ -s "$WORK/perf.data" ]; then
    {
        echo
        echo "Profile of the collector under the same load (store already holding the sustained run's events;" \
            "perf record --call-graph dwarf -F 499, 10 s)."
        echo "Self time by library, then the top 12 symbols:"
        echo
        echo '```'
        perf report -i "$WORK/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null |
            awk '/^ +[0-9.]+%/ && n++ < 6'
        echo
        perf report -i "$WORK/perf.data" --stdio --no-children --sort dso,sym -g none 2>/dev/null |
            awk '/^ +[0-9.]+%/ && n++ < 12'
        echo '```'
        echo
        echo "Inclusive time (children, self) of the stages of ingest:"
        echo
        echo '```'
        perf report -i "$WORK/perf.data" --stdio --children --sort sym -g none 2>/dev/null |
            awk 'match($0, / (commit_pending|mesh_store_ingest|insert_event|acc_add|mesh_store_commit|sqlite3WalFrames|sqlite3WalCheckpoint|protobuf_c_message_free_unpacked|conn_read|report_on_message|protobuf_c_message_unpack|mesh_evt_from_pb|send_msg|malloc|_int_free)( \(inlined\))?$/) {
                    name = $4; if (!(name in seen)) { seen[name] = 1; print } }'
        echo '```'
    } >>"$TABLE"
fi
cat "$TABLE"

if [ "$RECORD" -eq 1 ]; then
    {
        echo "## $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo
        echo "\`bench/collector.sh --seconds $SECONDS_RUN --events $EVENTS --generators $GENERATORS --runs $RUNS\`:" \
            "\`mesh collector\` pinned to core 0 (\`taskset -c 0\`), the load generators (\`bench/tapgen.c\`," \
            "\`mesh_tapsend\`, batches of 1000 events, 32 batches in flight) and the query client on core 1," \
            "gRPC over loopback into SQLite on local disk (WAL)."
        echo "Machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
            "$(awk '/^MemTotal/ { printf "%.0f GB", $2 / 1e6 }' /proc/meminfo) RAM, $(sed -n 's/^PRETTY_NAME="\(.*\)"/\1/p' /etc/os-release);" \
            "SQLite $(pkg-config --modversion sqlite3), nghttp2 $(pkg-config --modversion libnghttp2), protobuf-c $(pkg-config --modversion libprotobuf-c);" \
            "mesh build type: $(awk -F= '/^CMAKE_BUILD_TYPE:/ { print ($2 == "" ? "default (RelWithDebInfo)" : $2) }' "$BUILD/CMakeCache.txt" 2>/dev/null)."
        echo "A shared, noisy 2-core machine, one run: the generator competes with the query client (and the machine's other tenants) for core 1."
        echo
        cat "$TABLE"
    } | "$ROOT/bench/record.sh" "bench/collector.sh results" \
        "\`bench/collector.sh\` measures \`mesh collector\` end to end (issue 3): sustained ingest over gRPC into SQLite on disk, then Query.Stat latency on a store filled with 10M events back-dated over the last hour. Targets: ≥ 300k events/s on one core, Stat ≤ 50 ms at 10M events, collector RSS ≤ 64 MB."
fi
