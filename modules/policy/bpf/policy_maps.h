/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The policy datapath's maps (modules/policy/abi.h has the model). */
#ifndef KAGAMI_POLICY_MAPS_H
#define KAGAMI_POLICY_MAPS_H

/* One entry: the slot packets read. An array so the slot flip is one
 * aligned 4-byte store by userspace. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pol_cfg);
} pol_cfg SEC(".maps");

/* Address prefix -> identity, exact match per prefix length (abi.h). A
 * hash with NO_PREALLOC: the size is a ceiling, not a cost. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, POL_IDH_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pol_idh_key);
	__type(value, struct pol_ident);
} pol_idh SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct pol_lens);
} pol_lens SEC(".maps");

/* Local identity -> isolation flags; exact keys, so a hash. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, POL_LOCAL_MAX_ENTRIES);
	__type(key, struct pol_local_key);
	__type(value, struct pol_local_val);
} pol_local SEC(".maps");

/* Allow and deny rules: the port is a prefix (ranges), the rest exact. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, POL_RULES_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pol_rule_key);
	__type(value, struct pol_rule_val);
} pol_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, POL_RULES_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pol_rule_key);
	__type(value, struct pol_rule_val);
} pol_deny SEC(".maps");

/* Allowed flows; LRU so a flood of new flows evicts the oldest rather than
 * failing inserts (a forgotten flow's reply is judged as a new flow). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, POL_CT_MAX_ENTRIES);
	__type(key, struct pol_ct_key);
	__type(value, struct pol_ct_val);
} pol_ct SEC(".maps");

/* Verdict counters by (rule, reason, verdict, direction); per CPU, no
 * atomics. Userspace names the rules. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, POL_STATS_MAX_ENTRIES);
	__type(key, struct pol_stat_key);
	__type(value, struct pol_stat_val);
} pol_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} pol_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KG_DROPS_MAX_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} pol_drops SEC(".maps");

/* One global token bucket per CPU for flow events. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kg_ratelimit_state);
} pol_rl SEC(".maps");

/* The node-edge deny-list (XDP): source prefix -> rule. Keys carry the
 * slot like every policy table, so it switches with the rest. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, POL_EDGE_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pol_ip4_key);
	__type(value, struct pol_rule_val);
} pol_edge4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, POL_EDGE_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pol_ip6_key);
	__type(value, struct pol_rule_val);
} pol_edge6 SEC(".maps");

/* GTP-U rules, both slots (abi.h): an array walked in order, so an entry
 * is read without a hash or a trie walk. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * POL_GTP_MAX_RULES);
	__type(key, __u32);
	__type(value, struct pol_gtp_rule);
} pol_gtp SEC(".maps");

/* Modify actions, both slots (abi.h): indexed by the rule's mod - 1. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * POL_MOD_MAX);
	__type(key, __u32);
	__type(value, struct pol_mod);
} pol_mod SEC(".maps");

/* Modified packets by (rule, action); per CPU, no atomics. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4 * POL_MOD_MAX * 2);
	__type(key, struct pol_mod_stat_key);
	__type(value, __u64);
} pol_mod_stats SEC(".maps");

#endif
