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
#define ENERGY_MAP_PMU "energy_pmu"            /* PERF_EVENT_ARRAY: the activity counter of each CPU */

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
	/* Activity counter (energy_pmu: instructions, or a software clock in
	 * tests), only in the counter variants (ENERGY_PMU=1); zero otherwise.
	 * Split like the time above: ctr_busy + ctr_idle + sum(ctr_softirq)
	 * = counts over the slices whose both ends were read. */
	__u64 ctr_busy;           /* task slices, ksoftirqd included */
	__u64 ctr_idle;           /* idle slices */
	__u64 ctr_ksoftirqd;      /* part of ctr_busy run by ksoftirqd/N */
	__u64 ctr_softirq[ENERGY_SOFTIRQ_MAX];
	__u64 ctr_lost;           /* slices or softirqs whose count is unknown: failed read, restart */
	/* counter bookkeeping */
	__u64 ctr_at_start;       /* counter at the last switch (valid if ctr_valid) */
	__u64 ctr_softirq_at_start; /* ctr_softirq_total at that switch */
	__u64 ctr_softirq_total;  /* all softirq counts on this CPU since load */
	__u64 ctr_softirq_entry;  /* counter at the running softirq's entry */
	__u32 ctr_valid;          /* ctr_at_start is a good reading */
	__u32 ctr_softirq_valid;  /* ctr_softirq_entry is a good reading */
};

struct energy_cg_key {
	__u64 cgroup_id;
};

/* On-CPU time of one cgroup (or of the energy_other slot). */
struct energy_cg_time {
	__u64 cpu_ns;
	__u64 slices;
	__u64 ctr;     /* activity counter (instructions) of its slices; 0 without a counter */
};

struct energy_proc_key {
	__u32 tgid;
	__u32 pad;
};

struct energy_proc_time {
	__u64 cpu_ns;
	__u64 cgroup_id;  /* cgroup of the last slice */
	char comm[16];    /* comm of the thread of the first slice */
	__u64 ctr;        /* activity counter of its slices; 0 without a counter */
};

#endif /* KAGAMI_MODULE_ENERGY_ABI_H */
