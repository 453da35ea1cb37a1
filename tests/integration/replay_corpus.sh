#!/bin/bash
# Replays every shared capture that has tshark's reading (.expect) and
# requires exactly those exchanges: as recorded, after mangle.py reorders and
# duplicates packets, and after conversion to pcapng.
# Usage: replay_corpus.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
need_editcap
need_corpus

check() { # check LABEL PCAP EXPECT
    local label=$1 pcap=$2 expect=$3
    if ! "$MESH" replay -q -o json "$pcap" > "$WORK/out.json" 2> "$WORK/err"; then
        bad "$label: mesh replay exited $?: $(cat "$WORK/err")"; return
    fi
    python3 "$SRC/tests/tools/json2expect.py" < "$WORK/out.json" > "$WORK/got"
    cmp_rows "$label" "$expect" "$WORK/got"
}

for expect in "$SHARED"/corpus/*/*.expect; do
    pcap=${expect%.expect}.pcap
    name=$(basename "$(dirname "$pcap")")/$(basename "$pcap" .pcap)
    check "$name" "$pcap" "$expect"
    for seed in 1 2; do
        python3 "$SHARED/tools/mangle.py" "$pcap" "$WORK/mangled.pcap" both $seed
        check "$name mangled(both,$seed)" "$WORK/mangled.pcap" "$expect"
    done
    editcap -F pcapng "$pcap" "$WORK/conv.pcapng"
    check "$name pcapng" "$WORK/conv.pcapng" "$expect"
done
finish
