/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * XDP chain ABI: what the program manager (src/core/pm_chain.cc) and every
 * chain-aware program (bpf/lib/xdp_chain.h) agree on (docs/program-manager.md,
 * "XDP chain"). Plain C, no includes.
 */
#ifndef KAGAMI_ABI_XDP_CHAIN_H
#define KAGAMI_ABI_XDP_CHAIN_H

/* 32 slots: every probe of an empty slot costs one unit of the kernel's
 * tail-call budget (MAX_TAIL_CALL_CNT = 33, counted before the slot lookup),
 * and the chain only ever probes each slot once, moving forward. 32 probes
 * plus nothing else stay under 33 whatever the occupancy. */
#define KAGAMI_XDP_CHAIN_SLOTS 32

/* The per-interface prog_array every member reuses (bpf_map__reuse_fd), and
 * the section of the member's own slot number, set before load. Platform
 * names: the "kagami_" prefix is reserved for them in every module's object. */
#define KAGAMI_XDP_CHAIN_MAP "kagami_xdp_chain"
#define KAGAMI_XDP_CHAIN_SLOT_SECTION ".rodata.kchain"

/* "Which slot runs next", kept by the manager after every change of the
 * chain so that a member tail-calls its successor directly instead of
 * probing every slot after its own: entry i + 1 describes the slot after
 * slot i (entry 0: after the root). Values: 0 = not known (a chain built
 * before the table, or a member loaded on its own: probe every slot),
 * s + 1 = slot s, KAGAMI_XDP_CHAIN_NONE = no one after (pass). */
#define KAGAMI_XDP_CHAIN_NEXT_MAP "kagami_xdp_next"
#define KAGAMI_XDP_CHAIN_NONE (KAGAMI_XDP_CHAIN_SLOTS + 1)

#endif /* KAGAMI_ABI_XDP_CHAIN_H */
