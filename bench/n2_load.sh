#!/usr/bin/env bash
# Agent CPU while N2 control-plane messages flow, and the rate at which the
# first record is lost. Root; needs python3 and ../shared/pcaps/5greplay_oai.pcap.
#
#   bench/n2_load.sh [SECONDS] [RATES...]   default 10 s at 1000 2000 4000 8000 16000 msg/s, then unthrottled
#   KAGAMI=build/src/exe/kagami  PCAPS=../shared/pcaps
#
# A test namespace (10.198.1.2) plays the gNB: a raw IP socket (protocol
# 132: no SCTP module here) sends the 12 UE-associated NGAP messages of
# 5greplay_oai (InitialUEMessage .. PDUSessionResourceSetupResponse, NAS
# inside, each one SCTP DATA chunk with PPID 60) round and round at a fixed
# rate for SECONDS, to 10.198.1.1 across a veth. The agent runs the n2
# module on the host end (TC ingress): every message is counted in the
# kernel, copied through the ring, decoded (NGAP, NAS, per-UE record, KPIs)
# and published as an event, as in production. First the agent is measured
# idle for SECONDS (the baseline of the same run); then per rate: messages
# sent, counted by the kernel, decoded in userspace, lost to a full ring,
# and the agent's CPU over the run (the sum of its threads' run time from
# /proc/<pid>/task/*/schedstat, in ns: /proc/<pid>/stat's ticks are too
# coarse for the idle figure), in % of one CPU and as a ratio to idle.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
shift || true
RATES=("${@:-1000 2000 4000 8000 16000}")
read -r -a RATES <<<"${RATES[*]}"
KAGAMI=${KAGAMI:-$(pwd)/build/src/exe/kagami}
PCAPS=${PCAPS:-$(pwd)/../shared/pcaps}
CAP="$PCAPS/5greplay_oai.pcap"
[ -f "$CAP" ] || { echo "n2_load.sh: no $CAP" >&2; exit 1; }
NS=kgbench-n2
HIF=kgbn2h
tmp=$(mktemp -d /tmp/kagami-n2-load.XXXXXX)
PIN=/sys/fs/bpf/kagami-bench-n2
PORT=19465
cleanup() {
  [ -f "$tmp/agent.pid" ] && kill "$(cat "$tmp/agent.pid")" 2>/dev/null || true
  sleep 0.5
  ip link del "$HIF" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$PIN" "$tmp"
}
trap cleanup EXIT
ip netns add "$NS"
ip link add "$HIF" type veth peer name kgbn2p
ip link set kgbn2p netns "$NS"
ip addr add 10.198.1.1/24 dev "$HIF"
ip link set "$HIF" up
ip netns exec "$NS" ip addr add 10.198.1.2/24 dev kgbn2p
ip netns exec "$NS" ip link set kgbn2p up
ip netns exec "$NS" ip link set lo up

# The sender: SCTP packets (common header + chunks) of the capture's NGAP
# DATA chunks that name a UE, re-sent in order at RATE per second.
cat >"$tmp/send.py" <<'PY'
import socket, struct, sys, time
cap, dst, rate, dur = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
pk = []
with open(cap, "rb") as f:
    hdr = f.read(24)
    while True:
        h = f.read(16)
        if len(h) < 16: break
        _, _, incl, _ = struct.unpack("<IIII", h)
        d = f.read(incl)
        if d[12:14] != b"\x08\x00" or d[14 + 9] != 132: continue
        ihl = (d[14] & 15) * 4
        tot = struct.unpack(">H", d[16:18])[0]
        sctp = d[14 + ihl:14 + tot]
        # one DATA chunk (type 0) with PPID 60 whose NGAP PDU names a UE:
        # procedure 21 (NG setup) does not
        if len(sctp) > 28 and sctp[12] == 0 and struct.unpack(">I", sctp[24:28])[0] == 60 and sctp[29] != 21:
            pk.append(sctp)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 132)
n, t0 = 0, time.monotonic()
end = t0 + dur
while True:
    now = time.monotonic()
    if now >= end: break
    if rate > 0:
        due = t0 + n / rate
        if due > now:
            if due - now > 0.002: time.sleep(due - now - 0.001)
            continue
    s.sendto(pk[n % len(pk)], (dst, 0))
    n += 1
print(n, len(pk))
PY

cat >"$tmp/kagami.yaml" <<YAML
agent:
  http: "127.0.0.1:$PORT"
  socket: $tmp/kagami.sock
  pin_root: $PIN
modules:
  n2:
    enabled: true
    interfaces: [$HIF]
    direction: ingress
YAML
"$KAGAMI" agent --config "$tmp/kagami.yaml" >"$tmp/agent.log" 2>&1 &
echo $! >"$tmp/agent.pid"
APID=$(cat "$tmp/agent.pid")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { cat "$tmp/agent.log" >&2; exit 1; }
snap() { curl -sf "http://127.0.0.1:$PORT/api/v1/modules" | python3 -c '
import json,sys
d=json.load(sys.stdin)
m=d["modules"] if "modules" in d else d
s=m["n2"] if isinstance(m,dict) else [x for x in m if x.get("name")=="n2"][0]
s=s.get("snapshot",s)["n2"]
print(s["counters"]["ngap_pdus"], s["messages_decoded"], s["ring_full"])'; }
cpu() { cat /proc/"$APID"/task/*/schedstat | awk '{s += $1} END {printf "%.0f\n", s}'; }
HZ=1000000000
sleep 1
c0=$(cpu); t0=$(date +%s.%N); sleep "$DUR"; t1=$(date +%s.%N); c1=$(cpu)
IDLE=$(python3 -c "print(f'{100*($c1-$c0)/$HZ/($t1-$t0):.2f}')")
echo "agent idle: $IDLE% of one CPU over ${DUR}s"
printf "%-10s %10s %10s %10s %10s %8s %8s\n" "rate/s" "sent" "counted" "decoded" "ring_full" "cpu%" "x idle"
for rate in "${RATES[@]}" max; do
  read -r k0 d0 r0 < <(snap)
  c0=$(cpu)
  t0=$(date +%s.%N)
  r=$rate
  [ "$rate" = max ] && r=0
  read -r sent _ < <(ip netns exec "$NS" python3 "$tmp/send.py" "$CAP" 10.198.1.1 "$r" "$DUR")
  sleep 1  # the event loop catches up
  t1=$(date +%s.%N)
  c1=$(cpu)
  read -r k1 d1 r1 < <(snap)
  pct=$(python3 -c "print(f'{100*($c1-$c0)/$HZ/($t1-$t0):.2f}')")
  ratio=$(python3 -c "i=$IDLE; print(f'{$pct/i:.0f}' if i > 0 else 'inf')")
  [ "$rate" = max ] && rate="max($((sent / DUR))/s)"
  printf "%-10s %10s %10s %10s %10s %8s %8s\n" "$rate" "$sent" "$((k1 - k0))" "$((d1 - d0))" "$((r1 - r0))" "$pct" "$ratio"
done
