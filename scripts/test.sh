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
if [ "$(id -u)" -eq 0 ]; then
  # Belt and braces: tests clean up after themselves, even on failure; this
  # sweep only catches what a killed test process could not.
  scripts/cleanup-test-leftovers.sh || true
  give_back "$BUILD_DIR"
fi
exit $status
