/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Replay ABI: the batch layout that src/replay/driver.cc writes and every
 * module's replay program reads (Module::open_replay, core/module.h). Plain
 * C, no type-defining includes.
 */
#ifndef KAGAMI_ABI_REPLAY_H
#define KAGAMI_ABI_REPLAY_H

/*
 * Replay batches: what `kagami replay` (src/replay/driver.cc) hands every
 * packet module's replay program (obs_replay, ...) through
 * BPF_PROG_TEST_RUN on XDP, several frames per call, because a test run costs one syscall (~1.2 us on a VM with PTI)
 * whatever the frame. The data buffer is:
 *
 *   struct kg_replay_batch
 *   count x { struct kg_replay_rec, cap_len frame bytes, zero padding to 8 }
 *
 * A replay program (obs_replay is the model) runs every frame through the same per-frame code as obs_xdp
 * (direction ingress, the test-run device's ifindex: 1, lo), with the frame length on the wire and the
 * capture timestamp from its record. A record that runs past the buffer
 * ends the batch and counts as a bad batch in the module's counters; a buffer without the
 * magic is passed untouched, so the program is harmless if attached.
 */
#define KG_REPLAY_MAGIC 0x4b475242 /* "KGRB" */
#define KG_REPLAY_MAX_FRAMES 64    /* records per batch (bound of the BPF loop) */
#define KG_REPLAY_MAX_OFF 4095     /* record offsets are masked to this (one page) */

struct kg_replay_batch {
	__u32 magic;
	__u32 count;
};

struct kg_replay_rec {
	__u64 ts_ns;     /* capture timestamp */
	__u32 wire_len;  /* frame length on the wire (tshark's frame.len) */
	__u16 cap_len;   /* frame bytes that follow */
	__u16 pad;
};

#endif /* KAGAMI_ABI_REPLAY_H */
