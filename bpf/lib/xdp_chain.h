/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdp_chain.h: make an XDP program chain-aware, so several programs can share
 * one interface (docs/program-manager.md, "XDP chain").
 *
 * Contract:
 *   - The program manager attaches one root program (bpf/platform/
 *     xdp_chain_root.bpf.c) per interface. It tail-calls the first occupied
 *     slot of the interface's prog_array `kagami_xdp_chain`.
 *   - A chain-aware program includes this header and returns
 *     kagami_xdp_chain_next(ctx) wherever it would return XDP_PASS. That
 *     tail-calls the next occupied slot after its own; when there is none, it
 *     returns XDP_PASS.
 *   - Before load the manager sets `kagami_xdp_chain_slot` (in its own
 *     section, so it can be set without knowing .rodata's layout) and makes
 *     `kagami_xdp_chain` the interface's shared prog_array (bpf_map__reuse_fd).
 *   - A program that is not chain-aware may sit in a slot too; it simply ends
 *     the chain (whatever it returns is the verdict).
 *
 * Why tail calls and not freplace (libxdp's dispatcher): freplace
 * (BPF_PROG_TYPE_EXT) needs fentry-style trampolines that some kernels
 * refuse (EPERM); tail calls work everywhere XDP does (L3AF, Katran).
 */
#ifndef KAGAMI_XDP_CHAIN_H
#define KAGAMI_XDP_CHAIN_H

#include <bpf/bpf_helpers.h>

#include "kagami/abi/xdp_chain.h" /* slot count, map and section names */

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, KAGAMI_XDP_CHAIN_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} kagami_xdp_chain SEC(".maps");

/* KAGAMI_XDP_CHAIN_NEXT_MAP: the manager's "next slot" table (abi/xdp_chain.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KAGAMI_XDP_CHAIN_SLOTS + 1);
	__type(key, __u32);
	__type(value, __u32);
} kagami_xdp_next SEC(".maps");

/* This program's slot, set by the manager before load. The root starts the
 * chain (-1: every slot after it); a member the manager never placed in a
 * chain (loaded on its own: replay, tests, benchmarks) keeps -2 and ends
 * at once with XDP_PASS instead of probing 32 empty slots. */
#ifdef KAGAMI_XDP_CHAIN_ROOT
const volatile __s32 kagami_xdp_chain_slot SEC(".rodata.kchain") = -1;
#else
const volatile __s32 kagami_xdp_chain_slot SEC(".rodata.kchain") = -2;
#endif

static __always_inline int kagami_xdp_chain_next(struct xdp_md *ctx)
{
	__u32 k, *next;
	__s32 i;

	if (kagami_xdp_chain_slot < -1)
		return XDP_PASS;
	/* The manager's table names the successor: one lookup and one tail
	 * call. A successor that has just left (the table lags the slot by one
	 * map update) falls through to the probe below, which is always right. */
	k = (__u32)(kagami_xdp_chain_slot + 1);
	next = bpf_map_lookup_elem(&kagami_xdp_next, &k);
	if (next && *next == KAGAMI_XDP_CHAIN_NONE)
		return XDP_PASS;
	if (next && *next > 0 && *next <= KAGAMI_XDP_CHAIN_SLOTS)
		bpf_tail_call(ctx, &kagami_xdp_chain, *next - 1);
	/* Bounded by the slot count (see above); a successful tail call does
	 * not return, a failed one (empty slot) falls through to the next. */
	for (i = kagami_xdp_chain_slot + 1; i < KAGAMI_XDP_CHAIN_SLOTS; i++) {
		if (i < 0)
			continue;
		bpf_tail_call(ctx, &kagami_xdp_chain, (__u32)i);
	}
	return XDP_PASS;
}

#endif /* KAGAMI_XDP_CHAIN_H */
