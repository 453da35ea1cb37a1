#!/bin/bash
# `mesh collector` driven from Python's grpcio (Debian python3-grpcio, classes
# from protoc --python_out): Report (acks after commit, duplicates dropped),
# Stat, Top, Watch, and the error statuses of a real gRPC server.
# Usage: collector_grpcio.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
/usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null || skip "python3-grpcio or python3-protobuf missing"
command -v protoc >/dev/null || skip "protoc (Debian protobuf-compiler) missing"
mkdir -p "$WORK/py"
protoc --python_out="$WORK/py" -I"$SRC/proto" "$SRC/proto/mesh/tap/v1/tap.proto"
start_collector
pid=$cpid
timeout 60 /usr/bin/python3 "$SRC/tests/tools/collector_client.py" 127.0.0.1:$port "$WORK/py"
rc=$?
kill -TERM $pid; wait $pid; crc=$?
[ $crc -eq 0 ] || { echo "FAIL collector exit status $crc after SIGTERM: $(cat "$WORK/collector.log")"; exit 1; }
[ "$(stat -c %a "$WORK/mesh.db")" = 600 ] || { echo "FAIL store mode $(stat -c %a "$WORK/mesh.db")"; exit 1; }
exit $rc
