// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Feature-probe programs: the smallest program of each hook type whose
 * availability a program type alone does not prove. src/core/probe_kernel.cc
 * loads them ONE AT A TIME (autoload off for all others, a fresh object per
 * trial) and attaches each, so a kernel that refuses one hook still reports
 * the others. None of them changes behaviour: every one returns the value
 * that lets the kernel carry on (0 / XDP_PASS).
 *
 * Attach targets are chosen to be cold and always built: bpf_fentry_test1
 * and the bpf_test_finish tracepoint exist for BPF_PROG_TEST_RUN
 * (net/bpf/test_run.c) and run only when someone test-runs a program.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Index 0: uprobe hits, so the uprobe trial proves the probe really fires.
 * Index 1: the cgroup id probe_cgroup_id saw.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} probe_hits SEC(".maps");

SEC("kprobe/bpf_fentry_test1")
int probe_kprobe(struct pt_regs *ctx)
{
	return 0;
}

SEC("kprobe.multi/bpf_fentry_test1")
int probe_kprobe_multi(struct pt_regs *ctx)
{
	return 0;
}

SEC("fentry/bpf_fentry_test1")
int BPF_PROG(probe_fentry, int a)
{
	return 0;
}

SEC("fexit/bpf_fentry_test1")
int BPF_PROG(probe_fexit, int a, int ret)
{
	return 0;
}

/* security_bpf(): only bpf() syscalls pass here; 0 = allow. */
SEC("lsm/bpf")
int BPF_PROG(probe_lsm, int cmd)
{
	return 0;
}

SEC("tp_btf/bpf_test_finish")
int BPF_PROG(probe_tp_btf, int *err)
{
	return 0;
}

SEC("raw_tp/bpf_test_finish")
int probe_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}

/* Attached only when tracefs is mounted (libbpf reads the event id there). */
SEC("tracepoint/syscalls/sys_enter_getppid")
int probe_tracepoint(void *ctx)
{
	return 0;
}

/* Attached by offset to a function in the probing process itself. */
SEC("uprobe")
int probe_uprobe(struct pt_regs *ctx)
{
	__u32 key = 0;
	__u64 *hits = bpf_map_lookup_elem(&probe_hits, &key);

	if (hits)
		__sync_fetch_and_add(hits, 1);
	return 0;
}

/* freplace target: a global function has its own BTF and can be replaced. */
__noinline int probe_ext_target(struct xdp_md *ctx)
{
	return ctx ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int probe_xdp(struct xdp_md *ctx)
{
	return probe_ext_target(ctx);
}

SEC("freplace/probe_ext_target")
int probe_freplace(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* BPF iterator: reads nothing, emits nothing. */
SEC("iter/bpf_map")
int probe_iter(struct bpf_iter__bpf_map *ctx)
{
	return 0;
}

/*
 * Run with BPF_PROG_TEST_RUN, never attached: a test run executes in the
 * calling task, so this records the cgroup id BPF sees for the caller. The
 * probe and the identity tests compare it with the inode of the caller's
 * cgroup v2 directory (the identity service's premise).
 */
SEC("raw_tp/bpf_test_finish")
int probe_cgroup_id(void *ctx)
{
	__u32 key = 1;
	__u64 id = bpf_get_current_cgroup_id();

	bpf_map_update_elem(&probe_hits, &key, &id, BPF_ANY);
	return 0;
}
