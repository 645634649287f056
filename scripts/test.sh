#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test (unit, kernel,
# integration). Kernel and integration tests need root; as non-root they skip
# visibly with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then
  scripts/install-deps.sh
fi
scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
status=0
ctest --test-dir "$BUILD_DIR" --output-on-failure -j1 --timeout 600 || status=$?
# Every libFuzzer target for a short, fixed number of inputs (label fuzz):
# they need clang and its sanitizer runtimes, so they live in their own build
# tree. SKIP_FUZZ=1 leaves them out.
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
  FUZZ_TARGETS=(config_fuzz identity_fuzz pcap_reader_fuzz pcap_render_fuzz)
  if cmake -S . -B "$FUZZ_BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
       -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 \
       -DKAGAMI_FUZZ=ON -DKAGAMI_SANITIZE=ON >/dev/null &&
     cmake --build "$FUZZ_BUILD_DIR" -j"$(nproc)" --target "${FUZZ_TARGETS[@]}"; then
    ctest --test-dir "$FUZZ_BUILD_DIR" -L fuzz --output-on-failure -j1 --timeout 600 || status=$?
  else
    echo "test.sh: the fuzz build failed (clang-19 and libclang-rt-19-dev installed?)" >&2
    status=1
  fi
fi
# Belt and braces: tests clean up after themselves, even on failure; this
# sweep only catches what a killed test process could not.
scripts/cleanup-test-leftovers.sh || true
exit $status
