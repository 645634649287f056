#!/usr/bin/env bash
# `kagami replay` against tshark on the same ~100k-frame capture.
#
#   bench/replay_vs_tshark.sh [CAPTURE] [FRAMES]
#     CAPTURE  default ../shared/pcaps/open5gs_testregistration.pcapng
#     FRAMES   target frame count, default 100000 (the capture is repeated
#              with mergecap -a until it has at least that many)
#   KAGAMI=build/src/exe/kagami  (default) the CLI to time; needs root
#
# tshark extracts only the fields replay counts (-T fields -e gtp.teid
# -e pfcp.msg_type -e udp.port), which is the cheapest way to get the same
# numbers out of it; replay runs every obs counter. Both are timed wall-clock,
# replay including its one-off program load. The script checks that both
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

now() { date +%s.%N; }
t0=$(now)
"$KAGAMI" replay "$tmp/big.pcapng" --json >"$tmp/replay.json"
t1=$(now)
tshark -n -r "$tmp/big.pcapng" -T fields -E separator=/t -e gtp.teid -e pfcp.msg_type -e udp.port >"$tmp/fields.tsv" 2>/dev/null
t2=$(now)

python3 - "$tmp/replay.json" "$tmp/fields.tsv" "$t0" "$t1" "$t2" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
t0, t1, t2 = map(float, sys.argv[3:6])
gtpu = pfcp = 0
for line in open(sys.argv[2]):
    teid, msg, ports = (line.rstrip("\n").split("\t") + ["", "", ""])[:3]
    # the truth files' rule: a frame's outermost GTP header, on UDP 2152
    if teid and "2152" in ports.split(","):
        gtpu += 1
    if msg:
        pfcp += len(msg.split(","))
r_gtpu, r_pfcp = rep["gtpu"]["packets"], rep["pfcp"]["messages"]
replay_s, tshark_s = t1 - t0, t2 - t1
loop_s = rep["duration_ms"] / 1000
print(f"replay : {replay_s:8.2f} s wall ({loop_s:.2f} s replay loop, {rep['ns_per_frame']:.0f} ns/frame; "
      f"rest is loading obs.bpf.o)  gtpu.packets={r_gtpu} pfcp.messages={r_pfcp}")
print(f"tshark : {tshark_s:8.2f} s wall  gtpu={gtpu} pfcp={pfcp}")
print(f"ratio  : tshark/replay = {tshark_s / replay_s:.1f}x (whole command), "
      f"{tshark_s / loop_s:.1f}x (replay loop only)")
ok = (r_gtpu == gtpu and r_pfcp == pfcp)
print("counts :", "same" if ok else f"DIFFER (gtpu {r_gtpu} vs {gtpu}, pfcp {r_pfcp} vs {pfcp})")
sys.exit(0 if ok else 1)
PY
