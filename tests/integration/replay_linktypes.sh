#!/bin/bash
# The same exchanges from every supported link layer: the Ethernet captures
# of the shared corpus rewritten as 802.1Q, QinQ, Linux cooked v1, BSD NULL,
# OpenBSD LOOP and raw IP (Linux cooked v2 is the corpus's own mixed.pcap).
# Usage: replay_linktypes.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
need_corpus
for name in emojivoto/grpc emojivoto/http1 zeek/pipelined-requests; do
    pcap=$SHARED/corpus/$name.pcap
    for kind in vlan qinq sll null loop raw; do
        python3 "$SRC/tests/tools/relink.py" "$pcap" "$WORK/x.pcap" $kind
        "$MESH" replay -q -o json "$WORK/x.pcap" | python3 "$SRC/tests/tools/json2expect.py" > "$WORK/got"
        cmp_rows "$name as $kind" "$SHARED/corpus/$name.expect" "$WORK/got"
    done
done
finish
