#!/bin/bash
# Captures that begin mid-connection (the first 3%, 10% or 50% of packets
# cut away): replay may report fewer exchanges, never a wrong one. Every row
# must be in tshark's reading of the whole capture, and HTTP/1 must resync.
# Usage: replay_midstream.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
need_editcap
need_corpus
for name in grpc h2c http1 mixed; do
    pcap=$SHARED/corpus/emojivoto/$name.pcap
    n=$(capinfos -c -M "$pcap" | awk '/Number of packets/ {print $NF}')
    for pct in 3 10 50; do
        k=$((n * pct / 100))
        editcap -r "$pcap" "$WORK/cut.pcap" "$k-$n"
        "$MESH" replay -o json "$WORK/cut.pcap" 2> "$WORK/summary" | python3 "$SRC/tests/tools/json2expect.py" > "$WORK/got"
        if out=$(python3 - "$SHARED/corpus/emojivoto/$name.expect" "$WORK/got" "$name" "$pct" <<'PY'
import collections, sys
truth = collections.Counter(open(sys.argv[1]).read().splitlines())
got = collections.Counter(open(sys.argv[2]).read().splitlines())
extra = got - truth
name, pct = sys.argv[3], int(sys.argv[4])
print(f"got={sum(got.values())} of {sum(truth.values())} wrong={sum(extra.values())}", end="")
for row in list(extra)[:3]:
    print(" unexpected:", row.replace("\t", " "), end="")
ok = not extra
if name == "http1":  # resync: at least the exchanges wholly after the cut
    ok = ok and sum(got.values()) >= sum(truth.values()) * (100 - pct) / 100 * 0.9
sys.exit(0 if ok else 1)
PY
        ); then
            ok "$name from packet $k: $out"
        else
            bad "$name from packet $k: $out"
        fi
    done
done
finish
