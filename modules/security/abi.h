/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * security module ABI: what modules/security/bpf/security.bpf.c reads
 * (the compiled policy) and writes (events, counters), and what
 * modules/security/ (C++) writes and reads. Plain C, compiled by both sides:
 *   - BPF:  #include "vmlinux.h" first, then this header;
 *   - C++:  #include <linux/types.h> first, then this header.
 *
 * Rules (docs/abi.md): explicit padding, no implicit holes (checked against
 * the object's BTF by the generated security_abi_layout_test), enums
 * append-only, map names part of the ABI.
 *
 * The policy lives in the kernel as two generations (0 and 1) of every
 * policy map; sec_config.gen says which one is in force. A program reads
 * gen once and evaluates the whole event against that generation, so an
 * event is matched by exactly one policy: the old or the new one, never a
 * mix, never none (docs/security-policy.md, "Atomic replacement").
 */
#ifndef KAGAMI_MODULES_SECURITY_ABI_H
#define KAGAMI_MODULES_SECURITY_ABI_H

#include "kagami/abi/events.h"

/* Map names (kernel map names keep 15 characters: prefix "sec_"). */
#define SEC_MAP_EVENTS "sec_events"     /* RINGBUF */
#define SEC_MAP_DROPS "sec_drops"       /* PERCPU_ARRAY[KG_DROP__MAX] of __u64 */
#define SEC_MAP_CONFIG "sec_config"     /* ARRAY[1] struct sec_config */
#define SEC_MAP_GENS "sec_gens"         /* ARRAY[2] struct sec_gen */
#define SEC_MAP_KINDS "sec_kinds"       /* ARRAY[2 * 2 * SEC_KIND_MAX] __u64 rule masks */
#define SEC_MAP_RULES "sec_rules"       /* ARRAY[2 * SEC_MAX_RULES] struct sec_rule */
#define SEC_MAP_PREFIX "sec_prefix"     /* LPM_TRIE struct sec_prefix_key -> __u64 mask (prefixes and exact paths) */
#define SEC_MAP_BIN "sec_bin"           /* HASH struct sec_bin_key -> struct sec_sel_val */
#define SEC_MAP_CGROUP "sec_cgroup"     /* HASH struct sec_cg_key -> struct sec_sel_val */
#define SEC_MAP_STASH "sec_stash"       /* HASH tid -> struct sec_stash (enter -> exit) */
#define SEC_MAP_SCRATCH "sec_scratch"   /* PERCPU_ARRAY[1] struct sec_scratch */
#define SEC_MAP_PENDING "sec_pending"   /* ARRAY[1] __u64: sec_stash entries put and not taken yet */
#define SEC_MAP_RL "sec_rl"             /* LRU_PERCPU_HASH cgroup id -> kg_ratelimit_state */
#define SEC_MAP_COUNTERS "sec_counters" /* PERCPU_ARRAY[SEC_CTR_MAX] __u64 */
#define SEC_MAP_HITS "sec_hits"         /* PERCPU_ARRAY[2 * SEC_MAX_RULES] __u64 matches */

#define SEC_RING_BYTES_DEFAULT (1024 * 1024)
#define SEC_RL_MAX_ENTRIES 4096
#define SEC_MAX_RULES 64       /* one bit each in a __u64 mask */
#define SEC_PATH_LEN 256       /* bytes of a path matched and reported */
#define SEC_ARGV_LEN 256       /* bytes of exec arguments reported */
#define SEC_COMM_LEN 16
#define SEC_PREFIX_MAX_ENTRIES 2048 /* prefixes and exact paths of both generations */
#define SEC_BIN_MAX_ENTRIES 1024
#define SEC_CGROUP_MAX_ENTRIES 16384
#define SEC_STASH_MAX_ENTRIES 16384

/* Event kinds (hdr.kind; also the index of a rule's kind). Append-only. */
enum sec_kind {
	SEC_KIND_EXEC = 1,
	SEC_KIND_FORK = 2,
	SEC_KIND_EXIT = 3,
	SEC_KIND_OPEN = 4,
	SEC_KIND_CONNECT = 5,
	SEC_KIND_ACCEPT = 6,
	SEC_KIND_BIND = 7,
	SEC_KIND_LISTEN = 8,
	SEC_KIND_SOCKET = 9,
	SEC_KIND_SETUID = 10,
	SEC_KIND_SETGID = 11,
	SEC_KIND_SETRESUID = 12,
	SEC_KIND_CAPSET = 13,
	SEC_KIND_PTRACE = 14,
	SEC_KIND_MOUNT = 15,
	SEC_KIND_UMOUNT = 16,
	SEC_KIND_SETNS = 17,
	SEC_KIND_UNSHARE = 18,
	SEC_KIND_INIT_MODULE = 19,
	SEC_KIND_FINIT_MODULE = 20,
	SEC_KIND_BPF = 21,
	SEC_KIND_MAX = 22,
};

/* Which program side evaluates a rule: the tracepoints (alert, kill) or
 * the cgroup hooks (deny for connect, bind, socket). */
enum sec_side {
	SEC_SIDE_TP = 0,
	SEC_SIDE_CG = 1,
};

/* Actions (bits). */
#define SEC_ACT_ALERT 0x1
#define SEC_ACT_KILL 0x2
#define SEC_ACT_DENY 0x4

/* What a rule checks beyond its kind (bits of sec_rule.need). Path, binary
 * and cgroup are decided by map lookups (sec_gen masks); the others by the
 * rule's own fields. */
#define SEC_NEED_UID 0x1
#define SEC_NEED_FLAGS 0x2   /* open: any of flags_any set, and all of flags_all */
#define SEC_NEED_ADDR 0x4    /* connect/bind/accept: address in CIDR */
#define SEC_NEED_PORT 0x8    /* connect/bind/accept: port equal */
#define SEC_NEED_ARG 0x10    /* syscall argument arg_index equals arg_value (masked) */
#define SEC_NEED_RDONLY 0x20 /* open: access mode O_RDONLY */
#define SEC_NEED_NOT_ADDR 0x40 /* address NOT in CIDR (an allow list) */
#define SEC_NEED_NOT_UID 0x80  /* uid differs from the rule's uid */

/* hdr.flags */
#define SEC_F_PATH_TRUNCATED 0x1
#define SEC_F_PATH_MISSING 0x2   /* the user string could not be read: never guessed */
#define SEC_F_PATH_REREAD 0x4    /* read at sys_exit after sys_enter's read failed */
#define SEC_F_ARGV_TRUNCATED 0x8
#define SEC_F_KILLED 0x10        /* bpf_send_signal(SIGKILL) returned 0 */
#define SEC_F_DENIED 0x20        /* the cgroup hook refused the operation */
#define SEC_F_NO_TASK 0x40       /* cgroup hook: ppid/caps not read (userspace fills) */

/* sec_counters */
enum sec_counter {
	SEC_CTR_EVALUATED = 0, /* events evaluated against a policy */
	SEC_CTR_MATCHED = 1,   /* of those, matched by at least one rule */
	SEC_CTR_SENT = 2,      /* records submitted */
	SEC_CTR_KILLS = 3,     /* SIGKILLs sent */
	SEC_CTR_DENIES = 4,    /* operations refused */
	SEC_CTR_REREADS = 5,   /* paths read again at sys_exit */
	SEC_CTR_MISSING = 6,   /* paths unreadable at enter and exit */
	SEC_CTR_SELF_BPF = 7,  /* bpf() calls of the agent itself, skipped */
	SEC_CTR_MAX = 8,
};

struct sec_config {
	__u32 gen;        /* 0 or 1: the policy generation in force */
	__u32 agent_tgid; /* bpf() from this process is not an event */
	__u64 rate;       /* events per second per cgroup and CPU (0 = unlimited) */
	__u64 burst;
};

/* Per generation: which rules depend on a map lookup. */
struct sec_gen {
	__u64 need_path;   /* rules with a path (exact or prefix) */
	__u64 need_bin;    /* rules with a binary selector */
	__u64 need_cgroup; /* rules with a container/pod/cgroup selector */
	__u64 kill;        /* rules whose actions include kill */
	__u64 deny;        /* rules whose actions include deny */
	__u64 alert;       /* rules whose actions include alert */
	__u64 except_cgroup; /* rules with a container/pod/cgroup exclusion */
	__u64 except_bin;    /* rules with a binary exclusion */
	/* Open rules decided by the open flags alone, checked before the path
	 * is read (an open no rule can want never reads its path): */
	__u64 open_write;    /* rules needing one of SEC_OPEN_WRITE_FLAGS */
	__u64 open_rdonly;   /* rules needing access mode O_RDONLY */
};

/* open(2) flags that make an open a write (O_WRONLY O_RDWR O_CREAT O_TRUNC
 * O_APPEND), for `open: write` rules. */
#define SEC_OPEN_WRITE_FLAGS (01 | 02 | 0100 | 01000 | 02000)

/* Value of sec_bin and sec_cgroup: the rules this binary/cgroup selects,
 * and the rules that exclude it. */
struct sec_sel_val {
	__u64 match;
	__u64 except;
};

struct sec_rule {
	__u32 kind;
	__u32 actions;
	__u32 need;
	__u32 uid;
	__u32 flags_any;
	__u32 flags_all;
	__u32 arg_index;   /* 0..5 */
	__u16 port;        /* host order */
	__u8 family;       /* AF_INET / AF_INET6 for an address rule */
	__u8 prefixlen;
	__u64 arg_value;
	__u64 arg_mask;    /* arg & mask == value */
	__u8 addr[16];     /* network order, already masked; IPv4 in the first 4 bytes */
	__u8 mask[16];     /* prefixlen as a byte mask (no loop in the kernel) */
};

/* LPM keys hold at most 256 bytes of data: the generation byte and the
 * first SEC_PREFIX_LEN bytes of the path (a prefix rule is shorter).
 * Exact paths live in the same trie with their terminating NUL as the last
 * byte of the prefix: a path matches "/etc/shadow\0" only when it ends
 * there, so one lookup answers prefixes and exact paths alike (the compiler
 * folds every prefix of an exact path into its mask). */
#define SEC_PREFIX_LEN 255
struct sec_prefix_key {
	__u32 prefixlen;   /* bits, the generation byte included */
	__u8 gen;
	char path[SEC_PREFIX_LEN];
};

struct sec_bin_key {
	__u32 gen;
	char comm[SEC_COMM_LEN];
};

struct sec_cg_key {
	__u64 cgroup_id;
	__u32 gen;
	__u32 pad;
};

/* An open whose path could not be read at sys_enter, or an accept whose
 * address is known only at sys_exit. */
struct sec_stash {
	__u64 args[6];
	__u32 kind;
	__u32 pad;
};

/* One parent in an event's ancestry, read from task->real_parent at the
 * time of the event (exact even when the parents are gone by the time
 * userspace reads the record). */
#define SEC_ANCESTRY_MAX 8
struct sec_ancestor {
	__u32 tgid;
	__u32 pad;
	char comm[SEC_COMM_LEN];
};

struct sec_event {
	struct kg_event_hdr hdr; /* kind = enum sec_kind */
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u64 cgroup_id;
	__u64 cap_effective;
	__u64 rules;       /* matched rules (bits) of generation gen */
	__u32 gen;
	__u32 actions;     /* SEC_ACT_* of the matched rules */
	__s64 ret;         /* syscall result where known (exit-time events), else 0 */
	__u64 args[6];     /* the syscall's arguments (kind-specific) */
	__u16 family;
	__u16 port;        /* host order */
	__u32 path_len;    /* bytes in path (NUL excluded) */
	__u8 addr[16];
	__u32 argv_len;    /* bytes in argv (NULs between arguments) */
	__u32 pad;
	char comm[SEC_COMM_LEN];
	char path[SEC_PATH_LEN]; /* open/exec/mount path, NUL-terminated */
	char argv[SEC_ARGV_LEN]; /* exec: arguments, NUL-separated */
	__u32 n_ancestors;       /* entries of anc in use (0 from cgroup hooks) */
	__u32 pad2;
	struct sec_ancestor anc[SEC_ANCESTRY_MAX]; /* parent first */
	/* open with a relative path: the directory it starts from (the dirfd's
	 * file, or the cwd for AT_FDCWD) as the kernel saw it at the event;
	 * userspace resolves the path from /proc/<tgid>/fd/<dirfd> (or cwd)
	 * only when that is still the same inode, else marks it unresolved. */
	__u64 dir_ino;   /* 0: not read */
	__u32 dir_dev;   /* the kernel's dev_t (major << 20 | minor) */
	__u32 pad3;
};

/* Per-CPU scratch: the lookup key, too large for the 512-byte BPF stack.
 * The path is read straight into pk.path, SEC_PATH_LEN bytes: the last one
 * lands in tail[0] (the trie sees the first SEC_PREFIX_LEN), so nothing is
 * copied between reading and matching. */
struct sec_scratch {
	struct sec_prefix_key pk;
	char tail[4];
};

#endif /* KAGAMI_MODULES_SECURITY_ABI_H */
