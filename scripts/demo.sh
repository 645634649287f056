#!/usr/bin/env bash
# Kagami demo: installs dependencies, builds, and runs the agent on a demo
# "UPF" test host with live N3 (GTP-U) and N4 (PFCP) traffic, printing the
# modules' live counters as tables (`kagami modules --watch`) every 3 s.
#
#   scripts/demo.sh               run until Ctrl-C (as root, or through sudo)
#   scripts/demo.sh --seconds 20  run for 20 s (used by the demo's own test)
#
# Topology: root netns [kgdemo0 10.201.0.1] <-veth-> [kgdemo1 10.201.0.2] netns kagami-demo
# The "SMF/gNB" traffic source runs in the root namespace, the "UPF" responder
# in the namespace; the agent attaches the obs module to kgdemo0 (TC ingress +
# egress) and the transport module to the cgroup root.
set -euo pipefail
. "$(dirname "$0")/lib/root.sh"
require_root demo.sh "it loads BPF programs and creates a network namespace" "$@"
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=0
if [ "${1:-}" = "--seconds" ]; then SECONDS_TO_RUN=${2:?--seconds needs a value}; fi
INTERVAL=3

scripts/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
BUILD_DIR="$BUILD_DIR" scripts/build.sh >/dev/null
BIN=$BUILD_DIR/src/exe/kagami
TRAFFIC=$BUILD_DIR/tools/demo/kagami-demo-traffic
WORK=$(mktemp -d /tmp/kagami-demo.XXXXXX)
NS=kagami-demo
PIN_ROOT=/sys/fs/bpf/kagami-demo
SOCK=$WORK/kagami.sock
PORT=${KAGAMI_DEMO_PORT:-9464}
pids=()
cleaned=0

cleanup() {
  [ "$cleaned" = 1 ] && return
  cleaned=1
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  # The agent leaves programs running by design (a restart adopts them); the
  # demo removes them: with the agent gone, dropping the pins releases the
  # last references to its links and programs.
  rm -rf "$PIN_ROOT"
  tc qdisc del dev kgdemo0 clsact 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  ip link del kgdemo0 2>/dev/null
  rm -rf "$WORK"
  give_back "$BUILD_DIR"
  echo "demo: cleaned up"
}
# A signal cleans up and ENDS the script: a trap that only cleaned up would
# return into the loop below (which is what Ctrl-C used to do).
trap cleanup EXIT
trap 'echo; echo "demo: interrupted"; cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

ip netns del "$NS" 2>/dev/null || true
ip link del kgdemo0 2>/dev/null || true
ip netns add "$NS"
ip link add kgdemo0 type veth peer name kgdemo1
ip link set kgdemo1 netns "$NS"
ip addr add 10.201.0.1/24 dev kgdemo0
ip link set kgdemo0 up
ip -n "$NS" addr add 10.201.0.2/24 dev kgdemo1
ip -n "$NS" link set kgdemo1 up
ip -n "$NS" link set lo up

cat > "$WORK/kagami.yaml" <<YAML
agent:
  http: 127.0.0.1:$PORT
  socket: $SOCK
  pin_root: $PIN_ROOT
modules:
  obs:
    enabled: true
    interfaces: [kgdemo0]
  transport:
    enabled: true
YAML

"$BIN" agent --config "$WORK/kagami.yaml" > "$WORK/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
if ! curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; then
  echo "demo: the agent did not come up; its log:" >&2
  cat "$WORK/agent.log" >&2
  exit 1
fi
ip netns exec "$NS" "$TRAFFIC" upf --bind 10.201.0.2 > "$WORK/upf.log" 2>&1 &
pids+=($!)
sleep 0.3
"$TRAFFIC" smf --upf 10.201.0.2 --sessions 4 --rate 100 > "$WORK/smf.log" 2>&1 &
pids+=($!)

echo "demo: agent on http://127.0.0.1:$PORT (programs: $BIN prog list --socket $SOCK)"
"$BIN" prog list --socket "$SOCK" || true
echo "demo: live counters every ${INTERVAL} s (all of them: $BIN modules --socket $SOCK); Ctrl-C stops and cleans up"
count=()
if [ "$SECONDS_TO_RUN" -gt 0 ]; then count=(--count $(( SECONDS_TO_RUN / INTERVAL + 1 ))); fi
# In the background, waited for: bash runs a trap as soon as a signal
# arrives during `wait`, but only after a foreground command has finished.
# --brief and the sections an operator of a UPF looks at first keep a block
# to one screen; `kagami modules` without them shows every counter.
"$BIN" modules --socket "$SOCK" --watch "$INTERVAL" "${count[@]}" --brief \
  --section obs.gtpu --section obs.pfcp --section obs.packets --section obs.malformed \
  --section transport.drops &
watcher=$!
pids+=("$watcher")
wait "$watcher"
