#!/usr/bin/env bash
# Runtime security overhead (issue 10), docs/performance.md "Runtime security".
# Times an open/close loop and an exec loop (bench/security_loops.cc) under:
#   bare        nothing attached
#   empty_tp    empty BPF programs (bpftrace '{}') on every tracepoint the
#               security module attaches: the hook's floor
#   kagami      `kagami agent` with modules.security and the default policy
#   bpftrace    bpftrace printing each open/exec (opensnoop/execsnoop-like)
#   libbpf      libbpf-tools opensnoop / execsnoop (output to /dev/null)
# each as a ratio to the bare run of the same invocation (runs interleaved,
# median of ROUNDS). Then the events per second the agent delivers to user
# space before the first loss (a policy matching every open of the loop).
# Needs root, bpftrace and libbpf-tools (scripts/install-deps.sh).
#   bench/security_overhead.sh [build-dir]     (env: OPEN_N, EXEC_N, ROUNDS, LOOPS_TO_RUN="open exec")
set -euo pipefail
BUILD=${1:-build}
KAGAMI=$BUILD/src/exe/kagami
LOOPS=$BUILD/bench/security_loops
OPEN_N=${OPEN_N:-200000}
EXEC_N=${EXEC_N:-2000}
ROUNDS=${ROUNDS:-3}
[ "$(id -u)" -eq 0 ] || { echo "security_overhead.sh: needs root" >&2; exit 1; }
for b in "$KAGAMI" "$LOOPS"; do [ -x "$b" ] || { echo "missing $b (cmake --build $BUILD --target kagami security_loops)" >&2; exit 1; }; done
OPENSNOOP=$(command -v opensnoop || ls /usr/sbin/opensnoop 2>/dev/null || true)
EXECSNOOP=$(command -v execsnoop || ls /usr/sbin/execsnoop 2>/dev/null || true)
command -v bpftrace >/dev/null || { echo "needs bpftrace (apt-get install bpftrace)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/kagami-secbench-XXXXXX)
PORT=$((19000 + $$ % 1000))
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP" "/sys/fs/bpf/kagami-secbench-$$"
}
trap cleanup EXIT

TPS="sched:sched_process_exec sched:sched_process_fork sched:sched_process_exit
syscalls:sys_enter_openat syscalls:sys_exit_openat syscalls:sys_enter_connect syscalls:sys_enter_bind
syscalls:sys_enter_listen syscalls:sys_enter_socket syscalls:sys_enter_accept syscalls:sys_exit_accept
syscalls:sys_enter_accept4 syscalls:sys_exit_accept4 syscalls:sys_enter_setuid syscalls:sys_enter_setgid
syscalls:sys_enter_setresuid syscalls:sys_enter_capset syscalls:sys_enter_ptrace syscalls:sys_enter_mount
syscalls:sys_exit_mount syscalls:sys_enter_umount syscalls:sys_exit_umount syscalls:sys_enter_setns
syscalls:sys_enter_unshare syscalls:sys_enter_bpf"
EMPTY_PROG=$(for t in $TPS; do printf 'tracepoint:%s,' "$t"; done | sed 's/,$//')' { }'

# start_observer <name>: starts it in the background and waits until attached.
start_observer() {
  case "$1" in
    bare) return 0 ;;
    empty_tp) bpftrace -e "$EMPTY_PROG" >"$TMP/obs.out" 2>&1 & ;;
    kagami)
      cat >"$TMP/k.yaml" <<YAML
agent: {http: "127.0.0.1:$PORT", socket: $TMP/k.sock, pin_root: /sys/fs/bpf/kagami-secbench-$$}
modules:
  security: {enabled: true}
YAML
      "$KAGAMI" agent -c "$TMP/k.yaml" >"$TMP/obs.out" 2>&1 & ;;
    kagami_flood)
      cat >"$TMP/flood.yaml" <<YAML
rules:
  - {name: every-open, event: open, selector: {binary: security_loops}, match: {path: /etc/hostname}}
YAML
      cat >"$TMP/k.yaml" <<YAML
agent:
  http: "127.0.0.1:$PORT"
  socket: $TMP/k.sock
  pin_root: /sys/fs/bpf/kagami-secbench-$$
  events: {history: 1000, rule_rate: 0}
modules:
  security: {enabled: true, policy: $TMP/flood.yaml, rate: 0, ring_kb: 4096}
YAML
      "$KAGAMI" agent -c "$TMP/k.yaml" >"$TMP/obs.out" 2>&1 & ;;
    # bpftrace's own opensnoop.bt / execsnoop.bt (Debian package bpftrace)
    bpftrace_open) bpftrace "$(command -v opensnoop.bt || echo /usr/sbin/opensnoop.bt)" >/dev/null 2>"$TMP/obs.out" & ;;
    bpftrace_exec) bpftrace "$(command -v execsnoop.bt || echo /usr/sbin/execsnoop.bt)" >/dev/null 2>"$TMP/obs.out" & ;;
    libbpf_open) "$OPENSNOOP" >/dev/null 2>"$TMP/obs.out" & ;;
    libbpf_exec) "$EXECSNOOP" >/dev/null 2>"$TMP/obs.out" & ;;
  esac
  PIDS+=($!)
  case "$1" in
    kagami*) for _ in $(seq 150); do curl -sf "http://127.0.0.1:$PORT/api/v1/events/stats" >/dev/null && break; sleep 0.2; done; sleep 1 ;;
    *) sleep 4 ;;  # bpftrace and the libbpf tools attach within ~2 s
  esac
}
stop_observer() {
  [ "$1" = bare ] && return 0
  local p=${PIDS[-1]}
  kill -INT "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  unset 'PIDS[-1]'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run() {  # run <loop> <n> <observer> -> ns per iteration (median of ROUNDS)
  local loop=$1 n=$2 obs=$3
  start_observer "$obs"
  for _ in $(seq "$ROUNDS"); do "$LOOPS" "$loop" "$n" | awk '{print $2}'; done | median
  stop_observer "$obs"
}

printf '%-8s %-12s %12s %8s\n' loop observer ns/iter ratio
for loop in ${LOOPS_TO_RUN:-open exec}; do
  n=$OPEN_N; [ "$loop" = exec ] && n=$EXEC_N
  bare=$(run "$loop" "$n" bare)
  printf '%-8s %-12s %12.1f %8.3f\n' "$loop" bare "$bare" 1
  for obs in empty_tp kagami bpftrace_$loop libbpf_$loop; do
    if [ "${obs#libbpf}" != "$obs" ] && [ -z "$OPENSNOOP" ]; then continue; fi
    v=$(run "$loop" "$n" "$obs")
    printf '%-8s %-12s %12.1f %8.3f\n' "$loop" "${obs%_$loop}" "$v" "$(echo "$v / $bare" | bc -l)"
  done
  # the bare run again, to show the drift over the invocation
  again=$(run "$loop" "$n" bare)
  printf '%-8s %-12s %12.1f %8.3f\n' "$loop" bare-again "$again" "$(echo "$again / $bare" | bc -l)"
done

# Events per second to user space before the first loss: every open of the
# loop matches; the agent drains while the loop runs flat out.
start_observer kagami_flood
t0=$(date +%s.%N)
"$LOOPS" open "$OPEN_N" >/dev/null
t1=$(date +%s.%N)
sleep 2
curl -sf "http://127.0.0.1:$PORT/api/v1/events/stats" >"$TMP/stats.json"
stop_observer kagami_flood
python3 - "$TMP/stats.json" "$t0" "$t1" "$OPEN_N" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))
pub = st.get("published", {}).get("security", {}).get("open", 0)
drop = st.get("dropped", {}).get("security", {})
secs = float(sys.argv[3]) - float(sys.argv[2])
print(f"flood: {sys.argv[4]} opens in {secs:.2f} s -> {pub} events published ({pub/secs:.0f}/s), dropped {drop}")
PY
