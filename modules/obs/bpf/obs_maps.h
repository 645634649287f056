/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps of obs.bpf.c, one block per map. Key/value types and names come from
 * include/modules/obs/abi.h (the module reads them by those names). Hot
 * counters are per-CPU (no atomics, no cache-line bouncing between CPUs);
 * state keyed by something the network chooses (TEIDs, PFCP peers, TSNs) is
 * an LRU map with a fixed size, so a flood of new keys evicts old ones
 * instead of failing, and the *_NEW counters let userspace count evictions.
 */
#ifndef KAGAMI_BPF_OBS_MAPS_H
#define KAGAMI_BPF_OBS_MAPS_H

#include <bpf/bpf_helpers.h>

#include "modules/obs/abi.h"

/* Global counters, one struct per direction. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OBS_DIR_MAX);
	__type(key, __u32);
	__type(value, struct obs_counters);
} obs_counters SEC(".maps");

/* Malformed packets by reason, one struct per direction. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OBS_DIR_MAX);
	__type(key, __u32);
	__type(value, struct obs_malformed_counts);
} obs_malformed SEC(".maps");

/* ifindex -> interface slot, written by the obs module (see OBS_IF_SLOTS). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, OBS_IFSLOT_TABLE);
	__type(key, __u32);
	__type(value, struct obs_ifslot);
} obs_ifslot SEC(".maps");

/* Transport per (interface slot, direction, L4 class). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OBS_IFACE_SLOTS);
	__type(key, __u32);
	__type(value, struct obs_pkt_bytes);
} obs_iface SEC(".maps");

/* GTP-U per (TEID, message type, direction). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, OBS_TEID_MAX_ENTRIES);
	__type(key, struct obs_teid_key);
	__type(value, struct obs_teid_value);
} obs_teid SEC(".maps");

/* GTP-U messages by (interface slot, type); exact even when TEIDs are
 * evicted. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OBS_MSG_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} obs_gtpu_msg SEC(".maps");

/* GTP-U extension headers by type, every header of every chain. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} obs_gtpu_ext SEC(".maps");

/* PDU Session Container PDU type (4 bits). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} obs_gtpu_pdu SEC(".maps");

/* Per interface slot, QFI, direction and PDU type: see OBS_QFI_ENTRIES. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OBS_QFI_ENTRIES);
	__type(key, __u32);
	__type(value, struct obs_pkt_bytes);
} obs_qfi SEC(".maps");

/* GTP-U datagrams counted on their first IPv4 fragment, waiting for the
 * last one (whose frame length tshark counts). Shared across CPUs: the
 * fragments of one datagram may be hashed to different queues. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, OBS_FRAG_MAX_ENTRIES);
	__type(key, struct obs_frag_key);
	__type(value, struct obs_frag_value);
} obs_frag SEC(".maps");

/* PFCP messages by (interface slot, type). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OBS_MSG_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} obs_pfcp_msg SEC(".maps");

/* PFCP cause values by message type and interface slot. 256 types x 256
 * causes would be 64 Ki slots per CPU; the pairs that occur are a few
 * dozen, so a hash of 1024. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, OBS_PFCP_CAUSE_MAX_ENTRIES);
	__type(key, struct obs_pfcp_cause_key);
	__type(value, __u64);
} obs_pfcp_cause SEC(".maps");

/* Outstanding PFCP requests. Shared: request and response may be seen on
 * different CPUs (and directions). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, OBS_PFCP_PENDING_MAX_ENTRIES);
	__type(key, struct obs_pfcp_pending_key);
	__type(value, struct obs_pfcp_pending_value);
} obs_pfcp_pend SEC(".maps");

/* Response latency histogram per (response message type, interface slot). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, OBS_PFCP_LAT_MAX_ENTRIES);
	__type(key, struct obs_pfcp_lat_key);
	__type(value, struct obs_latency_hist);
} obs_pfcp_lat SEC(".maps");

/* Counters kept per interface slot (enum obs_slot_counter). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OBS_IF_SLOTS);
	__type(key, __u32);
	__type(value, struct obs_slot_counters);
} obs_slot_ctr SEC(".maps");

/* SCTP chunks by (interface slot, type). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OBS_IF_SLOTS * 256);
	__type(key, __u32);
	__type(value, __u64);
} obs_sctp_chunk SEC(".maps");

/* SCTP DATA chunks by (interface slot, PPID) (see OBS_SCTP_PPID_SLOTS). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OBS_SCTP_PPID_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} obs_sctp_ppid SEC(".maps");

/* Recently seen DATA TSNs per association direction. A TSN seen again is a
 * retransmission; 16 Ki entries hold several seconds of N2 signalling. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, OBS_SCTP_TSN_MAX_ENTRIES);
	__type(key, struct obs_sctp_tsn_key);
	__type(value, __u8);
} obs_sctp_tsn SEC(".maps");

#endif /* KAGAMI_BPF_OBS_MAPS_H */
