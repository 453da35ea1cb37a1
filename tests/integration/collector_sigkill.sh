#!/bin/bash
# The collector is killed with SIGKILL in the middle of a stream of 100,200
# events from `mesh replay --collector` and started again on the same store:
# the sender resends what was not acknowledged, the store de-duplicates, and
# exactly 100,200 events are stored: none lost, none twice.
# Usage: collector_sigkill.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
need_corpus
pcap=$SHARED/corpus/emojivoto/grpc.pcap          # 300 exchanges
files=(); for _ in $(seq 334); do files+=("$pcap"); done
want=$((334 * 300))
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_on_port() { # the same port and store each time, so the sender finds it again
    "$MESH" collector --listen 127.0.0.1:$port --db "$WORK/mesh.db" 2>> "$WORK/collector.log" &
    cpid=$!
    for _ in $(seq 100); do [ "$(grep -c listening "$WORK/collector.log")" -ge "$1" ] && return; sleep 0.05; done
}
command -v sqlite3 >/dev/null || skip "sqlite3 (Debian sqlite3) missing"
# the sqlite3 CLI starts in milliseconds: polls fine enough to land mid-stream
count() { sqlite3 -readonly "file:$WORK/mesh.db" 'select count(*) from events' 2>/dev/null || echo 0; }
trap 'kill -9 $cpid 2>/dev/null; rm -rf "$WORK"' EXIT
start_on_port 1
"$MESH" replay "${files[@]}" --collector 127.0.0.1:$port 2> "$WORK/replay.log" > /dev/null &
rpid=$!
# kill it once some, not all, events are in
for _ in $(seq 2000); do
    n=$(count)
    [ "$n" -ge 10000 ] && break
    sleep 0.01
done
kill -9 $cpid; wait $cpid 2>/dev/null
before=$(count)
sleep 0.3
start_on_port 2
wait $rpid; rc=$?
after=$(count)
kill -TERM $cpid; wait $cpid
echo "stored before the kill: $before; after: $after; wanted $want"
tail -1 "$WORK/replay.log"
if [ $rc -eq 0 ]; then ok "replay finished after the collector came back"; else bad "replay exit $rc: $(tail -1 "$WORK/replay.log")"; fi
if [ "$before" -gt 0 ] && [ "$before" -lt "$want" ]; then ok "killed mid-stream ($before of $want stored)"; else bad "kill not mid-stream: $before of $want"; fi
if [ "$after" -eq "$want" ]; then ok "exactly $want events stored: none lost, none twice"; else bad "$after events stored, wanted $want"; fi
if grep -qE '[1-9][0-9]* reconnects' "$WORK/replay.log"; then ok "the sender reconnected"; else bad "no reconnect: $(tail -1 "$WORK/replay.log")"; fi
finish
