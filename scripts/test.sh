#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test (unit, kernel,
# integration).
#
#   scripts/test.sh     as root: everything. As a user: through sudo when sudo
#                       exists; without sudo (or with KAGAMI_NO_SUDO=1) it
#                       builds and runs what a user can: kernel and
#                       integration tests skip visibly with the reason.
set -euo pipefail
. "$(dirname "$0")/lib/root.sh"
if [ "$(id -u)" -ne 0 ]; then
  if [ "${KAGAMI_NO_SUDO:-}" = 1 ] || ! command -v sudo >/dev/null 2>&1; then
    echo "test.sh: not root (no sudo, or KAGAMI_NO_SUDO=1): building and running the tests a user can run;" \
         "kernel and integration tests will skip (run as root for all of them)" >&2
  else
    require_root test.sh "kernel and integration tests load BPF programs and create network namespaces" "$@"
  fi
fi
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
if [ "$(id -u)" -eq 0 ]; then
  scripts/install-deps.sh
fi
BUILD_DIR="$BUILD_DIR" scripts/build.sh
status=0
ctest --test-dir "$BUILD_DIR" --output-on-failure -j1 --timeout 600 || status=$?
# Every libFuzzer target for a short, fixed number of inputs (label fuzz):
# they need clang and its sanitizer runtimes, so they live in their own build
# tree. SKIP_FUZZ=1 leaves them out.
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
  FUZZ_TARGETS=(config_fuzz identity_fuzz pcap_reader_fuzz pcap_render_fuzz n2_decode_fuzz security_policy_fuzz sbi_fuzz policy_fuzz l7_policy_fuzz)
  if cmake -S . -B "$FUZZ_BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
       -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 \
       -DKAGAMI_FUZZ=ON -DKAGAMI_SANITIZE=ON -DKAGAMI_WERROR=OFF >/dev/null &&
     cmake --build "$FUZZ_BUILD_DIR" -j"$(nproc)" --target "${FUZZ_TARGETS[@]}"; then
    ctest --test-dir "$FUZZ_BUILD_DIR" -L fuzz --output-on-failure -j1 --timeout 600 || status=$?
  else
    echo "test.sh: the fuzz build failed (clang-19 and libclang-rt-19-dev installed?)" >&2
    status=1
  fi
fi
if [ "$(id -u)" -eq 0 ]; then
  # Belt and braces: tests clean up after themselves, even on failure; this
  # sweep only catches what a killed test process could not.
  scripts/cleanup-test-leftovers.sh || true
  give_back "$BUILD_DIR"
fi
exit $status
