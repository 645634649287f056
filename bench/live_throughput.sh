#!/usr/bin/env bash
# Live throughput through a veth with the obs module attached (TC ingress +
# egress), against the same veth with no program: the ratio.
#
#   sudo bench/live_throughput.sh [BUILD_DIR] [SECONDS]
#
# iperf3 runs between the root namespace and a test host; each mode runs three
# times, alternating, and the median is reported. The obs object is loaded
# through a private agent (own socket, pin root and port), exactly as an
# operator would, and removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SECS=${2:-5}
[ "$(id -u)" -eq 0 ] || { echo "live_throughput.sh: run as root" >&2; exit 1; }
command -v iperf3 >/dev/null || { echo "live_throughput.sh: iperf3 missing (scripts/install-deps.sh)" >&2; exit 1; }
K=$BUILD/src/exe/kagami
id=$$
NS=kgt-bench-$id
H=kgtb${id}h
P=kgtb${id}p
W=$(mktemp -d)
PIN=/sys/fs/bpf/kagami-test-bench-$id
agent=
cleanup() {
  set +e
  [ -n "$agent" ] && { "$K" prog unload obs --socket "$W/s" >/dev/null 2>&1; kill "$agent"; wait "$agent"; }
  ip netns pids "$NS" 2>/dev/null | xargs -r kill
  ip netns del "$NS" 2>/dev/null; ip link del "$H" 2>/dev/null
  rm -rf "$W" "$PIN"
}
trap cleanup EXIT
ip netns add "$NS"
ip link add "$H" type veth peer name "$P"
ip link set "$P" netns "$NS"
ip addr add 10.198.77.1/24 dev "$H"; ip link set "$H" up
ip -n "$NS" addr add 10.198.77.2/24 dev "$P"; ip -n "$NS" link set "$P" up; ip -n "$NS" link set lo up
ip netns exec "$NS" iperf3 -s -D --pidfile "$W/iperf.pid" >/dev/null
sleep 0.5

run() {  # $1 = tcp|udp -> Gbit/s received
  local extra=""
  [ "$1" = udp ] && extra="-u -b 0 -l 1200"
  iperf3 -c 10.198.77.2 -t "$SECS" -J $extra > "$W/r.json"
  python3 - "$W/r.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["end"]
s = d.get("sum_received") or d.get("sum")
print("%.3f" % (s["bits_per_second"] / 1e9))
PY
}
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }

"$K" agent --socket "$W/s" --http 127.0.0.1:0 --pin-root "$PIN" --state-file "$W/state.json" > "$W/agent.log" 2>&1 &
agent=$!
for _ in $(seq 50); do [ -S "$W/s" ] && break; sleep 0.1; done

declare -A res
for proto in tcp udp; do
  base=(); with=()
  for i in 1 2 3; do
    base+=("$(run $proto)")
    "$K" prog load "$BUILD/bpf/obs.bpf.o" --name obs --socket "$W/s" \
      --attach "tc:$H:ingress@obs_tc_ingress" --attach "tc:$H:egress@obs_tc_egress" >/dev/null
    with+=("$(run $proto)")
    "$K" prog unload obs --socket "$W/s" >/dev/null
  done
  b=$(median "${base[@]}"); w=$(median "${with[@]}")
  printf '%s: no module %s Gbit/s, obs attached %s Gbit/s, ratio %.3f\n' "$proto" "$b" "$w" "$(python3 -c "print($w/$b)")"
done
