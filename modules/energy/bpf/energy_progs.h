/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The energy accounting programs. Compiled twice, like transport:
 *   energy.bpf.c     ENERGY_TP_BTF=1: tp_btf/sched_switch, softirq_entry/exit
 *   energy_tp.bpf.c  ENERGY_TP_BTF=0: tracepoint/sched/sched_switch,
 *                    tracepoint/irq/softirq_entry, softirq_exit
 * The bodies are identical: everything about the outgoing task comes from
 * the current-task helpers, because sched_switch fires in __schedule()
 * before the switch, when current is still prev.
 *
 * Method (docs/energy.md):
 *   - each CPU keeps the time of its last switch; at the next switch the
 *     outgoing task's slice is now - start, minus the softirq time that ran
 *     on this CPU in between (softirq_entry/exit), so softirq time is
 *     counted once, by vector, and never in a task or in idle;
 *   - pid 0 (the idle task of every CPU) is idle time; comm "ksoftirqd/N"
 *     is counted apart (its softirq handlers are already in softirq_ns);
 *   - everything else goes to the current cgroup id and to the tgid.
 * Hardirq time is not separated: it stays in whichever slice it interrupted.
 */
#ifndef KAGAMI_BPF_ENERGY_PROGS_H
#define KAGAMI_BPF_ENERGY_PROGS_H

#include "energy_maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline int is_ksoftirqd(const char *c)
{
	return c[0] == 'k' && c[1] == 's' && c[2] == 'o' && c[3] == 'f' && c[4] == 't' && c[5] == 'i' &&
	       c[6] == 'r' && c[7] == 'q' && c[8] == 'd' && c[9] == '/';
}

static __always_inline void account_cgroup(__u64 cg, __u64 ns)
{
	struct energy_cg_key key = { .cgroup_id = cg };
	struct energy_cg_time *v, zero = {};
	__u32 k0 = 0;

	/* Per-CPU hash: this CPU's copy, written only here with irqs off, so
	 * plain adds. A new entry starts at zero on every CPU. */
	v = bpf_map_lookup_elem(&energy_cgroup, &key);
	if (!v) {
		bpf_map_update_elem(&energy_cgroup, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&energy_cgroup, &key);
	}
	if (!v) {
		__u64 *ov = bpf_map_lookup_elem(&energy_overflow, &k0);

		if (ov)
			__sync_fetch_and_add(ov, 1);
		v = bpf_map_lookup_elem(&energy_other, &k0);
		if (!v)
			return;
		/* energy_other is shared by all CPUs: atomic. */
		__sync_fetch_and_add(&v->cpu_ns, ns);
		__sync_fetch_and_add(&v->slices, 1);
		return;
	}
	v->cpu_ns += ns;
	v->slices++;
}

#define ENERGY_ROOT_CGROUP_ID 1 /* kernfs id of the cgroup v2 root */

static __always_inline void account_proc(__u32 tgid, __u64 cg, __u64 ns)
{
	struct energy_proc_key key = { .tgid = tgid };
	struct energy_proc_time *v, init = {};

	v = bpf_map_lookup_elem(&energy_proc, &key);
	if (!v) {
		init.cgroup_id = cg;
		bpf_get_current_comm(init.comm, sizeof(init.comm));
		init.cpu_ns = ns;
		/* If a racing CPU inserted first, this slice is lost for the
		 * per-process view only (the cgroup view has it). */
		bpf_map_update_elem(&energy_proc, &key, &init, BPF_NOEXIST);
		return;
	}
	__sync_fetch_and_add(&v->cpu_ns, ns);
	/* Only when it changed (a process moved to another cgroup): a store on
	 * every switch would dirty the line for nothing. comm is the one of the
	 * first slice (exec renames are rare and cosmetic here). */
	if (v->cgroup_id != cg)
		v->cgroup_id = cg;
}

static __always_inline void on_switch(void)
{
	struct energy_cpu_time *t;
	__u64 now, delta, sirq, slice, pid_tgid, cg;
	char comm[16] = {};
	__u32 k0 = 0;

	t = bpf_map_lookup_elem(&energy_cpu_time, &k0);
	if (!t)
		return;
	now = bpf_ktime_get_ns();
	t->switches++;
	if (!t->slice_start_ns || now < t->slice_start_ns) { /* first switch on this CPU since load */
		t->slice_start_ns = now;
		t->softirq_at_start = t->softirq_total_ns;
		return;
	}
	delta = now - t->slice_start_ns;
	sirq = t->softirq_total_ns - t->softirq_at_start;
	slice = delta > sirq ? delta - sirq : 0;
	t->slice_start_ns = now;
	t->softirq_at_start = t->softirq_total_ns;

	pid_tgid = bpf_get_current_pid_tgid();
	if ((__u32)pid_tgid == 0) {
		t->idle_ns += slice;
		return;
	}
	t->busy_ns += slice;
	cg = bpf_get_current_cgroup_id();
	/* ksoftirqd threads live in the root cgroup (id 1 on cgroup v2): the
	 * comm is read only there, not on every switch. */
	if (cg == ENERGY_ROOT_CGROUP_ID) {
		bpf_get_current_comm(comm, sizeof(comm));
		if (is_ksoftirqd(comm)) {
			t->ksoftirqd_ns += slice;
			return;
		}
	}
	account_cgroup(cg, slice);
	account_proc(pid_tgid >> 32, cg, slice);
}

static __always_inline void on_softirq_entry(__u32 vec)
{
	__u32 k0 = 0;
	struct energy_cpu_time *t = bpf_map_lookup_elem(&energy_cpu_time, &k0);

	if (!t)
		return;
	t->softirq_entry_ns = bpf_ktime_get_ns();
	t->softirq_vec = vec;
}

static __always_inline void on_softirq_exit(void)
{
	struct energy_cpu_time *t;
	__u32 k0 = 0, vec;
	__u64 d;

	t = bpf_map_lookup_elem(&energy_cpu_time, &k0);
	if (!t || !t->softirq_entry_ns) /* entry before load: skip */
		return;
	d = bpf_ktime_get_ns() - t->softirq_entry_ns;
	t->softirq_entry_ns = 0;
	t->softirq_total_ns += d;
	vec = t->softirq_vec;
	if (vec >= ENERGY_SOFTIRQ_MAX)
		vec = ENERGY_SOFTIRQ_MAX - 1;
	t->softirq_ns[vec] += d;
}

#if ENERGY_TP_BTF
SEC("tp_btf/sched_switch")
int BPF_PROG(energy_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	on_switch();
	return 0;
}

SEC("tp_btf/softirq_entry")
int BPF_PROG(energy_softirq_entry, unsigned int vec_nr)
{
	on_softirq_entry(vec_nr);
	return 0;
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(energy_softirq_exit, unsigned int vec_nr)
{
	on_softirq_exit();
	return 0;
}
#else
SEC("tracepoint/sched/sched_switch")
int energy_sched_switch(void *ctx)
{
	on_switch();
	return 0;
}

SEC("tracepoint/irq/softirq_entry")
int energy_softirq_entry(struct trace_event_raw_softirq *ctx)
{
	on_softirq_entry(ctx->vec);
	return 0;
}

SEC("tracepoint/irq/softirq_exit")
int energy_softirq_exit(struct trace_event_raw_softirq *ctx)
{
	on_softirq_exit();
	return 0;
}
#endif

#endif /* KAGAMI_BPF_ENERGY_PROGS_H */
