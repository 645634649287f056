#!/usr/bin/env bash
# Agent CPU while SBI requests flow, and the rate at which the first record
# is lost. Root; needs nghttpd and h2load (nghttp2-server, nghttp2-client).
#
#   bench/sbi_load.sh [SECONDS] [RATES...]     default 10 s at 1000 2000 4000 8000 16000 req/s
#   KAGAMI=build/src/exe/kagami
#
# A test namespace (10.197.1.2) runs nghttpd (h2c); h2load in the root
# namespace sends GETs at a fixed rate over 4 connections (--rps per
# connection) for SECONDS; the agent runs the sbi module on the veth
# (events: none, so the figure is the copy + decode path, not the event
# bus). Per rate: requests h2load completed, exchanges the module counted,
# records lost to a full ring, and the agent's CPU (utime + stime from
# /proc/<pid>/stat) over the run, as a percentage of one CPU. The last
# line is an unthrottled run (h2load as fast as it can).
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
shift || true
RATES=("${@:-1000 2000 4000 8000 16000}")
read -r -a RATES <<<"${RATES[*]}"
KAGAMI=${KAGAMI:-$(pwd)/build/src/exe/kagami}
NS=kgbench-sbi
HIF=kgbsbih
tmp=$(mktemp -d /tmp/kagami-sbi-load.XXXXXX)
PIN=/sys/fs/bpf/kagami-bench-sbi
PORT=19464
cleanup() {
  [ -f "$tmp/agent.pid" ] && kill "$(cat "$tmp/agent.pid")" 2>/dev/null || true
  [ -f "$tmp/nghttpd.pid" ] && kill "$(cat "$tmp/nghttpd.pid")" 2>/dev/null || true
  sleep 0.5
  ip link del "$HIF" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$PIN" "$tmp"
}
trap cleanup EXIT
ip netns add "$NS"
ip link add "$HIF" type veth peer name kgbsbip
ip link set kgbsbip netns "$NS"
ip addr add 10.197.1.1/24 dev "$HIF"
ip link set "$HIF" up
ip netns exec "$NS" ip addr add 10.197.1.2/24 dev kgbsbip
ip netns exec "$NS" ip link set kgbsbip up
ip netns exec "$NS" ip link set lo up
mkdir -p "$tmp/www/nudm-sdm/v2/imsi-001010000000001"
echo '{"gpsis":["msisdn-1"]}' >"$tmp/www/nudm-sdm/v2/imsi-001010000000001/am-data"
ip netns exec "$NS" nghttpd --no-tls -n 2 -d "$tmp/www" 8080 >/dev/null 2>&1 &
echo $! >"$tmp/nghttpd.pid"
cat >"$tmp/kagami.yaml" <<YAML
agent:
  http: "127.0.0.1:$PORT"
  socket: $tmp/kagami.sock
  pin_root: $PIN
modules:
  sbi:
    enabled: true
    interfaces: [$HIF]
    ports: [8080]
    events: none
YAML
"$KAGAMI" agent --config "$tmp/kagami.yaml" >"$tmp/agent.log" 2>&1 &
echo $! >"$tmp/agent.pid"
APID=$(cat "$tmp/agent.pid")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { cat "$tmp/agent.log" >&2; exit 1; }
URL=http://10.197.1.2:8080/nudm-sdm/v2/imsi-001010000000001/am-data
snap() { curl -sf "http://127.0.0.1:$PORT/api/v1/modules" | python3 -c '
import json,sys
d=json.load(sys.stdin)
m=d["modules"] if "modules" in d else d
s=m["sbi"] if isinstance(m,dict) else [x for x in m if x.get("name")=="sbi"][0]
s=s.get("snapshot",s)
print(s["requests"]["exchanges"], s["kernel"]["ring_full"], s["decoder"]["tcp"]["gaps"])'; }
cpu() { awk '{print $14+$15}' "/proc/$APID/stat"; }
HZ=$(getconf CLK_TCK)
printf "%-10s %10s %10s %10s %10s %8s\n" "rate/s" "answered" "counted" "ring_full" "gaps" "cpu%"
for rate in "${RATES[@]}" max; do
  read -r e0 r0 g0 < <(snap)
  c0=$(cpu)
  t0=$(date +%s.%N)
  if [ "$rate" = max ]; then
    out=$(h2load -c 4 -m 10 -D "$DUR" "$URL" 2>&1)
  else
    out=$(h2load -c 4 --rps=$((rate / 4)) -D "$DUR" "$URL" 2>&1)
  fi
  sleep 1  # the drain thread catches up
  t1=$(date +%s.%N)
  c1=$(cpu)
  read -r e1 r1 g1 < <(snap)
  # responses h2load received ("N succeeded"; requests still in flight when -D ends are not)
  sent=$(echo "$out" | awk '/^requests:/ {for (i = 2; i <= NF; i++) if ($i ~ /^succeeded/) print $(i-1)}')
  pct=$(python3 -c "print(f'{100*($c1-$c0)/$HZ/($t1-$t0):.1f}')")
  printf "%-10s %10s %10s %10s %10s %8s\n" "$rate" "$sent" "$((e1 - e0))" "$((r1 - r0))" "$((g1 - g0))" "$pct"
done
