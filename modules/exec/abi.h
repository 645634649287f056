/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * exec module ABI: what modules/exec/bpf/exec.bpf.c writes and
 * modules/exec/exec.cc reads. Plain C, compiled by both sides:
 *   - BPF:  #include "vmlinux.h" first, then this header;
 *   - C++:  #include <linux/types.h> first, then this header.
 *
 * Rules (docs/abi.md): explicit padding, no implicit holes (sizes and
 * offsets are checked against exec.bpf.o's BTF by
 * modules/exec/tests/exec_abi_test.cc); enums append-only; the map names
 * below are part of the ABI (the module reads maps by name).
 */
#ifndef KAGAMI_MODULES_EXEC_ABI_H
#define KAGAMI_MODULES_EXEC_ABI_H

#include "kagami/abi/events.h"

/* Map names. */
#define EXEC_MAP_EVENTS "exec_events" /* BPF_MAP_TYPE_RINGBUF */
#define EXEC_MAP_DROPS "exec_drops"   /* PERCPU_ARRAY[KG_DROP__MAX] of __u64 */
#define EXEC_MAP_CONFIG "exec_config" /* ARRAY[1] of struct exec_config, written by configure() */
#define EXEC_MAP_SCOPE "exec_scope"   /* CGROUP_ARRAY[1]: the watched subtree when scope is on */
#define EXEC_MAP_RL "exec_rl"         /* LRU_PERCPU_HASH cgroup id -> struct kg_ratelimit_state */
#define EXEC_MAP_COUNTERS "exec_counters" /* PERCPU_ARRAY[EXEC_CTR_MAX] of __u64 */

/* Default ring size in the object (bytes, a power of two multiple of the
 * page size); the module patches the map's max_entries to ring_kb. */
#define EXEC_RING_BYTES_DEFAULT (256 * 1024)
#define EXEC_RL_MAX_ENTRIES 4096 /* cgroups with a bucket of their own */

#define EXEC_KIND_EXEC 1

/* hdr.flags */
#define EXEC_F_FILENAME_TRUNCATED 0x1

#define EXEC_COMM_LEN 16
#define EXEC_FILENAME_LEN 256

struct exec_event {
	struct kg_event_hdr hdr;
	__u32 pid;          /* thread id after exec (the tracepoint's pid) */
	__u32 tgid;         /* process id */
	__u32 ppid;         /* real parent's tgid */
	__u32 uid;
	__u32 gid;
	__u32 filename_len; /* length the kernel reported, NUL included */
	__u64 cgroup_id;    /* cgroup v2 id of the task */
	char comm[EXEC_COMM_LEN];
	char filename[EXEC_FILENAME_LEN]; /* NUL-terminated, truncated if flagged */
};

struct exec_config {
	__u64 rate;   /* events per second per cgroup and CPU, 0 = unlimited */
	__u64 burst;  /* bucket depth */
	__u32 scope;  /* 1: only tasks under the cgroup in exec_scope */
	__u32 pad;
};

/* exec_counters */
enum exec_counter {
	EXEC_CTR_SEEN = 0,         /* execs in scope (sent + every drop) */
	EXEC_CTR_SENT = 1,         /* records submitted to the ring */
	EXEC_CTR_OUT_OF_SCOPE = 2, /* execs outside the configured cgroup */
	EXEC_CTR_MAX = 3,
};

#endif /* KAGAMI_MODULES_EXEC_ABI_H */
