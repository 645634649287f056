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

#ifndef ENERGY_PMU
#define ENERGY_PMU 0
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline int is_ksoftirqd(const char *c)
{
	return c[0] == 'k' && c[1] == 's' && c[2] == 'o' && c[3] == 'f' && c[4] == 't' && c[5] == 'i' &&
	       c[6] == 'r' && c[7] == 'q' && c[8] == 'd' && c[9] == '/';
}

static __always_inline void account_cgroup(__u64 cg, __u64 ns, __u64 ctr)
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
#if ENERGY_PMU
		__sync_fetch_and_add(&v->ctr, ctr);
#endif
		return;
	}
	v->cpu_ns += ns;
	v->slices++;
#if ENERGY_PMU
	v->ctr += ctr;
#endif
}

#define ENERGY_ROOT_CGROUP_ID 1 /* kernfs id of the cgroup v2 root */

static __always_inline void account_proc(__u32 tgid, __u64 cg, __u64 ns, __u64 ctr)
{
	struct energy_proc_key key = { .tgid = tgid };
	struct energy_proc_time *v, init = {};

	v = bpf_map_lookup_elem(&energy_proc, &key);
	if (!v) {
		init.cgroup_id = cg;
		bpf_get_current_comm(init.comm, sizeof(init.comm));
		init.cpu_ns = ns;
		init.ctr = ctr;
		/* If a racing CPU inserted first, this slice is lost for the
		 * per-process view only (the cgroup view has it). */
		bpf_map_update_elem(&energy_proc, &key, &init, BPF_NOEXIST);
		return;
	}
	__sync_fetch_and_add(&v->cpu_ns, ns);
#if ENERGY_PMU
	__sync_fetch_and_add(&v->ctr, ctr);
#endif
	/* Only when it changed (a process moved to another cgroup): a store on
	 * every switch would dirty the line for nothing. comm is the one of the
	 * first slice (exec renames are rare and cosmetic here). */
	if (v->cgroup_id != cg)
		v->cgroup_id = cg;
}

#if ENERGY_PMU
/* Reads this CPU's counter into *v; 0 on success.
 * bpf_perf_event_read, not bpf_perf_event_read_value: without the enabled/
 * running times the kernel skips a second clock read (calc_timer_values),
 * about 80 ns a switch here. Those times would only say that the event did
 * not count for part of the slice; for a pinned event that cannot happen
 * unnoticed: perf_event_read_local() refuses a pinned event that is not
 * on this CPU (-EBUSY), which is a failed read, counted as lost. Errors
 * come back as a negative value (a counter never reaches 2^63). */
static __always_inline int read_ctr(__u64 *v)
{
	__u64 c = bpf_perf_event_read(&energy_pmu, BPF_F_CURRENT_CPU);

	if ((__s64)c < 0)
		return -1;
	*v = c;
	return 0;
}

/* The counter delta of the slice that ends now, softirq counts removed; 0
 * if unknown (counted in ctr_lost). Re-arms the slice start. `first`: no
 * slice ends (first switch since load), only arm. */
static __always_inline __u64 ctr_slice(struct energy_cpu_time *t, int first)
{
	__u64 v = 0, d = 0, s;
	int ok = read_ctr(&v) == 0;

	s = t->ctr_softirq_total - t->ctr_softirq_at_start;
	t->ctr_softirq_at_start = t->ctr_softirq_total;
	if (ok && t->ctr_valid && v >= t->ctr_at_start) {
		d = v - t->ctr_at_start;
		d = d > s ? d - s : 0;
	} else if (!first) {
		/* failed read now or at the start, or a restarted event
		 * (reopened after hotplug): this slice's count is unknown */
		t->ctr_lost++;
	}
	t->ctr_valid = ok;
	t->ctr_at_start = v;
	return d;
}
#endif

static __always_inline void on_switch(void)
{
	struct energy_cpu_time *t;
	__u64 now, delta, sirq, slice, pid_tgid, cg, ctr = 0;
	char comm[16] = {};
	__u32 k0 = 0;

	t = bpf_map_lookup_elem(&energy_cpu_time, &k0);
	if (!t)
		return;
	now = bpf_ktime_get_ns();
	t->switches++;
	if (!t->slice_start_ns) { /* first switch on this CPU since load */
		t->slice_start_ns = now;
		t->softirq_at_start = t->softirq_total_ns;
#if ENERGY_PMU
		ctr_slice(t, 1);
#endif
		return;
	}
	delta = now - t->slice_start_ns;
	sirq = t->softirq_total_ns - t->softirq_at_start;
	slice = delta > sirq ? delta - sirq : 0;
	t->slice_start_ns = now;
	t->softirq_at_start = t->softirq_total_ns;
#if ENERGY_PMU
	ctr = ctr_slice(t, 0);
#endif

	pid_tgid = bpf_get_current_pid_tgid();
	if ((__u32)pid_tgid == 0) {
		t->idle_ns += slice;
#if ENERGY_PMU
		t->ctr_idle += ctr;
#endif
		return;
	}
	t->busy_ns += slice;
#if ENERGY_PMU
	t->ctr_busy += ctr;
#endif
	cg = bpf_get_current_cgroup_id();
	/* ksoftirqd threads live in the root cgroup (id 1 on cgroup v2): the
	 * comm is read only there, not on every switch. */
	if (cg == ENERGY_ROOT_CGROUP_ID) {
		bpf_get_current_comm(comm, sizeof(comm));
		if (is_ksoftirqd(comm)) {
			t->ksoftirqd_ns += slice;
#if ENERGY_PMU
			t->ctr_ksoftirqd += ctr;
#endif
			return;
		}
	}
	account_cgroup(cg, slice, ctr);
	account_proc(pid_tgid >> 32, cg, slice, ctr);
}

static __always_inline void on_softirq_entry(__u32 vec)
{
	__u32 k0 = 0;
	struct energy_cpu_time *t = bpf_map_lookup_elem(&energy_cpu_time, &k0);

	if (!t)
		return;
	t->softirq_entry_ns = bpf_ktime_get_ns();
	t->softirq_vec = vec;
#if ENERGY_PMU
	t->ctr_softirq_valid = read_ctr(&t->ctr_softirq_entry) == 0;
#endif
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
#if ENERGY_PMU
	{
		__u64 v = 0;

		if (t->ctr_softirq_valid && read_ctr(&v) == 0 && v >= t->ctr_softirq_entry) {
			v -= t->ctr_softirq_entry;
			t->ctr_softirq_total += v;
			t->ctr_softirq[vec] += v;
		} else {
			t->ctr_lost++;
		}
		t->ctr_softirq_valid = 0;
	}
#endif
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
