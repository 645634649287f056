/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ratelimit.h: a token bucket for event programs (docs/events.md).
 *
 * Contract:
 *   - kg_ratelimit_allow(state, key, rate, burst, drops) returns 1 when an
 *     event may be sent and 0 after counting KG_DROP_RATE_LIMIT in `drops`;
 *   - `state` is a per-CPU map of struct kg_ratelimit_state (the module
 *     picks the key: one __u32 0 in a PERCPU_ARRAY for a global bucket, a
 *     cgroup id in an LRU_PERCPU_HASH for one bucket per workload). Buckets
 *     are per CPU, so no locking is needed, and the limit a module states is
 *     per CPU: over a whole node at most rate x CPUs events per second pass.
 *     A key the LRU evicted starts again with a full bucket;
 *   - rate is events per second (0 = unlimited: always 1, nothing counted),
 *     burst the bucket depth in events (0 is taken as 1). The module reads
 *     both from its config map or const volatile globals;
 *   - GCRA form of the bucket: one u64 per key (theoretical arrival time);
 *     an event is allowed when it would not push that time more than
 *     burst x interval ahead of now. No loops.
 */
#ifndef KAGAMI_BPF_LIB_RATELIMIT_H
#define KAGAMI_BPF_LIB_RATELIMIT_H

#include <bpf/bpf_helpers.h>

#include "kagami/abi/events.h"
#include "lib/events.h"

#define KG_NSEC_PER_SEC 1000000000ULL

static __always_inline int kg_ratelimit_allow(void *state, void *key, __u64 rate, __u64 burst, void *drops)
{
	struct kg_ratelimit_state *s, init = {};
	__u64 now, interval, tat;

	if (rate == 0)
		return 1;
	if (rate > KG_NSEC_PER_SEC)
		rate = KG_NSEC_PER_SEC;
	if (burst == 0)
		burst = 1;
	interval = KG_NSEC_PER_SEC / rate;
	now = bpf_ktime_get_ns();

	s = bpf_map_lookup_elem(state, key);
	if (!s) {
		/* First event of this key on this CPU: a full bucket. */
		init.tat_ns = now + interval;
		bpf_map_update_elem(state, key, &init, BPF_ANY);
		return 1;
	}
	tat = s->tat_ns > now ? s->tat_ns : now;
	if (tat + interval - now > burst * interval) {
		kg_drop(drops, KG_DROP_RATE_LIMIT);
		return 0;
	}
	s->tat_ns = tat + interval;
	return 1;
}

#endif /* KAGAMI_BPF_LIB_RATELIMIT_H */
