#!/bin/bash
# The same exchanges from every supported link layer: the Ethernet captures
# of the shared corpus rewritten as 802.1Q, QinQ, Linux cooked v1, BSD NULL,
# OpenBSD LOOP and raw IP (Linux cooked v2 is the corpus's own mixed.pcap).
# Usage: replay_linktypes.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
BUILD=$1 SRC=$2 SHARED=$3
MESH=$BUILD/mesh
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
[ -d "$SHARED/corpus" ] || { echo "SKIP: $SHARED/corpus missing"; exit 77; }
pass=0 fail=0
for name in emojivoto/grpc emojivoto/http1 zeek/pipelined-requests; do
    pcap=$SHARED/corpus/$name.pcap
    for kind in vlan qinq sll null loop raw; do
        python3 "$SRC/tests/tools/relink.py" "$pcap" "$WORK/x.pcap" $kind
        "$MESH" replay -q -o json "$WORK/x.pcap" | python3 "$SRC/tests/tools/json2expect.py" > "$WORK/got"
        if out=$(python3 "$SHARED/tools/cmp.py" "$SHARED/corpus/$name.expect" "$WORK/got"); then
            echo "ok   $name as $kind: $out"; pass=$((pass + 1))
        else
            echo "FAIL $name as $kind: $out"; fail=$((fail + 1))
        fi
    done
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
