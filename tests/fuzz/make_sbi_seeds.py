#!/usr/bin/env python3
"""Seeds for sbi_fuzz (format in tests/fuzz/sbi_fuzz.cc).

  make_sbi_seeds.py OUT_DIR                  hand-made h2c, HTTP/1.1 and TLS seeds
  make_sbi_seeds.py OUT_DIR CAPTURE [-d ..]  the TCP payloads of a capture's
                                              connections, via tshark (scripts/fuzz.sh)
"""
import os, subprocess, sys

def seg(flags, payload):
    return bytes([flags, len(payload) >> 8, len(payload) & 0xff]) + payload

def frame(t, fl, sid, p):
    return len(p).to_bytes(3, "big") + bytes([t, fl]) + sid.to_bytes(4, "big") + p

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# HPACK, static table only: :method GET (0x82), :path / (0x84), :status 200 (0x88),
# literal :path without indexing (0x04) + length + value.
path = b"/nudm-sdm/v2/imsi-001010000000001/am-data"
req = b"\x82\x04" + bytes([len(path)]) + path
rsp = b"\x88"

def handmade(out):
    os.makedirs(out, exist_ok=True)
    h2 = (seg(0x02, b"") + seg(0x03, b"") +
          seg(0x00, PREFACE + frame(4, 0, 0, b"")) + seg(0x01, frame(4, 0, 0, b"")) +
          seg(0x00, frame(1, 4, 1, req)) + seg(0x01, frame(1, 5, 1, rsp)))
    h1 = (seg(0x02, b"") + seg(0x03, b"") +
          seg(0x00, b"POST /nsmf-pdusession/v1/sm-contexts HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}") +
          seg(0x01, b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"))
    tls = seg(0x10, PREFACE + frame(1, 4, 1, req)) + seg(0x11, frame(1, 4, 1, rsp))
    mid = seg(0x00, frame(1, 4, 3, b"\xbe")) + seg(0x01, frame(1, 4, 3, rsp))
    for name, data in (("h2c", h2), ("http1", h1), ("tls", tls), ("mid_stream", mid)):
        open(os.path.join(out, name), "wb").write(data)

def from_capture(out, cap, opts):
    os.makedirs(out, exist_ok=True)
    rows = subprocess.run(["tshark", "-n", "-r", cap] + opts + ["-Y", "tcp.len>0 && !gtp", "-T", "fields",
                           "-e", "tcp.stream", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.payload"],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    streams = {}
    for r in rows:
        s, sp, dp, p = (r.split("\t") + ["", "", "", ""])[:4]
        if not p:
            continue
        st = streams.setdefault(s, {"client": sp, "data": b""})
        flags = 0x00 if sp == st["client"] else 0x01
        b = bytes.fromhex(p.replace(":", ""))
        st["data"] += seg(flags, b[:65535])
    base = os.path.basename(cap)
    for s, st in list(streams.items())[:20]:
        if len(st["data"]) <= 65536:
            open(os.path.join(out, "%s.%s" % (base, s)), "wb").write(st["data"][:65536])

if __name__ == "__main__":
    if len(sys.argv) == 2:
        handmade(sys.argv[1])
    else:
        from_capture(sys.argv[1], sys.argv[2], sys.argv[3:])
