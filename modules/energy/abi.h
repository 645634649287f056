/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * energy ABI: what modules/energy/bpf/ (both variants) writes into its maps
 * and modules/energy/ reads back. Plain C, compiled by both sides:
 *   - BPF:  #include "vmlinux.h" first, then this header;
 *   - C++:  #include <linux/types.h> first, then this header.
 * Explicit padding, append-only constants, map names part of the ABI
 * (docs/abi.md); checked by the generated energy_abi_layout_test.
 */
#ifndef KAGAMI_MODULE_ENERGY_ABI_H
#define KAGAMI_MODULE_ENERGY_ABI_H

#define ENERGY_MAP_CPU_TIME "energy_cpu_time"  /* per-CPU time counters and slice bookkeeping */
#define ENERGY_MAP_CGROUP "energy_cgroup"      /* cgroup id -> on-CPU time, per CPU */
#define ENERGY_MAP_PROC "energy_proc"          /* tgid -> on-CPU time (LRU) */
#define ENERGY_MAP_OTHER "energy_other"        /* time of cgroups that found energy_cgroup full */
#define ENERGY_MAP_OVERFLOW "energy_overflow"  /* how many slices went to energy_other */

/* Softirq vectors as the kernel numbers them (include/linux/interrupt.h:
 * HI, TIMER, NET_TX, NET_RX, BLOCK, IRQ_POLL, TASKLET, SCHED, HRTIMER, RCU);
 * NR_SOFTIRQS is 10 and has been since 2.6.x. A larger vector is counted in
 * the last slot. */
#define ENERGY_SOFTIRQ_NET_TX 2
#define ENERGY_SOFTIRQ_NET_RX 3
#define ENERGY_SOFTIRQ_MAX 10

/* Map sizes. energy_cgroup is a per-CPU hash, not LRU (a live cgroup's
 * counter must never be evicted and restart), per CPU so that two CPUs
 * switching out tasks of one cgroup never write one cache line: a node runs a few hundred containers; 10240
 * leaves room for churn between prunes. A full map folds the slice into
 * energy_other and counts it. energy_proc is LRU by design (processes come
 * and go by the thousand; only the top N are exported): an evicted tgid
 * that comes back restarts at 0, which the module treats as a new counter. */
#define ENERGY_CGROUP_MAX_ENTRIES 10240
#define ENERGY_PROC_MAX_ENTRIES 16384

/* Per-CPU time counters and the bookkeeping behind them (PERCPU_ARRAY,
 * key 0), nanoseconds since load. One value, so a context switch does one
 * map lookup for both (docs/performance.md, "Energy module").
 * busy_ns + idle_ns + sum(softirq_ns) = time covered by closed slices.
 * Userspace reads the counters; the bookkeeping is the programs' own. */
struct energy_cpu_time {
	__u64 busy_ns;       /* task time (pid != 0), softirq time inside it removed */
	__u64 idle_ns;       /* idle task (pid 0), softirq time inside it removed */
	__u64 ksoftirqd_ns;  /* part of busy_ns spent by ksoftirqd/N outside softirq handlers */
	__u64 switches;      /* sched_switch events seen */
	__u64 softirq_ns[ENERGY_SOFTIRQ_MAX]; /* by vector */
	/* bookkeeping */
	__u64 slice_start_ns;     /* clock at the last sched_switch; 0 = none yet */
	__u64 softirq_at_start;   /* softirq_total_ns at that switch */
	__u64 softirq_total_ns;   /* all softirq time on this CPU since load */
	__u64 softirq_entry_ns;   /* entry time of the running softirq; 0 = none */
	__u32 softirq_vec;        /* vector of the running softirq */
	__u32 pad;
};

struct energy_cg_key {
	__u64 cgroup_id;
};

/* On-CPU time of one cgroup (or of the energy_other slot). */
struct energy_cg_time {
	__u64 cpu_ns;
	__u64 slices;
};

struct energy_proc_key {
	__u32 tgid;
	__u32 pad;
};

struct energy_proc_time {
	__u64 cpu_ns;
	__u64 cgroup_id;  /* cgroup of the last slice */
	char comm[16];    /* comm of the thread of the first slice */
};

#endif /* KAGAMI_MODULE_ENERGY_ABI_H */
