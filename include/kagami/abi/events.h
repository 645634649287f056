/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * events ABI: what every event-producing BPF program writes into its ring
 * buffer and drop counters, read back by the agent's event loop
 * (src/agent/event_loop.cc) and each module's decoder. Plain C, compiled by
 * both sides:
 *   - BPF:  #include "vmlinux.h" first, then this header;
 *   - C++:  #include <linux/types.h> first, then this header.
 *
 * Rules (docs/abi.md, section "events"; docs/events.md):
 *   - every record in a module's BPF_MAP_TYPE_RINGBUF starts with
 *     struct kg_event_hdr; len is the whole record (header included), so a
 *     decoder can refuse a short or foreign record before reading fields;
 *   - kind is module-defined (each module numbers its own kinds from 1);
 *   - every drop is counted: a module's drops map is a
 *     BPF_MAP_TYPE_PERCPU_ARRAY of KG_DROP__MAX __u64 values indexed by
 *     enum kg_drop_cause; the agent sums the CPUs;
 *   - enum kg_drop_cause is append-only, new values go before KG_DROP__MAX.
 */
#ifndef KAGAMI_ABI_EVENTS_H
#define KAGAMI_ABI_EVENTS_H

struct kg_event_hdr {
	__u16 kind;   /* module-defined, 0 is never used */
	__u16 flags;  /* module-defined bits (e.g. "a field was truncated") */
	__u32 len;    /* bytes of the whole record, this header included */
	__u64 mono_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
};

/* Why a BPF program lost an event before userspace saw it. */
enum kg_drop_cause {
	KG_DROP_RING_FULL = 0,  /* bpf_ringbuf_reserve() failed: the ring is full */
	KG_DROP_RATE_LIMIT = 1, /* the module's token bucket was empty */
	KG_DROP__MAX = 2,
};

/* The drops map: key __u32 cause, value __u64 per CPU. */
#define KG_DROPS_MAX_ENTRIES KG_DROP__MAX

/* Token-bucket state of bpf/lib/ratelimit.h (GCRA: one theoretical arrival
 * time per key and CPU). */
struct kg_ratelimit_state {
	__u64 tat_ns; /* theoretical arrival time of the next event */
};

#endif /* KAGAMI_ABI_EVENTS_H */
