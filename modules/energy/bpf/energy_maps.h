/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Maps of the energy programs, one block per map (types: modules/energy/abi.h).
 * Both hook variants include this file and define the same maps. */
#ifndef KAGAMI_BPF_ENERGY_MAPS_H
#define KAGAMI_BPF_ENERGY_MAPS_H

#include "modules/energy/abi.h"

/* Busy/idle/softirq time per CPU, with the slice and softirq bookkeeping in
 * the same value (one lookup per switch). Per-CPU so the hot path never
 * bounces a cache line; only its own CPU writes a copy (sched_switch runs
 * with the runqueue locked and irqs off; softirqs do not nest), so plain
 * stores suffice. Userspace sums the copies. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct energy_cpu_time);
} energy_cpu_time SEC(".maps");

/* On-CPU time per cgroup id: per-CPU hash, never evicts (abi.h). Each CPU
 * adds to its own copy with plain stores (irqs are off in sched_switch), so
 * two CPUs switching out tasks of one cgroup never contend; userspace sums
 * the copies. Kernel memory: entries x CPUs x 24 B. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, ENERGY_CGROUP_MAX_ENTRIES);
	__type(key, struct energy_cg_key);
	__type(value, struct energy_cg_time);
} energy_cgroup SEC(".maps");

/* On-CPU time per process (tgid): LRU, bounded under fork-exit storms. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ENERGY_PROC_MAX_ENTRIES);
	__type(key, struct energy_proc_key);
	__type(value, struct energy_proc_time);
} energy_proc SEC(".maps");

/* Time of cgroups that found energy_cgroup full. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct energy_cg_time);
} energy_other SEC(".maps");

/* Slices folded into energy_other. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} energy_overflow SEC(".maps");

/* The activity counter of each CPU (perf_event_open, pid -1, cpu N,
 * pinned, counting), indexed by CPU. Filled by userspace (the module keeps
 * the map's fd open: the kernel empties the entries written through a map
 * file when that file is released). Read with BPF_F_CURRENT_CPU only by
 * the counter variants; max_entries 0 = libbpf sizes it to the possible
 * CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} energy_pmu SEC(".maps");

#endif /* KAGAMI_BPF_ENERGY_MAPS_H */
