#!/bin/bash
# 10,000 concurrent connections through mesh-proxy (issue 9, "Load"): one
# keep-alive HTTP/1.1 client connection each, all open at once, each with one
# GET answered by nginx, tap on. Every request answered 200; the proxy's fds
# and RSS are sampled with all of them open and again after they are gone:
# the downstream descriptors are all given back, and no request failed.
# LOAD_CONNS=N changes the count. Raises the fd limit (root may).
# Usage: proxy_conns.sh BUILD_DIR SOURCE_DIR SHARED_DIR   (exit 77: skipped)
set -u
. "$(dirname "$0")/../tools/testlib.sh"
. "$(dirname "$0")/../fault/lib/faultlib.sh"
for tool in nginx sqlite3; do command -v $tool > /dev/null || skip "$tool missing (scripts/deps.sh)"; done
N=${LOAD_CONNS:-10000}
# the proxy needs N downstream fds and at most 128 idle pooled upstream ones
# once answered (h1.c H1P_POOL_MAX); the client and nginx are processes of their own
ulimit -n $((2 * N + 1000)) 2> /dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((N + 500)) ] || skip "fd limit $(ulimit -n) too low for $N connections"
npid= hpid=
start_collector # sets its own EXIT trap: ours replaces it, after
trap 'exec 7>&- 2> /dev/null; stop_proxies; kill $npid $hpid $cpid 2> /dev/null; wait 2> /dev/null; rm -rf "$WORK"' EXIT

nport=$(free_port)
mkdir -p "$WORK/www" "$WORK/ngx"
echo ok > "$WORK/www/index.html"
cat > "$WORK/ngx/nginx.conf" << EOF
worker_processes 1; daemon off; master_process off; worker_rlimit_nofile $(ulimit -n);
pid $WORK/ngx/nginx.pid; error_log $WORK/ngx/error.log error;
events { worker_connections $((N + 1000)); }
http { access_log off; client_body_temp_path $WORK/ngx/b; proxy_temp_path $WORK/ngx/p;
  fastcgi_temp_path $WORK/ngx/f; uwsgi_temp_path $WORK/ngx/u; scgi_temp_path $WORK/ngx/s;
  keepalive_timeout 300s; server { listen 127.0.0.1:$nport backlog=16384; root $WORK/www; } }
EOF
nginx -c "$WORK/ngx/nginx.conf" -p "$WORK/ngx" > "$WORK/nginx.log" 2>&1 &
npid=$!
wait_port $nport || exit 1
start_proxy px --outbound 127.0.0.1:0 --admin off --max-conns $((N + 1000)) --idle-timeout 120s \
    --route "*=127.0.0.1:$nport" --collector 127.0.0.1:$port || exit 1
fd0=$(fds $ppid) rss0=$(rss $ppid)

mkfifo "$WORK/ctl"
"$PY" "$FAULTPEER" hold "$pout" load.local "$N" < "$WORK/ctl" > "$WORK/hold.out" 2>&1 &
hpid=$!
exec 7> "$WORK/ctl"
for _ in $(seq 600); do grep -q "^open" "$WORK/hold.out" && break; sleep 0.1; done
line=$(head -1 "$WORK/hold.out")
fd1=$(fds $ppid) rss1=$(rss $ppid)
echo "$line; proxy: $fd1 fds, $rss1 kB"
case "$line" in
    "open $N answered $N failed 0 "*) ok "$N connections open at once, every GET answered 200 (${line##* in })" ;;
    *) bad "$N connections: $line" ;;
esac
[ "$fd1" -ge "$N" ] && ok "proxy holds $fd1 fds with them open (downstream + pooled upstream)" || bad "proxy holds only $fd1 fds"
echo >&7
exec 7>&-
wait $hpid; hpid=
fd2=$(settle_fds $ppid $((fd1 - N))) rss2=$(rss $ppid)
down=$((fd1 - fd2))
[ "$down" -ge "$N" ] && ok "after they closed: $fd2 fds ($down given back; pooled upstream ones may stay)" ||
    bad "after they closed: $fd2 fds, only $down of $N given back"
figure proxy_conns conns=$N answered=$(sed -n 's/^open [0-9]* answered \([0-9]*\).*/\1/p' "$WORK/hold.out") fds=$fd0/$fd1/$fd2 rss_kb=$rss0/$rss1/$rss2 kb_per_conn=$(( (rss1 - rss0) / N ))
kill -TERM $ppid; wait $ppid; rc=$?
PROXY_PIDS=()
[ $rc = 0 ] && ok "proxy drained and exited 0" || bad "proxy exit $rc: $(tail -2 "$WORK/px.log")"
grep -q "tap events: $N acknowledged, 0 dropped" "$WORK/px.log" && ok "$N tap events acknowledged, none dropped" ||
    bad "tap: $(tail -1 "$WORK/px.log")"
sanitizer_check "$WORK/px.log"
finish
