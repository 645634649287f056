#!/usr/bin/env bash
# Installs everything Kagami needs to build, run and test on Debian 12.
# Idempotent; needs root (apt). Only Debian packages and npm are used.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: must run as root (apt-get)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
PKGS=(
  # build
  build-essential cmake ninja-build pkg-config git
  # BPF toolchain: clang-19 for CO-RE objects, bpftool for skeletons
  clang-19 llvm-19 libbpf-dev bpftool libxdp-dev xdp-tools libelf-dev zlib1g-dev
  # fuzzing: libFuzzer and the ASan/UBSan runtimes for clang-19, which
  # --no-install-recommends leaves out (scripts/fuzz.sh, the fuzz smoke tests)
  libclang-rt-19-dev
  # libraries
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libssl-dev libpcap-dev libnghttp2-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # independent judges and test hosts
  iproute2 iputils-ping tshark prometheus netcat-openbsd procps curl iperf3
  python3
  # security benchmarks: the tools Kagami's security module is compared with
  # on the same loops (bench/security_overhead.sh, docs/performance.md)
  bpftrace
  libbpf-tools

  # sbi module live tests and benchmark: real HTTP/2 servers and clients
  # (nghttpd; nghttp, h2load) for h2c and TLS SBI traffic
  nghttp2-server
  nghttp2-client

  # policy benchmark: nftables with a 100,000-address set on the same veth
  # path as Kagami's policy (bench/policy_vs_nftables.sh; iperf3 above)
  nftables
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  # wireshark-common asks whether non-root users may capture; answer no.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
echo "install-deps.sh: all dependencies present"
