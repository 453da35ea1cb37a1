#!/usr/bin/python3
"""Per exchange, the value of one request header, one final-response header
and one trailer, as rows "method<TAB>path<TAB>REQ=value<TAB>RSP=value<TAB>
TRL=value" ('-' where absent; multiset order), for ../shared/tools/cmp.py:

  headers_truth.py tshark PCAP REQ RSP TRL [H2PORT ...]   what tshark reads
  headers_truth.py mesh REQ RSP TRL < EVENTS.jsonl        what mesh's JSON events carry

tshark's side: HTTP/1.x from the http dissector's raw header lines, the
request paired with its final (non-1xx) response by http.request_in;
HTTP/2 from the http2 dissector (PORTs decoded as cleartext HTTP/2), per TCP
stream and stream id: the request's HEADERS and the first final response
HEADERS, and a later HEADERS without :status (the trailers; HTTP/2 only:
tshark's http dissector does not list HTTP/1 trailer fields, so TRL is '-'
there). Only exchanges tshark saw a request for.
"""
import json
import subprocess
import sys


def as_list(x):
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def tshark(pcap, ports, flt):
    cmd = ["tshark", "-r", pcap, "-T", "json", "--no-duplicate-keys",
           "-o", "tcp.desegment_tcp_streams:TRUE", "-o", "tcp.reassemble_out_of_order:TRUE", "-Y", flt]
    for p in ports:
        cmd += ["-d", "tcp.port==%s,http2" % p]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")


def line_fields(lines):
    """"Name: value\\r\\n" lines -> {name: first value}"""
    got = {}
    for ln in as_list(lines):
        name, sep, value = ln.partition(":")
        if sep:
            got.setdefault(name.strip().lower(), value.strip(" \t\r\n"))
    return got


def h1(pcap, ports, req_name, rsp_name, trl_name):
    reqs, order = {}, []
    for pkt in tshark(pcap, ports, "http.request or http.response"):
        L = pkt["_source"]["layers"]
        fr = L["frame"]["frame.number"]
        for h in as_list(L.get("http")):
            start = next((v for v in h.values() if isinstance(v, dict) and
                          ("http.request.method" in v or "http.response.code" in v)), None)
            if start is None:
                continue
            if "http.request.method" in start:
                reqs[fr] = {"method": start["http.request.method"], "path": start.get("http.request.uri", "-"),
                            "q": line_fields(h.get("http.request.line")).get(req_name, "-"), "s": "-"}
                order.append(fr)
            elif int(start["http.response.code"]) >= 200 or start["http.response.code"] == "101":
                r = reqs.get(h.get("http.request_in"))
                if r is not None and r["s"] == "-":
                    r["s"] = line_fields(h.get("http.response.line")).get(rsp_name, "-")
    for fr in order:
        r = reqs[fr]
        yield r["method"], r["path"], r["q"], r["s"], "-"


def h2(pcap, ports, req_name, rsp_name, trl_name):
    streams, order = {}, []
    for pkt in tshark(pcap, ports, "http2.type==1"):
        L = pkt["_source"]["layers"]
        tcp = L["tcp"]["tcp.stream"]
        for h in as_list(L.get("http2")):
            for st in as_list(h.get("http2.stream")):
                if st.get("http2.type") != "1":
                    continue
                fields = {}
                for hd in as_list(st.get("http2.header")):
                    fields.setdefault(hd.get("http2.header.name"), hd.get("http2.header.value", ""))
                key = (tcp, st["http2.streamid"])
                if ":method" in fields and key not in streams:
                    streams[key] = {"method": fields[":method"], "path": fields.get(":path", "-"),
                                    "q": fields.get(req_name, "-"), "s": None, "t": "-"}
                    order.append(key)
                elif ":status" in fields and key in streams and streams[key]["s"] is None and \
                        not fields[":status"].startswith("1"):
                    streams[key]["s"] = fields.get(rsp_name, "-")
                elif ":status" not in fields and key in streams and streams[key]["s"] is not None:
                    streams[key]["t"] = fields.get(trl_name, "-")
    for key in order:
        r = streams[key]
        yield r["method"], r["path"], r["q"], r["s"] or "-", r["t"]


def mesh(req_name, rsp_name, trl_name):
    for line in sys.stdin:
        e = json.loads(line)
        rsp = e.get("response_headers", [])
        q = next((h.get("value", "<redacted>") for h in e.get("headers", []) if h["name"] == req_name), "-")
        s = next((h.get("value", "<redacted>") for h in rsp if h["name"] == rsp_name and not h.get("trailer")), "-")
        t = next((h.get("value", "<redacted>") for h in rsp if h["name"] == trl_name and h.get("trailer")), "-")
        yield e.get("method", "-"), e.get("path", "-"), q, s, t


def main():
    if sys.argv[1] == "tshark":
        pcap, names, ports = sys.argv[2], sys.argv[3:6], sys.argv[6:]
        rows = list(h1(pcap, ports, *names)) + list(h2(pcap, ports, *names))
    else:
        names = sys.argv[2:5]
        rows = mesh(*names)
    for m, p, q, s, t in rows:
        print("\t".join([m, p, names[0] + "=" + q, names[1] + "=" + s, names[2] + "=" + t]))


if __name__ == "__main__":
    main()
