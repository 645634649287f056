#!/usr/bin/env bash
# `kagami replay --module sbi` against tshark on the shared SBI captures,
# the same fields: HTTP/2 :method, :path, :status and HTTP/1.1 method, URI
# and status code, with truth.sh's decode-as options for tshark (kagami
# needs none: it recognises HTTP by content).
#
#   bench/sbi_replay_vs_tshark.sh [PCAPS_DIR]
#   KAGAMI=build/src/exe/kagami (default; needs root)   RUNS=5 (default)
#
# Each command runs RUNS times per capture; the fastest run of each counts
# (a shared VM's noise only adds time). Reported per capture and in total:
# wall and CPU time (user + sys) of the whole process (kagami: program
# load included), kagami's own replay loop (duration_ms: reading, BPF test
# runs, draining the ring, decoding), and the ratios. The script checks
# that both found the same number of HTTP/2 and HTTP/1.1 requests and
# responses before printing anything.
set -euo pipefail
cd "$(dirname "$0")/.."
PCAPS=${1:-${KAGAMI_PCAPS:-../shared/pcaps}}
KAGAMI=${KAGAMI:-build/src/exe/kagami}
[ -x "$KAGAMI" ] || { echo "kagami CLI $KAGAMI not built" >&2; exit 2; }
python3 - "$KAGAMI" "$PCAPS" "${RUNS:-5}" <<'PY'
import json, resource, subprocess, sys, time
kagami, pcaps, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
caps = {  # capture -> tshark decode-as (truth.sh)
    "open5gs_5g-roaming-hr.pcapng": ["-d", "tcp.port==7777,http2", "-d", "tcp.port==80,http2"],
    "open5gs_5g-roaming-lbo.pcapng": ["-d", "tcp.port==7777,http2", "-d", "tcp.port==80,http2"],
    "telekom_free5gc.pcap": ["-d", "tcp.port==29502-29518,http2"],
    "ndpi_http2_free5gc_namf.pcapng": ["-d", "tcp.port==29518,http2"],
    "open5gs_testregistration.pcapng": ["-d", "tcp.port==7777,http"],
    "5greplay_oai.pcap": [],
}
FIELDS = ["http2.type", "http2.headers.method", "http2.headers.path", "http2.headers.status",
          "http.request.method", "http.request.uri", "http.response.code"]

def timed(cmd):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True, text=True).stdout
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), out

def best(cmd):
    res = [timed(cmd) for _ in range(runs)]
    return min(r[0] for r in res), min(r[1] for r in res), res[0][2]

def tshark_counts(out):
    h2req = h2rsp = h1req = h1rsp = 0
    for line in out.splitlines():
        f = (line.split("\t") + [""] * 7)[:7]
        h2req += len([x for x in f[1].split(",") if x])
        h2rsp += len([x for x in f[3].split(",") if x])
        h1req += len([x for x in f[4].split(",") if x])
        h1rsp += len([x for x in f[6].split(",") if x])
    return h2req, h2rsp, h1req, h1rsp

tot = {"kw": 0.0, "kc": 0.0, "kl": 0.0, "tw": 0.0, "tc": 0.0}
print("%-34s %7s %9s %9s %9s %9s %9s %7s %7s" % ("capture", "frames", "kagami_ms", "k_cpu_ms", "loop_ms",
                                                  "tshark_ms", "t_cpu_ms", "x_wall", "x_loop"))
for cap, opts in caps.items():
    path = pcaps + "/" + cap
    kw, kc, kout = best([kagami, "replay", path, "--json", "--module", "sbi"])
    # tcp && !gtp: SBI inside GTP-U tunnels is user traffic, and SSDP (HTTP over UDP)
    # is not HTTP/1.1 over TCP; truth.sh counts neither
    tw, tc, tout = best(["tshark", "-n", "-r", path] + opts + ["-Y", "tcp && !gtp", "-T", "fields"] +
                        sum([["-e", f] for f in FIELDS], []) + ["-E", "separator=\t", "-E", "aggregator=,"])
    k = json.loads(kout)
    loop = min(json.loads(timed([kagami, "replay", path, "--json", "--module", "sbi"])[2])["duration_ms"]
               for _ in range(runs)) / 1000
    mine = (k.get("http2", {}).get("requests", 0), k.get("http2", {}).get("responses", 0),
            k.get("http1", {}).get("requests", 0), k.get("http1", {}).get("responses", 0))
    theirs = tshark_counts(tout)
    if mine != theirs:
        sys.exit("%s: kagami %s != tshark %s (h2 req/rsp, h1 req/rsp)" % (cap, mine, theirs))
    print("%-34s %7d %9.1f %9.1f %9.1f %9.1f %9.1f %7.1f %7.1f" % (cap, k["total_frames"], kw * 1e3, kc * 1e3,
          loop * 1e3, tw * 1e3, tc * 1e3, tw / kw, tw / loop))
    for key, v in (("kw", kw), ("kc", kc), ("kl", loop), ("tw", tw), ("tc", tc)):
        tot[key] += v
print("%-34s %7s %9.1f %9.1f %9.1f %9.1f %9.1f %7.1f %7.1f" % ("total", "", tot["kw"] * 1e3, tot["kc"] * 1e3,
      tot["kl"] * 1e3, tot["tw"] * 1e3, tot["tc"] * 1e3, tot["tw"] / tot["kw"], tot["tw"] / tot["kl"]))
print("cpu ratio (tshark cpu / kagami cpu): %.1fx" % (tot["tc"] / tot["kc"]))
PY
