#!/usr/bin/env bash
# L7 policy (HTTP/1.1) cost on a veth path: requests per second and mean
# latency of h2load --h1 against a small epoll server (bench/l7_server.cc)
# in a network namespace, with no policy, then with the policy_l7 programs
# (build/bpf/policy_l7.bpf.o) loaded with bpftool and judging every request,
# with 1 rule and with 1,000 rules (the allowing rule last: the linear
# worst case). Rounds alternate so both see the same machine; the figures
# are ratios against the no-policy run of the same round.
#   bench/l7_bench.sh [build dir] [requests per run] [rounds]
# Needs root, h2load (nghttp2-client), bpftool, g++.
set -euo pipefail
BUILD=${1:-build}
N=${2:-20000}
ROUNDS=${3:-3}
OBJ=$BUILD/bpf/policy_l7.bpf.o
[ -f "$OBJ" ] || { echo "no $OBJ: build the policy_l7 target first" >&2; exit 1; }
command -v h2load >/dev/null || { echo "h2load missing (apt-get install nghttp2-client)" >&2; exit 1; }
NS=kgt-l7bench-$$
CG=/sys/fs/cgroup/unified/kagami-test-l7bench-$$
[ -d /sys/fs/cgroup/unified ] || CG=/sys/fs/cgroup/kagami-test-l7bench-$$
PIN=/sys/fs/bpf/kagami-test-l7bench-$$
TMP=$(mktemp -d)
SRV=
cleanup() {
  [ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null || true
  bpftool cgroup detach "$CG" sock_ops pinned "$PIN/progs/l7_sockops" 2>/dev/null || true
  rm -rf "$PIN"
  ip netns del "$NS" 2>/dev/null || true
  ip link del kgl7b$$ 2>/dev/null || true
  rmdir "$CG" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

g++ -O2 -std=c++20 -o "$TMP/l7_server" bench/l7_server.cc
ip netns add "$NS"
ip link add kgl7b$$ type veth peer name eth0 netns "$NS"
ip addr add 10.77.0.1/24 dev kgl7b$$
ip link set kgl7b$$ up
ip -n "$NS" addr add 10.77.0.2/24 dev eth0
ip -n "$NS" link set eth0 up
ip -n "$NS" link set lo up
mkdir -p "$CG"
( echo $BASHPID > "$CG/cgroup.procs"; exec ip netns exec "$NS" "$TMP/l7_server" 18080 ) > "$TMP/srv.out" &
SRV=$!
for _ in $(seq 50); do grep -q ready "$TMP/srv.out" 2>/dev/null && break; sleep 0.1; done

run() {  # prints "req/s mean-latency-us"
  h2load --h1 -n "$N" -c 8 -t 1 "http://10.77.0.2:18080/public/index.html" 2>&1 |
    awk '/^finished in/ {rps=$4} /^time for request:/ {v=$6; u=v; sub(/[0-9.]+/,"",u); sub(/[a-z]+/,"",v);
         if (u=="ms") v*=1000; if (u=="s") v*=1000000; lat=v}
         /^status codes:/ {ok=$3} END {print rps, lat, ok}'
}

le32() { printf '%d %d %d %d' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
load() {  # nrules: the allowing rule is the last one (struct l7_rule, abi.h)
  local n=$1
  rm -rf "$PIN"; mkdir -p "$PIN/maps"
  bpftool prog loadall "$OBJ" "$PIN/progs" pinmaps "$PIN/maps"
  bpftool prog attach pinned "$PIN/progs/l7_parser" stream_parser pinned "$PIN/maps/l7_socks"
  bpftool prog attach pinned "$PIN/progs/l7_verdict" stream_verdict pinned "$PIN/maps/l7_socks"
  python3 - "$n" "$PIN/maps/l7_rules" > "$TMP/batch" <<'PY'
import struct, sys
n, path = int(sys.argv[1]), sys.argv[2]
def rule(rid, port, m, p):
    return " ".join(str(b) for b in struct.pack("<IIHBBHH16s128s", rid, 0, port, len(m), 2, len(p), 0, m, p))
for i in range(n):
    last = i == n - 1
    v = rule(1, 18080, b"GET", b"/public/") if last else rule(i + 2, 18080, b"POST", b"/other/%d" % i)
    k = " ".join(str(b) for b in struct.pack("<I", i))
    print(f"map update pinned {path} key {k} value {v}")
PY
  bpftool batch file "$TMP/batch" >/dev/null
  bpftool map update pinned "$PIN/maps/l7_ports" key 0xa0 0x46 value 1
  # l7_cfg: nrules, base 0, generation 1, sample_rate 0 (no events), burst 1
  bpftool map update pinned "$PIN/maps/l7_cfg" key 0 0 0 0 value $(le32 "$n") 0 0 0 0 1 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0
  bpftool cgroup attach "$CG" sock_ops pinned "$PIN/progs/l7_sockops"
}
unload() {
  bpftool cgroup detach "$CG" sock_ops pinned "$PIN/progs/l7_sockops"
  rm -rf "$PIN"
}

echo "round base_rps base_lat_us l7_1_rps l7_1_lat_us l7_1000_rps l7_1000_lat_us (ok responses)"
for r in $(seq "$ROUNDS"); do
  b=$(run)
  load 1; o1=$(run); unload
  load 1000; o1k=$(run); unload
  echo "$r $b | $o1 | $o1k"
  echo "$b $o1 $o1k" >> "$TMP/rows"
done
# Ratios of the sums over the rounds (each against its own round's baseline).
awk '{b+=$1; bl+=$2; a+=$4; al+=$5; k+=$7; kl+=$8}
     END {printf "ratio rps: 1 rule %.3f, 1000 rules %.3f; ratio mean latency: 1 rule %.3f, 1000 rules %.3f\n",
          a/b, k/b, al/bl, kl/bl}' "$TMP/rows"
