#!/usr/bin/env bash
# `kagami replay --module n2` against tshark on the same ~100k-frame N2 capture.
#
#   bench/n2_replay_vs_tshark.sh [CAPTURE] [FRAMES]
#     CAPTURE  default ../shared/pcaps/open5gs_testregistration.pcapng (1306 NGAP PDUs)
#     FRAMES   target frame count, default 100000 (the capture is repeated
#              with mergecap -a until it has at least that many)
#   KAGAMI=build/src/exe/kagami  (default) the CLI to time; needs root
#   RUNS=3  (default) runs of each command; the fastest of each is compared
#
# tshark extracts only the fields n2 counts (-T fields -e ngap.procedureCode
# -e ngap.NGAP_PDU -e nas_5gs.security_header_type -e nas_5gs.mm.message_type
# -e nas_5gs.sm.message_type), with -o sctp.tsn_analysis:FALSE: the copies
# of the capture repeat its TSNs, and tshark's TSN analysis would take them
# for retransmissions and not dissect their NGAP (less work, and different
# counts; docs/n2.md, "Differences from tshark"). Replay runs the n2 kernel program and the
# userspace NAS decoding, per-UE records and KPIs. The script checks that
# both found the same number of NGAP PDUs and prints the speed ratio
# (wall-clock and CPU time, replay including its program load).
set -euo pipefail
cd "$(dirname "$0")/.."
CAP=${1:-${KAGAMI_PCAPS:-../shared/pcaps}/open5gs_testregistration.pcapng}
TARGET=${2:-100000}
KAGAMI=${KAGAMI:-build/src/exe/kagami}
[ -f "$CAP" ] || { echo "capture $CAP not found" >&2; exit 2; }
[ -x "$KAGAMI" ] || { echo "kagami CLI $KAGAMI not built" >&2; exit 2; }
tmp=$(mktemp -d /tmp/kagami-n2-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
frames=$(capinfos -M -c "$CAP" | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')
copies=$(( (TARGET + frames - 1) / frames ))
args=()
for _ in $(seq "$copies"); do args+=("$CAP"); done
mergecap -a -w "$tmp/big.pcapng" "${args[@]}"
echo "capture: $(basename "$CAP") x $copies = $(( frames * copies )) frames"

python3 - "$KAGAMI" "$tmp" "${RUNS:-3}" <<'PY'
import json, resource, subprocess, sys, time
kagami, tmp, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
big = tmp + "/big.pcapng"

def timed(cmd, out):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with open(out, "w") as fh:
        subprocess.run(cmd, stdout=fh, stderr=subprocess.DEVNULL, check=True)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)

def best(cmd, out):
    t = [timed(cmd, out) for _ in range(runs)]
    return min(w for w, _ in t), min(c for _, c in t)

r_wall, r_cpu = best([kagami, "replay", big, "--module", "n2", "--json"], tmp + "/replay.json")
t_wall, t_cpu = best(["tshark", "-n", "-r", big, "-o", "sctp.tsn_analysis:FALSE", "-T", "fields", "-E", "separator=/t",
                      "-e", "ngap.procedureCode", "-e", "ngap.NGAP_PDU", "-e", "nas_5gs.security_header_type",
                      "-e", "nas_5gs.mm.message_type", "-e", "nas_5gs.sm.message_type"], tmp + "/fields.tsv")
rep = json.load(open(tmp + "/replay.json"))
t_pdus = 0
for line in open(tmp + "/fields.tsv"):
    pdu = (line.rstrip("\n").split("\t") + ["", ""])[1]
    if pdu:
        t_pdus += len(pdu.split(","))
r_pdus = rep["ngap"]["pdus"]
print(f"best of {runs} runs each")
print(f"replay : {r_wall:7.3f} s wall, {r_cpu:6.3f} s CPU; ngap.pdus={r_pdus} "
      f"(messages decoded in userspace: {rep['n2']['messages_decoded']}, ring_full {rep['n2']['ring_full']})")
print(f"tshark : {t_wall:7.3f} s wall, {t_cpu:6.3f} s CPU; NGAP PDUs={t_pdus}")
print(f"ratio  : {t_wall / r_wall:5.1f}x wall, {t_cpu / max(r_cpu, 1e-9):5.1f}x CPU")
if r_pdus != t_pdus:
    print("MISMATCH in NGAP PDU counts", file=sys.stderr)
    sys.exit(1)
PY
