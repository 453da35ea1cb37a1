#!/bin/bash
# Bad input to `mesh replay`: one line on stderr naming the file and the
# problem, exit status 2, never a crash; a truncated capture still reports
# every exchange that completed before the cut.
# Usage: replay_badinput.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"

# expect_error LABEL FILE PATTERN: exit 2, exactly one stderr line naming FILE and matching PATTERN
expect_error() {
    local label=$1 file=$2 pattern=$3
    "$MESH" replay -q -o json "$file" > "$WORK/out" 2> "$WORK/err"
    local rc=$?
    local lines; lines=$(wc -l < "$WORK/err")
    if [ $rc -eq 2 ] && [ "$lines" -eq 1 ] && grep -qF -- "$file" "$WORK/err" && grep -qE -- "$pattern" "$WORK/err"; then
        ok "$label: $(cat "$WORK/err")"
    else
        bad "$label: rc=$rc lines=$lines stderr=$(cat "$WORK/err")"
    fi
}

head -c 4096 /dev/urandom > "$WORK/random.bin"
expect_error "random bytes" "$WORK/random.bin" "not a pcap or pcapng capture"
printf 'GET / HTTP/1.1\r\n\r\n' > "$WORK/text.pcap"
expect_error "a text file" "$WORK/text.pcap" "not a pcap or pcapng capture"
: > "$WORK/empty.pcap"
expect_error "an empty file" "$WORK/empty.pcap" "capture"
expect_error "a missing file" "$WORK/missing.pcap" "No such file"
# a pcap header with link type 147 (USER0), then one packet
python3 - "$WORK/user0.pcap" <<'PY'
import struct, sys
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 147))
    f.write(struct.pack("<IIII", 1, 0, 4, 4) + b"abcd")
PY
expect_error "unknown link type" "$WORK/user0.pcap" "unsupported link type 147"

# cut in the middle of a packet: an error, and the exchanges before the cut
pcap=$SRC/tests/data/emojivoto.pcap   # shipped in the repository
size=$(stat -c %s "$pcap")
head -c $((size / 2 + 7)) "$pcap" > "$WORK/cut.pcap"
expect_error "capture cut mid-packet" "$WORK/cut.pcap" "cut short"
n=$(grep -c '"status"' "$WORK/out")
full=$("$MESH" replay -q -o json "$pcap" | grep -c '"status"')
if [ "$n" -gt 20 ] && [ "$n" -lt "$full" ]; then ok "cut capture reported $n of $full exchanges"; else bad "cut capture reported $n of $full"; fi

# edge-methods: odd request lines; no agreed answer, but no crash and exit 0
edge=$SHARED/corpus/zeek/edge-methods.pcap
if [ -f "$edge" ]; then
    if "$MESH" replay -q -o json "$edge" > "$WORK/edge" 2> "$WORK/err"; then
        ok "edge-methods.pcap: $(wc -l < "$WORK/edge") events"
    else
        bad "edge-methods.pcap: exit $? $(cat "$WORK/err")"
    fi
    # every output line is valid JSON
    if python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$WORK/edge"; then ok "edge-methods JSON parses"; else bad "edge-methods JSON"; fi
else
    echo "skip edge-methods.pcap: $SHARED/corpus missing"
fi

# random bytes after a valid pcap header: libpcap reads garbage records
python3 - "$WORK/garbage.pcap" <<'PY'
import struct, sys, random
r = random.Random(7)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for i in range(200):
        body = bytes(r.randrange(256) for _ in range(r.randrange(1, 200)))
        # Ethernet/IPv4/TCP-shaped prefix so the deeper layers see junk too
        eth = b"\0" * 12 + b"\x08\x00"
        ip = bytes([0x45, 0, 0, 40 + len(body), 0, 0, 0, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1])
        tcp = struct.pack(">HHIIBBHHH", 1000 + i % 3, 80, r.randrange(2**32), 0, 0x50, r.randrange(256), 0, 0, 0)
        pkt = eth + ip + tcp + body
        f.write(struct.pack("<IIII", i, 0, len(pkt), len(pkt)) + pkt)
PY
"$MESH" replay -q -o json "$WORK/garbage.pcap" > /dev/null 2> "$WORK/err"
rc=$?
if [ $rc -eq 0 ]; then ok "random TCP payloads: exit 0"; else bad "random TCP payloads: exit $rc $(cat "$WORK/err")"; fi

# usage errors
"$MESH" replay 2> "$WORK/err"; rc=$?
if [ $rc -eq 2 ] && [ "$(wc -l < "$WORK/err")" -eq 1 ]; then ok "no file: $(cat "$WORK/err")"; else bad "no file: rc=$rc"; fi
"$MESH" stat --pcap "$pcap" -o yaml 2> "$WORK/err"; rc=$?
if [ $rc -eq 2 ] && grep -q yaml "$WORK/err"; then ok "bad -o: $(cat "$WORK/err")"; else bad "bad -o: rc=$rc"; fi
"$MESH" stat bogus/x --pcap "$pcap" 2> "$WORK/err"; rc=$?
if [ $rc -eq 2 ] && grep -q "bogus" "$WORK/err"; then ok "bad resource: $(cat "$WORK/err")"; else bad "bad resource: rc=$rc"; fi
printf 'nonsense line\n' > "$WORK/bad.map"
"$MESH" stat --pcap "$pcap" --labels "$WORK/bad.map" 2> "$WORK/err"; rc=$?
if [ $rc -eq 2 ] && grep -q "bad.map:1:" "$WORK/err"; then ok "bad label map: $(cat "$WORK/err")"; else bad "bad label map: rc=$rc"; fi

finish
