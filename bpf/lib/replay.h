/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * replay.h: the walk of a replay batch (include/kagami/abi/replay.h), shared
 * by the modules' replay programs (n2_replay, sbi_replay). obs_replay keeps
 * its own copy of these checks: with this helper inlined (into a struct
 * copy or straight into its arguments) the verifier refused obs_replay
 * (EACCES), whose frame already sits at the 512-byte stack limit;
 * folding it needs obs_replay's stack shrunk first.
 *
 * A replay program is an XDP program that BPF_PROG_TEST_RUN hands a batch:
 *   struct kg_replay_batch, then count x { struct kg_replay_rec, cap_len
 *   frame bytes, zero padding to 8 }.
 * Use:
 *
 *	__u32 off = KG_REPLAY_FIRST, count, i;
 *
 *	if (kg_replay_batch(ctx, &count))
 *		return XDP_PASS;             // not a batch: pass untouched
 *	// KG_REPLAY_MAX_FRAMES: the batch format's own bound.
 *	for (i = 0; i < KG_REPLAY_MAX_FRAMES; i++) {
 *		struct kg_replay_frame f;
 *
 *		if (i >= count)
 *			return XDP_PASS;
 *		if (kg_replay_next(ctx, &off, &f))
 *			break;                       // a record past the buffer
 *		... the module's per-frame code on f.base, f.cap ...
 *	}
 *	if (i >= count)
 *		return XDP_PASS;
 *	... count a bad batch (a record past the buffer, or more records than
 *	    KG_REPLAY_MAX_FRAMES) ...
 *
 * The loop stays in the program (its body is the module's), bounded by
 * KG_REPLAY_MAX_FRAMES; the helpers hold the bounds checks every program
 * had a copy of. Both are inlined: the per-frame cost is what the copies
 * cost (bench/packet_cost_bench, docs/performance.md).
 *
 * Contract: ctx->data and ctx->data_end are re-read on every call (the
 * verifier forgets packet bounds across a global function call in the
 * body); a record offset is masked to KG_REPLAY_MAX_OFF before use.
 */
#ifndef KAGAMI_BPF_LIB_REPLAY_H
#define KAGAMI_BPF_LIB_REPLAY_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "kagami/abi/replay.h"

/* Offset of the first record. */
#define KG_REPLAY_FIRST ((__u32)sizeof(struct kg_replay_batch))

/* What a program needs of one record. */
struct kg_replay_frame {
	__u64 ts_ns;     /* capture timestamp */
	__u32 base;      /* the frame's offset in the buffer */
	__u32 cap;       /* frame bytes there (> 0) */
	__u32 wire_len;  /* on the wire; cap when the record says 0 */
	__u32 pad;
};

/* 0 and the record count when the buffer is a batch (its magic), -1 when
 * not: the program then passes the packet untouched. */
static __always_inline int kg_replay_batch(struct xdp_md *ctx, __u32 *count)
{
	struct kg_replay_batch *b = (void *)(long)ctx->data;

	if ((void *)(b + 1) > (void *)(long)ctx->data_end || b->magic != KG_REPLAY_MAGIC)
		return -1;
	*count = b->count;
	return 0;
}

/* The record at *off: its frame's offset, length, length on the wire
 * (cap when the record says 0) and capture time, written where the caller
 * keeps them (obs_replay: straight into its per-frame arguments, since its
 * stack has no room for a copy), and *off moved past the record's padded
 * frame. -1 when the record or its frame runs past the buffer, or its
 * frame is empty: the batch is bad from here. */
static __always_inline int kg_replay_next_to(struct xdp_md *ctx, __u32 *off, __u32 *base, __u32 *cap,
					     __u32 *wire_len, __u64 *ts_ns)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct kg_replay_rec *r;
	__u32 o = *off, c, b;

	if (o > KG_REPLAY_MAX_OFF)
		return -1;
	r = data + (o & KG_REPLAY_MAX_OFF);
	if ((void *)(r + 1) > data_end)
		return -1;
	c = r->cap_len;
	b = o + sizeof(*r);
	if (!c || b + c > (__u32)(data_end - data))
		return -1;
	*base = b;
	*cap = c;
	*wire_len = r->wire_len ? r->wire_len : c;
	*ts_ns = r->ts_ns;
	*off = b + ((c + 7) & ~7u);
	return 0;
}

/* The same into a struct kg_replay_frame. */
static __always_inline int kg_replay_next(struct xdp_md *ctx, __u32 *off, struct kg_replay_frame *f)
{
	return kg_replay_next_to(ctx, off, &f->base, &f->cap, &f->wire_len, &f->ts_ns);
}

#endif /* KAGAMI_BPF_LIB_REPLAY_H */
