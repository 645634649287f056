#!/usr/bin/env bash
# Runs scripts/demo.sh for a few seconds against this build and checks that the
# operator sees what the README promises: per-TEID GTP-U counters, PFCP
# request/response pairs with a session gauge, and that nothing is left behind.
set -u
src=$1 bin=$2
if [ "$(id -u)" -ne 0 ]; then echo "SKIP: the demo needs root"; exit 77; fi
out=$(BUILD_DIR="$bin" KAGAMI_DEMO_PORT=19464 timeout 240 "$src/scripts/demo.sh" --seconds 8 2>&1)
rc=$?
fail=0
check() {
  if ! grep -qE "$1" <<<"$out"; then echo "FAIL: demo output lacks: $2"; fail=1; fi
}
[ $rc -eq 0 ] || { echo "FAIL: demo.sh exited $rc"; fail=1; }
check 'kagami_obs_gtpu_teid_packets_total\{[^}]*teid="0x00001000"\} [1-9]' "GTP-U packets for TEID 0x1000"
check 'kagami_obs_pfcp_messages_total\{[^}]*type="PFCP Session Establishment Response"\} 4' "4 PFCP session establishment responses"
check 'kagami_obs_pfcp_sessions\{[^}]*\} 4' "a gauge of 4 established PFCP sessions"
check 'kagami_transport_packets_total' "transport counters"
check 'demo: cleaned up' "the cleanup message"
ip netns list | grep -q '^kagami-demo' && { echo "FAIL: netns kagami-demo left behind"; fail=1; }
ip link show kgdemo0 >/dev/null 2>&1 && { echo "FAIL: link kgdemo0 left behind"; fail=1; }
[ -e /sys/fs/bpf/kagami-demo ] && { echo "FAIL: pins left behind"; fail=1; }
if [ $fail -ne 0 ]; then echo "---- demo output ----"; echo "$out" | tail -80; exit 1; fi
echo "demo: all checks passed"
