/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * events.h: writing event records into a module's ring buffer
 * (include/kagami/abi/events.h, docs/events.md).
 *
 * Contract:
 *   - kg_event_reserve() returns a record of `size` bytes whose
 *     struct kg_event_hdr is filled (kind, flags 0, len, mono_ns), or NULL
 *     after counting KG_DROP_RING_FULL in `drops`: a caller that gets NULL
 *     returns without further accounting;
 *   - the caller fills the rest and calls kg_event_submit() or, when it
 *     decides not to send after all, kg_event_discard() (not a drop);
 *   - `size` must be a compile-time constant (bpf_ringbuf_reserve() needs a
 *     known size): pass sizeof(struct my_event);
 *   - `drops` is a BPF_MAP_TYPE_PERCPU_ARRAY of KG_DROP__MAX __u64; the
 *     increments are plain adds on this CPU's slot (tracing and packet
 *     programs run with migration disabled and do not nest on one CPU for
 *     one hook).
 *   - No loops.
 */
#ifndef KAGAMI_BPF_LIB_EVENTS_H
#define KAGAMI_BPF_LIB_EVENTS_H

#include <bpf/bpf_helpers.h>

#include "kagami/abi/events.h"

static __always_inline void kg_drop(void *drops, __u32 cause)
{
	__u64 *p = bpf_map_lookup_elem(drops, &cause);

	if (p)
		*p += 1;
}

static __always_inline void *kg_event_reserve(void *ring, void *drops, __u32 size, __u16 kind)
{
	struct kg_event_hdr *h = bpf_ringbuf_reserve(ring, size, 0);

	if (!h) {
		kg_drop(drops, KG_DROP_RING_FULL);
		return NULL;
	}
	h->kind = kind;
	h->flags = 0;
	h->len = size;
	h->mono_ns = bpf_ktime_get_ns();
	return h;
}

static __always_inline void kg_event_submit(void *rec)
{
	bpf_ringbuf_submit(rec, 0);
}

static __always_inline void kg_event_discard(void *rec)
{
	bpf_ringbuf_discard(rec, 0);
}

#endif /* KAGAMI_BPF_LIB_EVENTS_H */
