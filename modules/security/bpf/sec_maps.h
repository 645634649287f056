/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The security module's maps, one block each: why this type, why this size.
 * Included once, by security.bpf.c. */
#ifndef KAGAMI_SEC_MAPS_H
#define KAGAMI_SEC_MAPS_H

/* Events to userspace. 1 MiB: ~1200 records of 832 bytes, enough to ride
 * out a burst while the event loop (woken per record) drains; the module
 * patches the size from security.ring_kb. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SEC_RING_BYTES_DEFAULT);
} sec_events SEC(".maps");

/* Drops by cause (kg_drop_cause), per CPU: plain adds, no atomics. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KG_DROP__MAX);
	__type(key, __u32);
	__type(value, __u64);
} sec_drops SEC(".maps");

/* One entry: the generation in force, the agent's tgid, the rate limit.
 * Written by userspace; gen last of everything on a policy switch. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sec_config);
} sec_config SEC(".maps");

/* Per generation (2): which rules need a map lookup, and by action. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct sec_gen);
} sec_gens SEC(".maps");

/* [gen][side][kind] -> mask of the rules that could match: the first
 * lookup of every event, and the whole cost of one no rule wants. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * 2 * SEC_KIND_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sec_kinds SEC(".maps");

/* [gen][rule]: the per-rule checks (uid, flags, address, port, argument). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * SEC_MAX_RULES);
	__type(key, __u32);
	__type(value, struct sec_rule);
} sec_rules SEC(".maps");

/* Path prefixes and exact paths (NUL-terminated keys) of both
 * generations. The compiler puts into each entry's mask the rules of every
 * shorter prefix of it, so the longest match the trie returns is the whole
 * answer. 2048: 64 rules with 16 paths each, twice. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SEC_PREFIX_MAX_ENTRIES);
	__type(key, struct sec_prefix_key);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sec_prefix SEC(".maps");

/* Binary selectors (the task's comm) of both generations. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SEC_BIN_MAX_ENTRIES);
	__type(key, struct sec_bin_key);
	__type(value, struct sec_sel_val);
} sec_bin SEC(".maps");

/* Container/pod/cgroup selectors, resolved by userspace to cgroup ids of
 * both generations (refreshed as cgroups appear). 16384: 8192 containers
 * per node and generation, far above a kubelet's pod limit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SEC_CGROUP_MAX_ENTRIES);
	__type(key, struct sec_cg_key);
	__type(value, struct sec_sel_val);
} sec_cgroup SEC(".maps");

/* sys_enter -> sys_exit hand-over by thread id (an open whose path was not
 * readable yet, an accept's address buffer). LRU: a thread killed between
 * enter and exit never leaves a stale entry behind for good. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SEC_STASH_MAX_ENTRIES);
	__type(key, __u32);
	__type(value, struct sec_stash);
} sec_stash SEC(".maps");

/* How many sec_stash entries were put and not taken: every open's and
 * mount's sys_exit reads this one word (an inlined array load) and skips
 * the hash lookup when it is 0, the common case. Never below the truth:
 * it goes up before the entry is put and down after it is taken (an entry
 * the LRU evicted keeps it above 0 for good: lookups again, still correct). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sec_pending SEC(".maps");

/* Lookup keys larger than the 512-byte stack, one per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sec_scratch);
} sec_scratch SEC(".maps");

/* Token bucket per cgroup (a noisy container cannot starve the ring). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, SEC_RL_MAX_ENTRIES);
	__type(key, __u64);
	__type(value, struct kg_ratelimit_state);
} sec_rl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SEC_CTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sec_counters SEC(".maps");

/* Matches per [gen][rule]; userspace folds a generation into per-name
 * totals before reusing its slots. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * SEC_MAX_RULES);
	__type(key, __u32);
	__type(value, __u64);
} sec_hits SEC(".maps");

#endif
