#!/usr/bin/env bash
# The README's first command, end to end, twice:
#  1. scripts/demo.sh --seconds 8: the operator sees what the README promises
#     (tables of per-TEID GTP-U counters, PFCP messages per type, the session
#     gauge, transport counters, rates), and nothing is left behind;
#  2. scripts/demo.sh with no limit, interrupted with SIGINT as Ctrl-C does
#     (the signal to the demo's whole process group): it must exit promptly,
#     with everything cleaned up (netns, veth, pins, agent).
set -u
src=$1 bin=$2
if [ "$(id -u)" -ne 0 ]; then echo "SKIP: the demo needs root"; exit 77; fi
# Job control: the demo runs in its own process group, which can be sent a
# terminal's SIGINT, and does not start with SIGINT ignored (a non-interactive
# shell's background jobs would: bash cannot trap a signal ignored at entry).
set -m
fail=0
leftovers() {
  ip netns list | grep -q '^kagami-demo' && { echo "FAIL: $1: netns kagami-demo left behind"; fail=1; }
  ip link show kgdemo0 >/dev/null 2>&1 && { echo "FAIL: $1: link kgdemo0 left behind"; fail=1; }
  [ -e /sys/fs/bpf/kagami-demo ] && { echo "FAIL: $1: pins left behind"; fail=1; }
  pgrep -f -- "--config /tmp/kagami-demo\." >/dev/null && { echo "FAIL: $1: agent left running"; fail=1; }
  ls -d /tmp/kagami-demo.* >/dev/null 2>&1 && { echo "FAIL: $1: work directory left behind"; fail=1; }
}
# Leftovers of an earlier, killed run would make the checks below lie.
leftovers "before the test"
[ $fail -eq 0 ] || exit 1

# A free port: a fixed one collides with anything else on the host.
port=19464
for _ in $(seq 50); do
  ss -Htln "sport = :$port" 2>/dev/null | grep -q . || break
  port=$(( 20000 + RANDOM % 20000 ))
done
out=$(BUILD_DIR="$bin" KAGAMI_DEMO_PORT=$port timeout 240 "$src/scripts/demo.sh" --seconds 8 2>&1)
rc=$?
check() {
  if ! grep -qE "$1" <<<"$out"; then echo "FAIL: demo output lacks: $2"; fail=1; fi
}
[ $rc -eq 0 ] || { echo "FAIL: demo.sh exited $rc"; fail=1; }
check '^\[obs\.gtpu\]' "a GTP-U section"
check '^ *by_teid +packets +packets/s .*frame_bytes +frame_bytes/s' "a per-TEID table with packets, bytes and their rates"
check '^ *0x00001000 +[1-9][0-9]* +[0-9.]+[kMG]? ' "a row with GTP-U packets for TEID 0x1000"
check '^ *51 +PFCP Session Establishment Response +4( |$)' "4 PFCP session establishment responses"
check '^ *sessions_established +4( |$)' "4 established PFCP sessions"
check '^\[transport\.' "transport counters"
check 'rates over the last' "a block with rates"
check 'demo: cleaned up' "the cleanup message"
if grep -qE '^kagami_[a-z_]+(\{| )' <<<"$out"; then echo "FAIL: raw Prometheus text in the demo output"; fail=1; fi
leftovers "after --seconds"
if [ $fail -ne 0 ]; then echo "---- demo output ----"; echo "$out" | tail -100; exit 1; fi

# Ctrl-C: start the demo with no time limit, wait for its first table, then
# SIGINT its process group, as a terminal does.
log=$(mktemp /tmp/kagami-demo-test.XXXXXX)
trap 'rm -f "$log"' EXIT
BUILD_DIR="$bin" KAGAMI_DEMO_PORT=$port "$src/scripts/demo.sh" >"$log" 2>&1 &
demo=$!
for _ in $(seq 600); do
  grep -q '^\[obs\.' "$log" && break
  kill -0 "$demo" 2>/dev/null || break
  sleep 0.2
done
if ! grep -q '^\[obs\.' "$log"; then
  echo "FAIL: the unlimited demo printed no table"; fail=1
fi
start=$(date +%s%N)
kill -INT -- -"$demo" 2>/dev/null
stopped=0
for _ in $(seq 100); do   # 10 s
  if ! kill -0 "$demo" 2>/dev/null; then stopped=1; break; fi
  sleep 0.1
done
if [ $stopped -eq 0 ]; then
  echo "FAIL: the demo still runs 10 s after SIGINT"; fail=1
  kill -KILL -- -"$demo" 2>/dev/null
fi
wait "$demo"
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "demo: exited $rc ${ms} ms after SIGINT"
[ $stopped -eq 1 ] && [ $rc -ne 130 ] && { echo "FAIL: the demo exited $rc after SIGINT, not 130"; fail=1; }
grep -q 'demo: cleaned up' "$log" || { echo "FAIL: no cleanup message after SIGINT"; fail=1; }
# The old bug: after the cleanup, the loop went on printing empty blocks.
if [ -n "$(sed -n '/demo: cleaned up/,$p' "$log" | grep -E '^---- ')" ]; then
  echo "FAIL: counter blocks printed after the cleanup"; fail=1
fi
leftovers "after SIGINT"
if [ $stopped -eq 0 ]; then
  # Do not leave what the failed run created.
  ip netns del kagami-demo 2>/dev/null; ip link del kgdemo0 2>/dev/null; rm -rf /sys/fs/bpf/kagami-demo
fi
if [ $fail -ne 0 ]; then echo "---- interrupted demo output ----"; tail -60 "$log"; exit 1; fi
echo "demo: all checks passed"
