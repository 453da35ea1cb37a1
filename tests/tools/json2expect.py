#!/usr/bin/python3
"""json2expect.py < EVENTS.jsonl: mesh's JSON events as .expect rows
(proto method authority path status grpc_status, '-' where absent), the
format ../shared/tools/cmp.py compares."""
import json
import sys

for line in sys.stdin:
    e = json.loads(line)
    row = [e.get("proto"), e.get("method"), e.get("authority"), e.get("path"),
           e.get("status"), e.get("grpc_status")]
    print("\t".join("-" if v is None else str(v) for v in row))
