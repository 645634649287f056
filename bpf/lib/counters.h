/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * counters.h: small counting helpers for packet programs.
 *
 * Contract:
 *   - No loops: log2 is a fixed sequence of compares, so it costs the same
 *     for every value and needs no verifier bound.
 *   - Per-CPU values are updated with plain adds: TC and XDP programs run
 *     with migration disabled, so no other writer touches this CPU's slot.
 *   - Shared (non per-CPU) values use __sync_fetch_and_add.
 */
#ifndef KAGAMI_BPF_LIB_COUNTERS_H
#define KAGAMI_BPF_LIB_COUNTERS_H

#include <bpf/bpf_helpers.h>

/* floor(log2(v)), 0 for v == 0. */
static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

/* Adds to a u64 slot of a per-CPU array; out-of-range keys are ignored. */
static __always_inline void percpu_array_add(void *map, __u32 key, __u64 v)
{
	__u64 *p = bpf_map_lookup_elem(map, &key);

	if (p)
		*p += v;
}

#endif /* KAGAMI_BPF_LIB_COUNTERS_H */
