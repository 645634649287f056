/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps of the transport programs, one block per map. Key and value types
 * come from include/modules/transport/abi.h; both hook variants include this
 * file, so they define the same maps and the module reads either by name.
 *
 * The per-key maps are plain (preallocated) hash maps rather than LRU: an LRU
 * map evicts a live pod's counters without telling anyone, which turns a
 * monotonic counter into one that silently restarts. A full hash map instead
 * refuses the insert (-E2BIG), the event is folded into other_* and counted
 * in "trn_overflow".
 */
#ifndef KAGAMI_BPF_TRANSPORT_MAPS_H
#define KAGAMI_BPF_TRANSPORT_MAPS_H

#include "modules/transport/abi.h"

/* Packets/bytes per socket cgroup, direction and L4 class (cgroup_skb). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TRANSPORT_POD_MAX_ENTRIES);
	__type(key, struct transport_cg_key);
	__type(value, struct transport_traffic);
} trn_pod_traffic SEC(".maps");

/* TCP retransmits, resets and RTT histogram per socket cgroup. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TRANSPORT_POD_MAX_ENTRIES);
	__type(key, struct transport_cg_key);
	__type(value, struct transport_tcp);
} trn_pod_tcp SEC(".maps");

/* TCP state transitions per socket cgroup: (cgroup, old, new) -> count. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TRANSPORT_STATE_MAX_ENTRIES);
	__type(key, struct transport_state_key);
	__type(value, __u64);
} trn_tcp_state SEC(".maps");

/* Dropped skbs by (cgroup, netns, ifindex, reason, l4) -> count. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TRANSPORT_DROP_MAX_ENTRIES);
	__type(key, struct transport_drop_key);
	__type(value, __u64);
} trn_drops SEC(".maps");

/* Where the counts of cgroups that found trn_pod_traffic / trn_pod_tcp full go. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct transport_traffic);
} trn_oth_traffic SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct transport_tcp);
} trn_oth_tcp SEC(".maps");

/* How many events were folded into "other", per map. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TRANSPORT_FOLD_MAX);
	__type(key, __u32);
	__type(value, __u64);
} trn_overflow SEC(".maps");

/* Runs per hook (per CPU: bumped on every packet, must not bounce a line). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TRANSPORT_HOOK_MAX);
	__type(key, __u32);
	__type(value, __u64);
} trn_hook_runs SEC(".maps");

#endif /* KAGAMI_BPF_TRANSPORT_MAPS_H */
