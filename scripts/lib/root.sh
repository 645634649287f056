# Sourced by scripts that need root: as root nothing happens; otherwise the
# script runs again through sudo when sudo exists, or stops with a message
# saying what to do. Containers and fresh Debian images often have no sudo,
# and a root shell has no need of it, so the README's commands carry none.
#
#   . "$(dirname "$0")/lib/root.sh"
#   require_root demo.sh "it loads BPF programs and creates a network namespace" "$@"
#
# The variables the scripts read (BUILD_DIR, KAGAMI_*) survive sudo's
# environment reset; KAGAMI_SUDO_REEXEC=1 marks the second run (and stops a
# loop should sudo not give root).

# require_root NAME WHY ARGS...: returns only when running as root.
require_root() {
  local name=$1 why=$2
  shift 2
  [ "$(id -u)" -eq 0 ] && return 0
  if [ "${KAGAMI_SUDO_REEXEC:-}" != 1 ] && command -v sudo >/dev/null 2>&1; then
    echo "$name: needs root ($why); running it through sudo" >&2
    local keep=() v
    for v in $(compgen -e); do
      case $v in BUILD_DIR|CMAKE_BUILD_TYPE|KAGAMI_*) keep+=("$v=${!v}") ;; esac
    done
    exec sudo -- env KAGAMI_SUDO_REEXEC=1 "${keep[@]}" "$(realpath "$0")" "$@"
  fi
  if [ "${KAGAMI_SUDO_REEXEC:-}" = 1 ]; then
    echo "$name: needs root ($why), and sudo did not give root." >&2
    return 1
  fi
  echo "$name: needs root ($why), and sudo is not installed." >&2
  echo "$name: run it from a root shell (su -, then $0), or install sudo." >&2
  return 1
}

# give_back DIR: after a run through sudo, hands DIR (a build tree sudo
# created or wrote into) back to the user who ran the script.
give_back() {
  if [ "${KAGAMI_SUDO_REEXEC:-}" = 1 ] && [ -n "${SUDO_UID:-}" ] && [ -e "$1" ]; then
    chown -R "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$1" 2>/dev/null || true
  fi
}
