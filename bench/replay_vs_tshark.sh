#!/usr/bin/env bash
# `kagami replay` against tshark on the same ~100k-frame capture.
#
#   bench/replay_vs_tshark.sh [CAPTURE] [FRAMES]
#     CAPTURE  default ../shared/pcaps/open5gs_testregistration.pcapng
#     FRAMES   target frame count, default 100000 (the capture is repeated
#              with mergecap -a until it has at least that many)
#   KAGAMI=build/src/exe/kagami  (default) the CLI to time; needs root
#   RUNS=5  (default) runs of each command; the fastest of each is compared,
#           as a shared VM's noise only ever adds time
#
# tshark extracts only the fields replay counts (-T fields -e gtp.teid
# -e pfcp.msg_type -e udp.port), which is the cheapest way to get the same
# numbers out of it; replay runs every obs counter. Both are timed wall-clock
# and in CPU time (user + sys; the fair figure on a loaded host), replay
# including its one-off program load. The script checks that both
# found the same GTP-U packets (outermost GTP header on UDP 2152) and PFCP
# messages, and prints the speed ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
CAP=${1:-${KAGAMI_PCAPS:-../shared/pcaps}/open5gs_testregistration.pcapng}
TARGET=${2:-100000}
KAGAMI=${KAGAMI:-build/src/exe/kagami}
[ -f "$CAP" ] || { echo "capture $CAP not found" >&2; exit 2; }
[ -x "$KAGAMI" ] || { echo "kagami CLI $KAGAMI not built (scripts/build.sh)" >&2; exit 2; }

tmp=$(mktemp -d /tmp/kagami-replay-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

frames=$(capinfos -M -c "$CAP" | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')
copies=$(( (TARGET + frames - 1) / frames ))
args=()
for _ in $(seq "$copies"); do args+=("$CAP"); done
mergecap -a -w "$tmp/big.pcapng" "${args[@]}"
total=$(( frames * copies ))
echo "capture: $(basename "$CAP") x $copies = $total frames ($(stat -c %s "$tmp/big.pcapng") bytes)"

python3 - "$KAGAMI" "$tmp" "${RUNS:-5}" <<'PY'
import json, resource, subprocess, sys, time
kagami, tmp, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
big = tmp + "/big.pcapng"

def timed(cmd, out):
    """wall seconds and CPU seconds (user + sys) of one child process"""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with open(out, "w") as fh:
        subprocess.run(cmd, stdout=fh, stderr=subprocess.DEVNULL, check=True)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)

def best(cmd, out):
    """fastest of `runs` runs: (wall, cpu), each the minimum"""
    t = [timed(cmd, out) for _ in range(runs)]
    return min(w for w, _ in t), min(c for _, c in t)

r_wall, r_cpu = best([kagami, "replay", big, "--json"], tmp + "/replay.json")
t_wall, t_cpu = best(["tshark", "-n", "-r", big, "-T", "fields", "-E", "separator=/t",
                      "-e", "gtp.teid", "-e", "pfcp.msg_type", "-e", "udp.port"], tmp + "/fields.tsv")
loops = []
for _ in range(runs):
    subprocess.run([kagami, "replay", big, "--json"], stdout=open(tmp + "/replay.json", "w"),
                   stderr=subprocess.DEVNULL, check=True)
    rep = json.load(open(tmp + "/replay.json"))
    loops.append(rep["duration_ms"] / 1000)
gtpu = pfcp = 0
for line in open(tmp + "/fields.tsv"):
    teid, msg, ports = (line.rstrip("\n").split("\t") + ["", "", ""])[:3]
    # the truth files' rule: a frame's outermost GTP header, on UDP 2152
    if teid and "2152" in ports.split(","):
        gtpu += 1
    if msg:
        pfcp += len(msg.split(","))
r_gtpu, r_pfcp = rep["gtpu"]["packets"], rep["pfcp"]["messages"]
loop_s = min(loops)
print(f"best of {runs} runs each")
print(f"replay : {r_wall:7.3f} s wall, {r_cpu:6.3f} s CPU; replay loop {loop_s:.3f} s wall "
      f"({loop_s * 1e9 / rep['replayed_frames']:.0f} ns/frame, {rep['test_runs']} test runs), "
      f"the rest is starting and loading obs_replay; gtpu.packets={r_gtpu} pfcp.messages={r_pfcp}")
print(f"tshark : {t_wall:7.3f} s wall, {t_cpu:6.3f} s CPU; gtpu={gtpu} pfcp={pfcp}")
print(f"ratio  : tshark/replay {t_wall / r_wall:.1f}x wall, {t_cpu / r_cpu:.1f}x CPU (whole commands); "
      f"{t_wall / loop_s:.1f}x against the replay loop alone")
ok = (r_gtpu == gtpu and r_pfcp == pfcp)
print("counts :", "same" if ok else f"DIFFER (gtpu {r_gtpu} vs {gtpu}, pfcp {r_pfcp} vs {pfcp})")
sys.exit(0 if ok else 1)
PY
