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
# Belt and braces: tests clean up after themselves, even on failure; this
# sweep only catches what a killed test process could not.
scripts/cleanup-test-leftovers.sh || true
exit $status
