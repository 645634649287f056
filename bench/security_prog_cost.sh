#!/usr/bin/env bash
# The in-kernel cost of the security module's open hooks, measured by the
# kernel itself (kernel.bpf_stats_enabled: run_time_ns / run_cnt of each
# program), which a loaded machine disturbs far less than wall-clock loops
# (docs/performance.md "Runtime security"). Interleaved, median of ROUNDS:
#   empty    bpftrace with empty programs on sys_enter_openat/sys_exit_openat
#            (the hook's floor: what any program on these tracepoints costs)
#   kagami   `kagami agent` with modules.security and the default policy
#   before   the same with another kagami binary (e.g. the main branch's), to
#            compare two matchers in the same invocation
# Each runs `security_loops open N`; the figure is the ns the two openat
# programs spent per open (sum of run_time_ns of enter and exit / run_cnt of
# enter), over every open on the node while it ran (the loop's dominate).
#   bench/security_prog_cost.sh [build-dir] [before-kagami]   (env: OPEN_N, ROUNDS)
set -euo pipefail
BUILD=${1:-build}
BEFORE=${2:-}
KAGAMI=$BUILD/src/exe/kagami
LOOPS=$BUILD/bench/security_loops
OPEN_N=${OPEN_N:-200000}
ROUNDS=${ROUNDS:-3}
[ "$(id -u)" -eq 0 ] || { echo "security_prog_cost.sh: needs root" >&2; exit 1; }
for b in "$KAGAMI" "$LOOPS" "$(command -v bpftool)" "$(command -v bpftrace)"; do
  [ -x "$b" ] || { echo "missing $b" >&2; exit 1; }
done
TMP=$(mktemp -d /tmp/kagami-seccost-XXXXXX)
PORT=$((19500 + $$ % 400))
OBS=""
OLD_STATS=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
  [ -n "$OBS" ] && kill "$OBS" 2>/dev/null && wait "$OBS" 2>/dev/null || true
  sysctl -qw kernel.bpf_stats_enabled="$OLD_STATS"
  rm -rf "$TMP" "/sys/fs/bpf/kagami-seccost-$$"
}
trap cleanup EXIT
sysctl -qw kernel.bpf_stats_enabled=1

start() {  # start <empty|kagami|before>
  bpftool prog show -j >"$TMP/ids.json"  # the observer's programs are the new ones
  case "$1" in
    empty) bpftrace -e 'tracepoint:syscalls:sys_enter_openat,tracepoint:syscalls:sys_exit_openat { }' >"$TMP/obs.out" 2>&1 & ;;
    kagami|before)
      local bin=$KAGAMI
      [ "$1" = before ] && bin=$BEFORE
      rm -rf "/sys/fs/bpf/kagami-seccost-$$"
      cat >"$TMP/k.yaml" <<YAML
agent: {http: "127.0.0.1:$PORT", socket: $TMP/k.sock, pin_root: /sys/fs/bpf/kagami-seccost-$$}
modules:
  security: {enabled: true}
YAML
      "$bin" agent -c "$TMP/k.yaml" >"$TMP/obs.out" 2>&1 & ;;
  esac
  OBS=$!
  case "$1" in
    empty) sleep 4 ;;
    *) for _ in $(seq 150); do curl -sf "http://127.0.0.1:$PORT/api/v1/events/stats" >/dev/null && break; sleep 0.2; done; sleep 1 ;;
  esac
}
stop() {
  kill -INT "$OBS" 2>/dev/null || true
  wait "$OBS" 2>/dev/null || true
  OBS=""
}
# ns per open of the observer's openat programs: the programs loaded since
# start() with the openat hooks' names (bpftool here reports no owner pids).
cost() {
  bpftool prog show -j >"$TMP/before.json"
  "$LOOPS" open "$OPEN_N" >/dev/null
  bpftool prog show -j >"$TMP/after.json"
  python3 - "$TMP/ids.json" "$TMP/before.json" "$TMP/after.json" <<'PY'
import json, sys
old = {p["id"] for p in json.load(open(sys.argv[1]))}
names = {"sec_openat": "enter", "sec_openat_exit": "exit", "sys_enter_opena": "enter", "sys_exit_openat": "exit"}
def progs(path):
    return {p["id"]: p for p in json.load(open(path)) if p["id"] not in old and p.get("name") in names}
b, a = progs(sys.argv[2]), progs(sys.argv[3])
d = lambda i, k: a[i].get(k, 0) - b.get(i, {}).get(k, 0)
t = sum(d(i, "run_time_ns") for i in a)
n = sum(d(i, "run_cnt") for i in a if names[a[i]["name"]] == "enter")
print(f"{t / n:.1f}" if n else "nan")
PY
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

OBSERVERS="empty kagami"
[ -n "$BEFORE" ] && OBSERVERS="empty before kagami"
declare -A RES
for r in $(seq "$ROUNDS"); do
  for o in $OBSERVERS; do
    start "$o"
    RES[$o]="${RES[$o]:-} $(cost)"
    stop
  done
done
printf '%-8s %14s  %s\n' observer "ns/open (BPF)" "rounds"
for o in $OBSERVERS; do
  printf '%-8s %14s  %s\n' "$o" "$(echo ${RES[$o]} | tr ' ' '\n' | median)" "${RES[$o]}"
done
