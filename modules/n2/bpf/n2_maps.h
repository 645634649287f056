/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps of n2.bpf.c, one block per map; names and types from
 * modules/n2/abi.h. Counters are per-CPU (no atomics on the datapath).
 */
#ifndef KAGAMI_BPF_N2_MAPS_H
#define KAGAMI_BPF_N2_MAPS_H

#include <bpf/bpf_helpers.h>

#include "modules/n2/abi.h"

/* Global counters (enum n2_counter). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, N2_CTR__MAX);
	__type(key, __u32);
	__type(value, __u64);
} n2_ctr SEC(".maps");

/* NGAP messages not walked to the end, by enum ngap_error. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NGAP_E__MAX);
	__type(key, __u32);
	__type(value, __u64);
} n2_err SEC(".maps");

/* NGAP PDUs by (interface, procedure code, PDU type, direction): a hash,
 * as few of the 256 x 3 combinations ever occur (N2_PROC_MAX_ENTRIES). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, N2_PROC_MAX_ENTRIES);
	__type(key, struct n2_proc_key);
	__type(value, __u64);
} n2_proc SEC(".maps");

/* NGAP messages copied up for NAS decoding and per-UE records. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, N2_RING_BYTES);
} n2_events SEC(".maps");

/* Ring drops by cause (KG_DROP_*), read by the agent's event loop. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KG_DROP__MAX);
	__type(key, __u32);
	__type(value, __u64);
} n2_drops SEC(".maps");

/* One record under construction per CPU: 2 KiB does not fit the 512-byte
 * stack, and the NGAP walk reads the copy from here. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct n2_msg_event);
} n2_scratch SEC(".maps");

#endif /* KAGAMI_BPF_N2_MAPS_H */
