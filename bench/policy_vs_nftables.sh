#!/usr/bin/env bash
# TCP throughput through a veth path with no policy, with Kagami's policy
# (pol_tc_egress on the server's host-side interface: the server accepts TCP
# only from N /32 addresses, the client the last of them) and with nftables
# holding the same N addresses in a set (a bridge-family forward chain on
# the same interface: accept from the set, drop other TCP to the server).
#
#   sudo bench/policy_vs_nftables.sh [BUILD_DIR] [N] [SECONDS]   (default: build 100000 5)
#
# Topology: two network namespaces (client, server) on a Linux bridge in the
# root namespace, as the policy tests' pods. iperf3, one TCP stream, each
# mode three times, alternating; the median is reported, with the ratio to
# no policy. Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
N=${2:-100000}
SECS=${3:-5}
[ "$(id -u)" -eq 0 ] || { echo "policy_vs_nftables.sh: run as root" >&2; exit 1; }
for t in iperf3 nft; do command -v $t >/dev/null || { echo "policy_vs_nftables.sh: $t missing (scripts/install-deps.sh)" >&2; exit 1; }; done
B=$BUILD/bench/policy_cost_bench
id=$$
C=kgt-polnf$id-c; S=kgt-polnf$id-s; BR=kgtnf${id}br; HC=kgtnf${id}hc; HS=kgtnf${id}hs
W=$(mktemp -d)
kpid=
cleanup() {
  set +e
  [ -n "$kpid" ] && { exec 9>&-; wait "$kpid"; }
  exec 9>&- 2>/dev/null
  nft delete table bridge kgtnf$id 2>/dev/null
  ip netns pids "$S" 2>/dev/null | xargs -r kill
  ip netns del "$C" 2>/dev/null; ip netns del "$S" 2>/dev/null
  ip link del "$HC" 2>/dev/null; ip link del "$HS" 2>/dev/null; ip link del "$BR" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
ip link add "$BR" type bridge; ip link set "$BR" up
for x in c s; do
  ns=$C; h=$HC; a=10.199.$((id % 200)).1
  [ $x = s ] && { ns=$S; h=$HS; a=10.199.$((id % 200)).2; }
  ip netns add "$ns"
  ip link add "$h" type veth peer name kgtnf${id}p$x
  ip link set kgtnf${id}p$x netns "$ns"
  ip link set "$h" master "$BR"; ip link set "$h" up
  ip -n "$ns" addr add $a/24 dev kgtnf${id}p$x; ip -n "$ns" link set kgtnf${id}p$x up; ip -n "$ns" link set lo up
done
CLIENT=10.199.$((id % 200)).1; SERVER=10.199.$((id % 200)).2
ip netns exec "$S" iperf3 -s -D --pidfile "$W/iperf.pid" >/dev/null
sleep 0.5

run() {  # -> Gbit/s received
  ip netns exec "$C" iperf3 -c "$SERVER" -t "$SECS" -J > "$W/r.json"
  python3 - "$W/r.json" <<'PY'
import json, sys
print("%.2f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e9))
PY
}
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }

# nftables: the same N addresses (11.x.y.z, the client last) in a set.
python3 - "$N" "$CLIENT" > "$W/set.nft" <<PY
import sys
n, client = int(sys.argv[1]), sys.argv[2]
addrs = ["11.%d.%d.%d" % (i // 65536 % 256, i // 256 % 256, i % 256) for i in range(n - 1)] + [client]
print("table bridge kgtnf$id {")
print("  set allowed { type ipv4_addr; elements = { %s } }" % ", ".join(addrs))
print("  chain c_forward { type filter hook forward priority 0; policy accept;")
print('    oifname "$HS" ip saddr @allowed accept')
print('    oifname "$HS" ip protocol tcp drop')
print("  }")
print("}")
PY
t0=$(date +%s.%N); nft -f "$W/set.nft"; t1=$(date +%s.%N); nft delete table bridge kgtnf$id
nft_load=$(python3 -c "print('%.1f' % ($t1 - $t0))")

# Both rulesets must really filter: with the client left out of the N
# addresses, its TCP connection fails through either of them.
blocked() { ! ip netns exec "$C" timeout 2 bash -c "exec 3<>/dev/tcp/$SERVER/5201" 2>/dev/null; }
sed "s/ $CLIENT }/ 12.0.0.1 }/" "$W/set.nft" > "$W/other.nft"
nft -f "$W/other.nft"
blocked || { echo "policy_vs_nftables.sh: nftables did not block a client outside the set" >&2; exit 1; }
nft delete table bridge kgtnf$id
mkfifo "$W/ctl"
"$B" attach "$HS" "$N" 12.0.0.1 "$SERVER" < "$W/ctl" > "$W/k.out" &
kpid=$!
exec 9>"$W/ctl"
for _ in $(seq 600); do grep -q ready "$W/k.out" 2>/dev/null && break; sleep 0.1; done
blocked || { echo "policy_vs_nftables.sh: Kagami did not block a client outside the set" >&2; exit 1; }
exec 9>&-; wait "$kpid"; kpid=
blocked && { echo "policy_vs_nftables.sh: the path is blocked with no policy" >&2; exit 1; }

declare -A res
for i in 1 2 3; do
  res[none]+="$(run) "
  # The policy stays attached while the benchmark holds the FIFO open.
  rm -f "$W/ctl" "$W/k.out"; mkfifo "$W/ctl"
  "$B" attach "$HS" "$N" "$CLIENT" "$SERVER" < "$W/ctl" > "$W/k.out" &
  kpid=$!
  exec 9>"$W/ctl"
  for _ in $(seq 600); do grep -q ready "$W/k.out" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$W/k.out" || { echo "policy_vs_nftables.sh: the policy did not attach" >&2; exit 1; }
  res[kagami]+="$(run) "
  exec 9>&-; wait "$kpid"; kpid=
  nft -f "$W/set.nft"
  res[nft]+="$(run) "
  nft delete table bridge kgtnf$id
done
base=$(median ${res[none]})
echo "| path ($N addresses, TCP, ${SECS} s x 3, median) | Gbit/s | / no policy | runs |"
echo "|---|---:|---:|---|"
for m in none kagami nft; do
  v=$(median ${res[$m]})
  echo "| $m | $v | $(python3 -c "print('%.2f' % ($v / $base))") | ${res[$m]}|"
done
echo "nft -f of the $N-address set: ${nft_load} s"
