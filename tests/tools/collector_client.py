#!/usr/bin/python3
"""collector_client.py ADDR PYDIR: drives every method of a running
`mesh collector` from Python's grpcio (classes from protoc --python_out in
PYDIR) and checks the answers. Prints ok/FAIL lines and "N passed, N failed"."""
import sys, grpc, time, threading
sys.path.insert(0, sys.argv[2])
from mesh.tap.v1 import tap_pb2 as pb
ch = grpc.insecure_channel(sys.argv[1])
report = ch.stream_stream("/mesh.tap.v1.Collector/Report", request_serializer=pb.ReportRequest.SerializeToString, response_deserializer=pb.ReportAck.FromString)
now = int(time.time() * 1e6)
def ev(i, path, gs):
    e = pb.TapEvent(ts=now - 1000 * i, proxy_direction=pb.INBOUND, src="10.0.0.1:5000", dst="10.0.0.2:8080", proto="grpc", method="POST", authority="voting:8080", path=path, status=200, grpc_status=gs, latency_us=100 + i, duration_us=120 + i, req_bytes=5, rsp_bytes=7, id="1:%d" % i)
    e.dst_labels["namespace"] = "emojivoto"; e.dst_labels["deployment"] = "voting"
    e.src_labels["namespace"] = "emojivoto"; e.src_labels["deployment"] = "web"
    return e
batches = [pb.ReportRequest(sender_id="py", seq=s, events=[ev(s * 10 + i, "/emojivoto.v1.VotingService/VoteDoughnut" if i % 5 == 0 else "/emojivoto.v1.VotingService/VoteJoy", 2 if i % 5 == 0 else 0) for i in range(10)]) for s in (1, 2, 3)]
batches.append(batches[1])  # duplicate
passed = failed = 0
def check(label, cond, detail=""):
    global passed, failed
    print(("ok   " if cond else "FAIL ") + label + ("" if cond else " " + str(detail)))
    passed += bool(cond); failed += not cond
acks = list(report(iter(batches)))
check("Report: one ack per batch, the resent one a duplicate", [(a.seq, a.stored, a.duplicate) for a in acks] == [(1, 10, False), (2, 10, False), (3, 10, False), (2, 0, True)], acks)
stat = ch.unary_unary("/mesh.tap.v1.Query/Stat", request_serializer=pb.StatRequest.SerializeToString, response_deserializer=pb.StatResponse.FromString)
r = stat(pb.StatRequest(resources=[pb.Resource(type="deploy", namespace="emojivoto")], window=pb.TimeWindow(last_us=60_000_000)))
rows = [(x.type, x.namespace, x.name, x.requests, x.failures) for x in r.rows]
check("Stat: voting counted once, 6 of 30 failed", rows == [("deploy", "emojivoto", "voting", 30, 6)], rows)
check("Stat: p50 within 1%", abs(r.rows[0].latency_p50_us - 124) <= 2, r.rows[0].latency_p50_us)
top = ch.unary_unary("/mesh.tap.v1.Query/Top", request_serializer=pb.TopRequest.SerializeToString, response_deserializer=pb.TopResponse.FromString)
r = top(pb.TopRequest(filter=pb.Filter(resource=pb.Resource(type="deploy", name="voting")), window=pb.TimeWindow(last_us=60_000_000)))
rows = [(x.source, x.destination, x.path, x.count, x.failures) for x in r.rows]
check("Top: rows per path, VoteDoughnut all failed", rows == [("web", "voting", "/emojivoto.v1.VotingService/VoteJoy", 24, 0), ("web", "voting", "/emojivoto.v1.VotingService/VoteDoughnut", 6, 6)], rows)
watch = ch.unary_stream("/mesh.tap.v1.Query/Watch", request_serializer=pb.WatchRequest.SerializeToString, response_deserializer=pb.WatchEvent.FromString)
def subscribed(got, path):
    """Reports one matching probe event at a time (sender "probe") until the
    watch has delivered one: then it is known to be subscribed."""
    for k in range(100):
        probe.seq += 1
        list(report(iter([pb.ReportRequest(sender_id="probe", seq=probe.seq, events=[ev(1000 + probe.seq, path, 0)])])))
        time.sleep(0.05)
        if got:
            return True
    return False
class probe: seq = 0

got = []
w = watch(pb.WatchRequest(filter=pb.Filter(path_prefix="/emojivoto.v1.VotingService/VoteD")))
def consume():
    try:
        for we in w:
            got.append(we)
    except grpc.RpcError:
        pass  # CANCELLED when the test is done with it
t = threading.Thread(target=consume); t.start()
check("Watch: subscribed", subscribed(got, "/emojivoto.v1.VotingService/VoteDeer"))
list(report(iter([pb.ReportRequest(sender_id="py", seq=4, events=[ev(40 + i, "/emojivoto.v1.VotingService/VoteDoughnut", 2) for i in range(3)])])))
for _ in range(100):
    if sum(g.event.path.endswith("VoteDoughnut") for g in got) >= 3: break
    time.sleep(0.05)
w.cancel(); t.join(5)
got = [g for g in got if g.event.path.endswith("VoteDoughnut")]
check("Watch: live events matching the filter", [(g.event.path, g.event.grpc_status) for g in got] == [("/emojivoto.v1.VotingService/VoteDoughnut", 2)] * 3, got)
# a subscriber over its max_rps misses events and is told how many: the probe
# that shows it subscribed uses its token, so all 10 of the burst are missed
got2 = []
w2 = watch(pb.WatchRequest(filter=pb.Filter(path_prefix="/slow"), max_rps=1))
def consume2():
    try:
        for we in w2:
            got2.append(we)
    except grpc.RpcError:
        pass
t2 = threading.Thread(target=consume2); t2.start()
check("Watch max_rps: subscribed", subscribed(got2, "/slow/probe"))
list(report(iter([pb.ReportRequest(sender_id="py", seq=5, events=[ev(50 + i, "/slow", 0) for i in range(10)])])))
time.sleep(1.2)
list(report(iter([pb.ReportRequest(sender_id="py", seq=6, events=[ev(60, "/slow", 0)])])))
for _ in range(100):
    if len(got2) >= 2: break
    time.sleep(0.05)
w2.cancel(); t2.join(5)
check("Watch max_rps: the probe, then the next event with missed=10", [g.missed for g in got2] == [0, 10], [(g.event.path, g.missed) for g in got2])

def code_of(fn):
    try:
        fn(); return None
    except grpc.RpcError as e:
        return e.code()
check("unknown method: UNIMPLEMENTED", code_of(lambda: ch.unary_unary("/mesh.tap.v1.Query/Nope")(b"")) == grpc.StatusCode.UNIMPLEMENTED)
check("bad resource type: INVALID_ARGUMENT", code_of(lambda: stat(pb.StatRequest(resources=[pb.Resource(type="bogus")]))) == grpc.StatusCode.INVALID_ARGUMENT)
check("bytes that are not protobuf: INVALID_ARGUMENT", code_of(lambda: ch.unary_unary("/mesh.tap.v1.Query/Stat")(b"\xff\xff\xff")) == grpc.StatusCode.INVALID_ARGUMENT)
check("batch without sender_id: INVALID_ARGUMENT", code_of(lambda: list(report(iter([pb.ReportRequest(seq=9)])))) == grpc.StatusCode.INVALID_ARGUMENT)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
