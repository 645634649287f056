#!/bin/sh
# The XDP deny-list (policy module, pol_xdp) against xdp-filter (xdp-tools)
# with the same list of N source addresses, per packet through
# BPF_PROG_TEST_RUN (bpftool prog run for xdp-filter's program, the
# benchmark binary for ours), each next to the platform's empty XDP program
# measured in the same run. Root. Usage:
#   bench/policy_xdp_vs_xdpfilter.sh [BUILD_DIR] [N...]     (default: build 1 1000 10000)
# Prints a markdown table: N, packet, empty ns, kagami ns, xdp-filter ns.
set -eu
BUILD=${1:-build}
[ $# -gt 0 ] && shift
SIZES=${*:-1 1000 10000}
REPEAT=${KAGAMI_BENCH_REPEAT:-1000000}
IF=kgtpxb$$
TMP=$(mktemp -d)
cleanup() { xdp-filter unload "$IF" >/dev/null 2>&1 || true; ip link del "$IF" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
command -v xdp-filter >/dev/null || { echo "xdp-filter not installed (apt-get install xdp-tools)" >&2; exit 2; }

python3 - "$TMP" <<'PY'
import socket, struct, sys
def pkt(src):
    payload = b'x' * 64
    udp = struct.pack('!HHHH', 4000, 5000, 8 + len(payload), 0) + payload
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton('10.7.0.1'))
    return b'\x02' * 6 + b'\x04' * 6 + b'\x08\x00' + ip + udp
open(sys.argv[1] + '/drop.bin', 'wb').write(pkt('198.51.100.1'))
open(sys.argv[1] + '/pass.bin', 'wb').write(pkt('192.0.2.1'))
PY

# The same addresses as policy_cost_bench's edge_addr(i).
addr() { v=$((100 * 256 + 1 + $1)); echo "198.51.$((v / 256 % 256)).$((v % 256))"; }
best() {  # best of 7 bpftool runs: prog id, packet file
  b=999999
  for _ in 1 2 3 4 5 6 7; do
    d=$(bpftool prog run id "$1" data_in "$2" repeat "$REPEAT" | sed -n 's/.*duration (average): \([0-9]*\)ns.*/\1/p')
    [ "$d" -lt "$b" ] && b=$d
  done
  echo "$b"
}

echo "| sources listed | packet | empty XDP ns | Kagami pol_xdp ns | xdp-filter ns |"
echo "|---:|---|---:|---:|---:|"
for n in $SIZES; do
  ip link add "$IF" type veth peer name "${IF}p"
  ip link set "$IF" up
  xdp-filter load -m skb "$IF" >/dev/null
  i=0
  while [ $i -lt "$n" ]; do xdp-filter ip "$(addr $i)" -m src >/dev/null; i=$((i + 1)); done
  id=$(bpftool net show dev "$IF" | sed -n 's/.* id \([0-9]*\).*/\1/p' | head -1)
  "$BUILD/bench/policy_cost_bench" xdp "$n" > "$TMP/k.txt"
  for p in drop pass; do
    line=$(grep "^kagami $n $p " "$TMP/k.txt")
    e=$(echo "$line" | cut -d' ' -f4)
    k=$(echo "$line" | cut -d' ' -f5)
    x=$(best "$id" "$TMP/$p.bin")
    echo "| $n | $p | $e | $k | $x |"
  done
  xdp-filter unload "$IF" >/dev/null
  ip link del "$IF"
done
