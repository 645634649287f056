/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * transport ABI: the only definition of what modules/transport/bpf/ (both variants) write into
 * their maps and modules/transport/ reads back. Plain C, compiled by both
 * sides:
 *   - BPF:  #include "vmlinux.h" first, then this header;
 *   - C++:  #include <linux/types.h> first, then this header.
 * It includes nothing that defines types itself.
 *
 * Rules (docs/abi.md, section "transport"):
 *   - every struct has explicit padding and no implicit holes; sizes and
 *     offsets are checked against the objects' BTF by
 *     modules/transport/tests/transport_kernel_test.cc (AbiMatchesBtf);
 *   - enums are append-only, new values go before the *_MAX sentinel;
 *   - map names (TRANSPORT_MAP_*) are part of the ABI: the module reads maps
 *     by name, and both hook variants (tp_btf, tracepoint) define the same
 *     maps with the same layout.
 */
#ifndef KAGAMI_ABI_TRANSPORT_H
#define KAGAMI_ABI_TRANSPORT_H

/* Direction, as seen by the socket: ingress = delivered to it. */
#define TRANSPORT_DIR_INGRESS 0
#define TRANSPORT_DIR_EGRESS 1
#define TRANSPORT_DIR_MAX 2

/* L4 protocol classes. */
#define TRANSPORT_L4_TCP 0
#define TRANSPORT_L4_UDP 1
#define TRANSPORT_L4_SCTP 2
#define TRANSPORT_L4_OTHER 3 /* ICMP, raw sockets, non-IP, unknown */
#define TRANSPORT_L4_MAX 4

/* TCP states as the kernel numbers them (include/net/tcp_states.h); the
 * kernel passes them to inet_sock_set_state unchanged. 14 covers every state
 * up to TCP_BOUND_INACTIVE (13); larger values are clamped to
 * TRANSPORT_TCP_STATE_MAX - 1 so a future state cannot index out of bounds. */
#define TRANSPORT_TCP_STATE_MAX 16

/* Log2 RTT histogram: bucket i counts smoothed RTTs in [2^i, 2^(i+1)) us;
 * bucket 0 also holds 0 us, the last bucket everything >= 2^(N-1) us
 * (2^26 us = 67 s, beyond TCP's 120 s maximum RTO only by backoff). */
#define TRANSPORT_RTT_BUCKETS 27

/* Map sizes. All per-key maps are plain hash maps (not LRU): when one is
 * full, a new key's counts go to an "other" slot and
 * TRANSPORT_MAP_OVERFLOW counts the event, so
 * nothing is lost silently and nothing live is evicted. */
#define TRANSPORT_POD_MAX_ENTRIES 8192   /* cgroups with traffic or TCP events */
#define TRANSPORT_STATE_MAX_ENTRIES 16384 /* (cgroup, old state, new state) */
#define TRANSPORT_DROP_MAX_ENTRIES 8192  /* (cgroup, netns, ifindex, reason, l4) */

/* Index into TRANSPORT_MAP_OVERFLOW. */
enum transport_fold {
	TRANSPORT_FOLD_TRAFFIC = 0,
	TRANSPORT_FOLD_TCP,
	TRANSPORT_FOLD_STATE,
	TRANSPORT_FOLD_DROP,
	TRANSPORT_FOLD_MAX,
};

/* Per-cgroup packets/bytes (cgroup_skb ingress/egress).
 * Map "pod_traffic": hash, key struct transport_cg_key. Updated with atomic
 * adds (not per-CPU: 8192 entries x 128 B x N CPUs would cost ~128 MB on a
 * 128-CPU node). */
struct transport_cg_key {
	__u64 cgroup_id; /* cgroup v2 id of the socket; 0 = unknown */
};

struct transport_traffic {
	__u64 packets[TRANSPORT_DIR_MAX][TRANSPORT_L4_MAX];
	__u64 bytes[TRANSPORT_DIR_MAX][TRANSPORT_L4_MAX]; /* IP packet length */
};

/* Per-cgroup TCP events. Map "pod_tcp": hash, key struct transport_cg_key. */
struct transport_tcp {
	__u64 retransmits;     /* segments retransmitted, as tcpi_total_retrans counts */
	__u64 resets_sent;     /* tcp:tcp_send_reset with a socket */
	__u64 resets_received; /* tcp:tcp_receive_reset */
	__u64 rtt_samples;     /* tcp:tcp_probe events with srtt > 0 */
	__u64 rtt_sum_us;      /* sum of those srtt values, us */
	__u64 rtt_hist[TRANSPORT_RTT_BUCKETS];
};

/* Map "tcp_state": hash, key struct transport_state_key, value __u64. */
struct transport_state_key {
	__u64 cgroup_id;
	__u8 old_state;
	__u8 new_state;
	__u8 pad[6];
};

/* Map "drops": hash, key struct transport_drop_key, value __u64 packets.
 * Only real drops: SKB_DROP_REASON_NOT_DROPPED_YET (0) and
 * SKB_CONSUMED (newer kernels; consume_skb is traced separately) are skipped. */
struct transport_drop_key {
	__u64 cgroup_id; /* receiving socket (rx_sk, newer kernels) else skb->sk; 0 = none */
	__u32 netns_ino; /* network namespace of skb->dev; 0 = no device */
	__u32 ifindex;   /* skb->dev->ifindex in that namespace; 0 = no device */
	__u32 reason;    /* enum skb_drop_reason (incl. subsystem bits) */
	__u8 l4;         /* TRANSPORT_L4_* */
	__u8 pad[3];
};

/* Maps "other_traffic" and "other_tcp": array[1] of struct transport_traffic
 * and struct transport_tcp: where the counts of cgroups that found
 * pod_traffic or pod_tcp full go instead.
 * Map "overflow": array[TRANSPORT_FOLD_MAX] of __u64: how many events found
 * their map full and were folded. For tcp_state and drops the folded events
 * are only counted there (their keys carry the information). */

/* Map "hook_runs": percpu array[TRANSPORT_HOOK_MAX] of __u64: how often each
 * hook ran, so `kagami status` shows that every hook in use really fires. */
enum transport_hook {
	TRANSPORT_HOOK_CG_INGRESS = 0,
	TRANSPORT_HOOK_CG_EGRESS,
	TRANSPORT_HOOK_KFREE_SKB,
	TRANSPORT_HOOK_RETRANSMIT,
	TRANSPORT_HOOK_SEND_RESET,
	TRANSPORT_HOOK_RECV_RESET,
	TRANSPORT_HOOK_SET_STATE,
	TRANSPORT_HOOK_TCP_PROBE,
	TRANSPORT_HOOK_MAX,
};

#define TRANSPORT_MAP_POD_TRAFFIC "trn_pod_traffic"
#define TRANSPORT_MAP_POD_TCP "trn_pod_tcp"
#define TRANSPORT_MAP_TCP_STATE "trn_tcp_state"
#define TRANSPORT_MAP_DROPS "trn_drops"
#define TRANSPORT_MAP_OTHER_TRAFFIC "trn_oth_traffic"
#define TRANSPORT_MAP_OTHER_TCP "trn_oth_tcp"
#define TRANSPORT_MAP_OVERFLOW "trn_overflow"
#define TRANSPORT_MAP_HOOK_RUNS "trn_hook_runs"

#endif /* KAGAMI_ABI_TRANSPORT_H */
