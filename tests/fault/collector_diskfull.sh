#!/bin/bash
# The collector's disk fills up in the middle of ingest (issue 9, "Faults"):
# a tmpfs of 8 MiB holds the store, a filler file takes all but a little of
# it, and `mesh replay --collector` streams 12,000 events. The collector must
# say so in one clear line, stop acknowledging (ingest pauses, senders are
# held back by flow control), stay up, and when the filler is removed commit
# what it held and carry on: every event the sender had acknowledged is
# stored, none twice, and the store passes integrity_check. (SIGKILL during
# ingest: tests/integration/collector_sigkill.sh.)
# Usage: collector_diskfull.sh BUILD_DIR SOURCE_DIR SHARED_DIR   (exit 77: skipped)
set -u
. "$(dirname "$0")/../tools/testlib.sh"
. "$(dirname "$0")/lib/faultlib.sh"
need_corpus
command -v sqlite3 > /dev/null || skip "sqlite3 missing (scripts/deps.sh)"
MNT=$(mktemp -d /tmp/flt-diskfull.XXXXXX)
mount -t tmpfs -o size=8m,mode=0700 flt-diskfull "$MNT" 2> /dev/null || { rmdir "$MNT"; skip "cannot mount a tmpfs (needs root)"; }
cpid= rpid=
cleanup() {
    kill $cpid $rpid 2> /dev/null; wait $cpid $rpid 2> /dev/null
    umount "$MNT" 2> /dev/null || umount -l "$MNT"; rmdir "$MNT"; rm -rf "$WORK"
}
trap cleanup EXIT
[ -n "${KEEP_LOG:-}" ] && trap 'cp "$WORK/collector.log" /tmp/flt-collector.log; cleanup' EXIT
pcap=$SHARED/corpus/emojivoto/grpc.pcap # 300 exchanges
files=(); for _ in $(seq 40); do files+=("$pcap"); done
want=$((40 * 300 + 300))
port=$(free_port)
"$MESH" collector --listen 127.0.0.1:$port --db "$MNT/mesh.db" 2> "$WORK/collector.log" &
cpid=$!
wait_port $port || exit 1
count() { sqlite3 -readonly "file:$MNT/mesh.db" 'select count(*) from events' 2> /dev/null || echo 0; }
"$MESH" replay -q "$pcap" --collector 127.0.0.1:$port > /dev/null 2>&1 || bad "first 300 events not stored"

# fill the disk but for 256 KiB
avail=$(df -k --output=avail "$MNT" | tail -1)
dd if=/dev/zero of="$MNT/filler" bs=1k count=$((avail - 256)) status=none 2> /dev/null
echo "free: $(df -k --output=avail "$MNT" | tail -1) kB; store $(du -k "$MNT/mesh.db" | cut -f1) kB"
"$MESH" replay "${files[@]}" --collector 127.0.0.1:$port > /dev/null 2> "$WORK/replay.log" &
rpid=$!
for _ in $(seq 200); do grep -q "ingest paused" "$WORK/collector.log" && break; sleep 0.05; done
line=$(grep "ingest paused" "$WORK/collector.log")
case "$line" in
    *"or disk is full"*) ok "one clear line: $line" ;;
    *) bad "no disk-full message: $(cat "$WORK/collector.log")" ;;
esac
full1=$(count)
sleep 3
full2=$(count)
kill -0 $cpid 2> /dev/null && ok "collector still up while the disk is full" || bad "collector died: $(tail -3 "$WORK/collector.log")"
[ "$full1" = "$full2" ] && [ "$full1" -lt $want ] && ok "ingest paused at $full1 of $want events" ||
    bad "while full: $full1 then $full2 events (of $want)"
[ "$(grep -c 'ingest paused' "$WORK/collector.log")" = 1 ] && ok "said once, not every retry" ||
    bad "$(grep -c 'ingest paused' "$WORK/collector.log") paused lines"
kill -0 $rpid 2> /dev/null && ok "the sender waits (nothing acknowledged it could lose)" || bad "replay ended while the disk was full: $(cat "$WORK/replay.log")"

rm -f "$MNT/filler"
wait $rpid; rc=$?
rpid=
grep -q "writable again" "$WORK/collector.log" && ok "$(grep -o 'writable again.*' "$WORK/collector.log")" || bad "no resume line: $(cat "$WORK/collector.log")"
[ $rc = 0 ] && ok "replay finished: $(grep acknowledged "$WORK/replay.log")" || bad "replay exit $rc: $(cat "$WORK/replay.log")"
acked=$(sed -n 's/.*: \([0-9]*\) events acknowledged.*/\1/p' "$WORK/replay.log")
kill -TERM $cpid; wait $cpid; crc=$?
cpid=
[ $crc = 0 ] && ok "collector exit 0 after SIGTERM" || bad "collector exit $crc"
stored=$(count)
[ "$stored" = $want ] && [ "$acked" = $((want - 300)) ] && ok "all $want events stored ($acked acknowledged in the full-disk run), none twice" ||
    bad "stored $stored, acknowledged $acked + 300, wanted $want"
ic=$(sqlite3 -readonly "file:$MNT/mesh.db" 'pragma integrity_check' 2>&1)
[ "$ic" = ok ] && ok "integrity_check: ok" || bad "integrity_check: $ic"
sanitizer_check "$WORK/collector.log"
figure collector_diskfull events_sent=$want acked=$((acked + 300)) stored=$stored paused_at=$full1
finish
