/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Runtime security (modules/security/README.md, docs/security.md): the code
 * of both object variants. security.bpf.c: classic sched tracepoints;
 * security_btf.bpf.c: tp_btf sched hooks (typed, threads left out of fork).
 * The includer defines SEC_TP_BTF and includes vmlinux.h and libbpf first.
 *
 * Hooks: syscall tracepoints and sched/sched_process_{exec,fork,exit}
 * (alert, kill), cgroup connect4/6, bind4/6 and sock_create (deny). Every
 * event is matched here, against the policy generation in force
 * (sec_config.gen, read once per event), from maps the policy compiles into
 * (abi.h); an event no rule wants costs one array lookup and never reaches
 * the ring. Kill is bpf_send_signal(SIGKILL) from the program itself: the
 * signal is pending before the task returns to user space, so it never runs
 * another user instruction (the syscall itself still completes).
 *
 * User strings: read at sys_enter; when that read fails (a page not yet
 * faulted in), the arguments go to sec_stash and the string is read again
 * at sys_exit (the kernel has faulted it in by then); when that fails too
 * the event says the path is missing (SEC_F_PATH_MISSING) and path rules do
 * not match it. A wrong string is never reported.
 */
#ifndef KAGAMI_SECURITY_PROGS_H
#define KAGAMI_SECURITY_PROGS_H

#include "lib/events.h"
#include "lib/ratelimit.h"
#include "../abi.h"
#include "sec_maps.h"

#define SIGKILL 9
#define AF_INET 2
#define AF_INET6 10
#define O_ACCMODE 3

/* What one hook hands to the matcher. Strings are in the per-CPU scratch
 * (sc->pk.path, NUL-terminated; bytes after the NUL are stale and never
 * matched: the trie compares prefixlen bits only). */
struct sec_in {
	__u64 args[6];
	__s64 ret;
	__u32 kind;
	__u32 side;
	__u32 path_state; /* 0: the kind has no path; 1: read; 2: missing; 3: not read yet (user args[path_arg]) */
	__u32 path_len;
	__u16 flags;
	__u16 family;
	__u16 port;
	__u16 path_arg;   /* path_state 3: the argument holding the user path */
	__u8 addr[16];
};

static __always_inline void count(__u32 ctr)
{
	__u64 *p = bpf_map_lookup_elem(&sec_counters, &ctr);

	if (p)
		*p += 1;
}

/* sec_pending: see sec_maps.h. */
static __always_inline void pending_add(__s64 d)
{
	__u32 zero = 0;
	__u64 *p = bpf_map_lookup_elem(&sec_pending, &zero);

	if (p)
		__sync_fetch_and_add(p, d);
}

static __always_inline int pending_none(void)
{
	__u32 zero = 0;
	__u64 *p = bpf_map_lookup_elem(&sec_pending, &zero);

	return p && *p == 0;
}

/* Puts a thread's stash entry (counted first). */
static __always_inline void stash_put(__u32 tid, struct sec_stash *st)
{
	pending_add(1);
	if (bpf_map_update_elem(&sec_stash, &tid, st, BPF_ANY) != 0)
		pending_add(-1);
}

/* Takes it (uncounted after). */
static __always_inline void stash_take(__u32 tid)
{
	if (bpf_map_delete_elem(&sec_stash, &tid) == 0)
		pending_add(-1);
}

static __always_inline struct sec_scratch *scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sec_scratch, &zero);
}

/* Reads a user (user=1) or kernel string into sc->pk.path (SEC_PATH_LEN
 * bytes, the last one in sc->tail). Returns the bytes read without the NUL,
 * or -1 when it could not be read. No zero-fill: the trie compares only the
 * bytes the lookup's prefixlen covers, and the record copies path_len. */
static __always_inline int read_path(struct sec_scratch *sc, const void *src, int user, __u16 *flags)
{
	long n;
	char last = 0;

	sc->pk.path[0] = '\0';
	if (!src)
		return -1;
	n = user ? bpf_probe_read_user_str(sc->pk.path, SEC_PATH_LEN, src)
		 : bpf_probe_read_kernel_str(sc->pk.path, SEC_PATH_LEN, src);
	if (n <= 0) {
		sc->pk.path[0] = '\0';
		return -1;
	}
	if (n == SEC_PATH_LEN) {
		/* 255 bytes and the NUL were copied: truncated when the source
		 * goes on past them. */
		long r = user ? bpf_probe_read_user(&last, 1, (const char *)src + SEC_PATH_LEN - 1)
			      : bpf_probe_read_kernel(&last, 1, (const char *)src + SEC_PATH_LEN - 1);
		if (r != 0 || last != '\0')
			*flags |= SEC_F_PATH_TRUNCATED;
	}
	return (int)n - 1;
}

/* An open/mount path not readable at sys_enter (its page not faulted in
 * yet): the arguments wait in sec_stash for sys_exit, which reads it again. */
static __always_inline void stash_for_exit(struct sec_in *in)
{
	struct sec_stash st = {.kind = in->kind};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	__builtin_memcpy(st.args, in->args, sizeof(st.args));
	st.pad = in->path_arg;
	stash_put(tid, &st);
}

/* The per-rule checks of rules still in `m` (uid, open flags, address,
 * port, argument); counts a hit for each rule that passes. Run through
 * bpf_loop(SEC_MAX_RULES): one call per bit of the mask, and the verifier
 * checks the callback once instead of 64 unrolled bodies. */
struct rule_loop {
	struct sec_in *in;
	__u64 m;
	__u64 out;
	__u32 gen;
	__u32 uid;
};

static long rule_check_one(__u64 i, void *arg)
{
	struct rule_loop *L = arg;
	struct sec_in *in = L->in;
	__u32 idx;
	struct sec_rule *r;
	__u64 *hit;

	if (i >= SEC_MAX_RULES)
		return 1;
	if (!(L->m & (1ULL << i)))
		return 0;
	idx = L->gen * SEC_MAX_RULES + (__u32)i;
	r = bpf_map_lookup_elem(&sec_rules, &idx);
	if (!r)
		return 0;
	if ((r->need & SEC_NEED_UID) && r->uid != L->uid)
		return 0;
	if ((r->need & SEC_NEED_NOT_UID) && r->uid == L->uid)
		return 0;
	if (r->need & SEC_NEED_FLAGS) {
		__u32 f = (__u32)in->args[2];
		if (r->flags_any && !(f & r->flags_any))
			return 0;
		if ((f & r->flags_all) != r->flags_all)
			return 0;
	}
	if ((r->need & SEC_NEED_RDONLY) && ((__u32)in->args[2] & O_ACCMODE) != 0)
		return 0;
	if ((r->need & SEC_NEED_PORT) && r->port != in->port)
		return 0;
	if (r->need & (SEC_NEED_ADDR | SEC_NEED_NOT_ADDR)) {
		/* The prefix as a mask the compiler made: two 64-bit
		 * compares, no loop. */
		__u64 a[2], ra[2], rm[2];
		int inside;

		__builtin_memcpy(a, in->addr, 16);
		__builtin_memcpy(ra, r->addr, 16);
		__builtin_memcpy(rm, r->mask, 16);
		inside = in->family == r->family && (a[0] & rm[0]) == ra[0] && (a[1] & rm[1]) == ra[1];
		if ((r->need & SEC_NEED_ADDR) && !inside)
			return 0;
		/* An allow list: only addresses of the rule's family are
		 * judged (an IPv4 list says nothing about IPv6). */
		if ((r->need & SEC_NEED_NOT_ADDR) && (inside || in->family != r->family))
			return 0;
	}
	if (r->need & SEC_NEED_ARG) {
		__u32 k = r->arg_index;
		__u64 v;

		if (k > 5)
			return 0;
		v = in->args[k];
		if ((v & r->arg_mask) != r->arg_value)
			return 0;
	}
	L->out |= 1ULL << i;
	hit = bpf_map_lookup_elem(&sec_hits, &idx);
	if (hit)
		*hit += 1;
	return 0;
}

static __always_inline __u64 rule_checks(struct sec_in *in, __u32 gen, __u64 m, __u32 uid)
{
	struct rule_loop L = {.in = in, .m = m, .out = 0, .gen = gen, .uid = uid};

	bpf_loop(SEC_MAX_RULES, rule_check_one, &L, 0);
	return L.out;
}

#define AT_FDCWD -100

/* The directory a relative open starts from, as an inode: the dirfd's file
 * (the task's file table, bounds-checked against max_fds) or the cwd. Only
 * for records (matched events), never on the hot path. */
static __always_inline void start_dir(struct sec_event *e, struct task_struct *t, int dfd)
{
	struct inode *ino = NULL;

	if (dfd == AT_FDCWD) {
		ino = BPF_CORE_READ(t, fs, pwd.dentry, d_inode);
	} else if (dfd >= 0) {
		struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
		struct file **fds = BPF_CORE_READ(fdt, fd);
		struct file *fp = NULL;

		if ((unsigned int)dfd < BPF_CORE_READ(fdt, max_fds) &&
		    bpf_probe_read_kernel(&fp, sizeof(fp), &fds[dfd]) == 0 && fp)
			ino = BPF_CORE_READ(fp, f_inode);
	}
	if (!ino)
		return;
	e->dir_ino = BPF_CORE_READ(ino, i_ino);
	e->dir_dev = BPF_CORE_READ(ino, i_sb, s_dev);
}

/* The whole decision for one event, then its actions and its record.
 * Returns 1 when a cgroup hook must refuse the operation. */
static __noinline int sec_handle(struct sec_in *in, struct sec_scratch *sc)
{
	struct sec_config *cfg;
	struct sec_gen *g;
	struct sec_event *e;
	__u32 zero = 0, gen, idx, acts = 0;
	__u64 m, *v, cgid, uid_gid;
	int denied = 0;

	/* struct sec_event into the object's BTF (ring records have no map
	 * type of their own; the ABI layout test reads it from there). */
	if (bpf_core_type_id_local(struct sec_event) == 0)
		return 0;
	cfg = bpf_map_lookup_elem(&sec_config, &zero);
	if (!cfg || in->kind >= SEC_KIND_MAX)
		return 0;
	gen = cfg->gen & 1;
	/* A path re-read at sys_exit was counted at sys_enter. */
	if (!(in->flags & (SEC_F_PATH_REREAD | SEC_F_PATH_MISSING)))
		count(SEC_CTR_EVALUATED);
	idx = (gen * 2 + (in->side & 1)) * SEC_KIND_MAX + in->kind;
	v = bpf_map_lookup_elem(&sec_kinds, &idx);
	if (!v || !*v)
		return 0;
	m = *v;
	g = bpf_map_lookup_elem(&sec_gens, &gen);
	if (!g)
		return 0;
	/* The cheap conditions first (open flags, cgroup, binary): an event
	 * no rule can still want stops here, before its path is read. */
	if (in->kind == SEC_KIND_OPEN && (m & (g->open_write | g->open_rdonly))) {
		__u32 f = (__u32)in->args[2];

		if (!(f & SEC_OPEN_WRITE_FLAGS))
			m &= ~g->open_write;
		if ((f & O_ACCMODE) != 0)
			m &= ~g->open_rdonly;
		if (!m)
			return 0;
	}
	cgid = bpf_get_current_cgroup_id();
	uid_gid = bpf_get_current_uid_gid();
	if (m & (g->need_cgroup | g->except_cgroup)) {
		struct sec_cg_key k = {.cgroup_id = cgid, .gen = gen};
		struct sec_sel_val *cv = bpf_map_lookup_elem(&sec_cgroup, &k);

		m &= ~g->need_cgroup | (cv ? cv->match : 0);
		if (cv)
			m &= ~cv->except;
	}
	if (m & (g->need_bin | g->except_bin)) {
		struct sec_bin_key k = {.gen = gen};
		struct sec_sel_val *bv;

		bpf_get_current_comm(k.comm, sizeof(k.comm));
		bv = bpf_map_lookup_elem(&sec_bin, &k);
		m &= ~g->need_bin | (bv ? bv->match : 0);
		if (bv)
			m &= ~bv->except;
	}
	if (!m)
		return 0;
	if (in->path_state == 3) {
		/* Some rule may want this event: now read its path. */
		/* A branch, not args[path_arg]: constant stack offsets only. */
		const void *src = (const void *)(in->path_arg ? in->args[1] : in->args[0]);
		int n = read_path(sc, src, 1, &in->flags);

		if (n < 0) {
			stash_for_exit(in);
			return 0;
		}
		in->path_state = 1;
		in->path_len = n;
	}
	if (m & g->need_path) {
		__u64 pm = 0, *x;

		if (in->path_state == 1) {
			/* One trie lookup for prefixes and exact paths: the NUL
			 * is part of the key when the whole path was read, so
			 * an exact entry matches only a path that ends there. */
			__u32 len = in->path_len < SEC_PREFIX_LEN ? in->path_len : SEC_PREFIX_LEN;

			if (len < SEC_PREFIX_LEN && !(in->flags & SEC_F_PATH_TRUNCATED))
				len += 1;
			sc->pk.gen = gen;
			sc->pk.prefixlen = 8 + len * 8;
			x = bpf_map_lookup_elem(&sec_prefix, &sc->pk);
			if (x)
				pm = *x;
		}
		m &= ~g->need_path | pm;
	}
	if (!m)
		return 0;
	m = rule_checks(in, gen, m, (__u32)uid_gid);
	if (!m)
		return 0;
	count(SEC_CTR_MATCHED);
	if (m & g->alert)
		acts |= SEC_ACT_ALERT;
	if ((m & g->kill) && in->side == SEC_SIDE_TP) {
		acts |= SEC_ACT_KILL;
		if (bpf_send_signal(SIGKILL) == 0) {
			in->flags |= SEC_F_KILLED;
			count(SEC_CTR_KILLS);
		}
	}
	if ((m & g->deny) && in->side == SEC_SIDE_CG) {
		acts |= SEC_ACT_DENY;
		in->flags |= SEC_F_DENIED;
		denied = 1;
		count(SEC_CTR_DENIES);
	}
	/* Enforcement above never waits for the rate limit; the record does. */
	if (!kg_ratelimit_allow(&sec_rl, &cgid, cfg->rate, cfg->burst, &sec_drops))
		return denied;
	e = kg_event_reserve(&sec_events, &sec_drops, sizeof(*e), (__u16)in->kind);
	if (!e)
		return denied;
	e->hdr.flags = in->flags;
	e->pid = (__u32)bpf_get_current_pid_tgid();
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	e->cgroup_id = cgid;
	e->rules = m;
	e->gen = gen;
	e->actions = acts;
	e->ret = in->ret;
	__builtin_memcpy(e->args, in->args, sizeof(e->args));
	e->family = in->family;
	e->port = in->port;
	__builtin_memcpy(e->addr, in->addr, sizeof(e->addr));
	e->pad = 0;
	e->argv_len = 0;
	e->argv[0] = '\0';
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->n_ancestors = 0;
	e->pad2 = 0;
	e->dir_ino = 0;
	e->dir_dev = 0;
	e->pad3 = 0;
	__builtin_memset(e->anc, 0, sizeof(e->anc));
	if (in->side == SEC_SIDE_TP) {
		struct task_struct *t = (struct task_struct *)bpf_get_current_task();
		struct task_struct *p = t;
		struct mm_struct *mm;

		/* SEC_ANCESTRY_MAX parents, the depth an event reports; the
		 * walk stops early at init or the idle task. */
		for (__u32 i = 0; i < SEC_ANCESTRY_MAX; i++) {
			__u32 tg;

			p = BPF_CORE_READ(p, real_parent);
			if (!p)
				break;
			tg = BPF_CORE_READ(p, tgid);
			if (tg == 0)
				break;
			e->anc[i].tgid = tg;
			BPF_CORE_READ_STR_INTO(&e->anc[i].comm, p, comm);
			e->n_ancestors = i + 1;
			if (tg == 1)
				break;
		}

		if (in->kind == SEC_KIND_OPEN && in->path_state == 1 && sc->pk.path[0] != '/')
			start_dir(e, t, (int)in->args[0]);
		e->ppid = BPF_CORE_READ(t, real_parent, tgid);
		e->euid = BPF_CORE_READ(t, cred, euid.val);
		e->cap_effective = BPF_CORE_READ(t, cred, cap_effective.val);
		if (in->kind == SEC_KIND_EXEC) {
			/* The new image's arguments: on its fresh stack, faulted
			 * in by the exec itself. */
			mm = BPF_CORE_READ(t, mm);
			unsigned long a0 = BPF_CORE_READ(mm, arg_start), a1 = BPF_CORE_READ(mm, arg_end);
			__u64 len = a1 > a0 ? a1 - a0 : 0;

			if (len > SEC_ARGV_LEN) {
				len = SEC_ARGV_LEN;
				e->hdr.flags |= SEC_F_ARGV_TRUNCATED;
			}
			if (len > 0 && len <= SEC_ARGV_LEN &&
			    bpf_probe_read_user(e->argv, len, (const void *)a0) == 0)
				e->argv_len = len;
		}
	} else {
		e->ppid = 0;
		e->euid = 0;
		e->cap_effective = 0;
		e->hdr.flags |= SEC_F_NO_TASK;
	}
	e->path_len = in->path_state == 1 ? in->path_len : 0;
	/* The path and zeros after it (the scratch holds stale bytes past
	 * the NUL; a record never carries them). */
	__builtin_memset(e->path, 0, sizeof(e->path));
	if (in->path_state == 1) {
		__u32 n = e->path_len & (SEC_PATH_LEN - 1);

		if (n > 0)
			bpf_probe_read_kernel(e->path, n, sc->pk.path);
	}
	count(SEC_CTR_SENT);
	kg_event_submit(e);
	return denied;
}

/* The six arguments in one copy: clang turns field-by-field reads into a
 * moved context pointer, which the verifier refuses; the record is kernel
 * memory, so a probe read is exact. */
static __always_inline void copy_args(__u64 *dst, struct trace_event_raw_sys_enter *ctx)
{
	if (bpf_probe_read_kernel(dst, 6 * sizeof(__u64), &ctx->args[0]) != 0)
		__builtin_memset(dst, 0, 6 * sizeof(__u64));
}

static __always_inline void in_init(struct sec_in *in, __u32 kind)
{
	__builtin_memset(in, 0, sizeof(*in));
	in->kind = kind;
	in->side = SEC_SIDE_TP;
}

/* A syscall whose event is its arguments (no strings). */
static __always_inline int sys_args(struct trace_event_raw_sys_enter *ctx, __u32 kind)
{
	struct sec_scratch *sc = scratch();
	struct sec_in in;

	if (!sc)
		return 0;
	in_init(&in, kind);
	copy_args(in.args, ctx);
	sec_handle(&in, sc);
	return 0;
}

/* A syscall with a user path in argument `pi` (0 or 1). sec_handle reads
 * the path only once the cheap conditions leave a rule that may want the
 * event; when that read fails (not faulted in yet), sys_exit tries again. */
static __always_inline int sys_path(struct trace_event_raw_sys_enter *ctx, __u32 kind, int pi)
{
	struct sec_scratch *sc = scratch();
	struct sec_in in;

	if (!sc)
		return 0;
	in_init(&in, kind);
	copy_args(in.args, ctx);
	in.path_state = 3;
	in.path_arg = pi & 1;
	sec_handle(&in, sc);
	return 0;
}

/* sys_exit of a syscall whose path sys_enter could not read. */
static __always_inline int sys_path_exit(struct trace_event_raw_sys_exit *ctx, __u32 kind)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct sec_stash *st;

	if (pending_none())
		return 0; /* nothing stashed anywhere: no hash lookup */
	st = bpf_map_lookup_elem(&sec_stash, &tid);
	struct sec_scratch *sc;
	struct sec_in in;
	int n;

	if (!st || st->kind != kind)
		return 0;
	sc = scratch();
	if (!sc) {
		stash_take(tid);
		return 0;
	}
	in_init(&in, kind);
	__builtin_memcpy(in.args, st->args, sizeof(in.args));
	stash_take(tid);
	in.ret = ctx->ret;
	n = read_path(sc, (const void *)in.args[st->pad & 1], 1, &in.flags);
	if (n < 0) {
		in.path_state = 2;
		in.flags |= SEC_F_PATH_MISSING;
		count(SEC_CTR_MISSING);
	} else {
		in.path_state = 1;
		in.path_len = n;
		in.flags |= SEC_F_PATH_REREAD;
		count(SEC_CTR_REREADS);
	}
	sec_handle(&in, sc);
	return 0;
}

/* Reads a user sockaddr (IPv4 or IPv6) into in. */
static __always_inline void read_sockaddr(struct sec_in *in, const void *uaddr)
{
	__u16 fam = 0;

	if (!uaddr || bpf_probe_read_user(&fam, sizeof(fam), uaddr) != 0)
		return;
	if (fam == AF_INET) {
		struct sockaddr_in sa;

		if (bpf_probe_read_user(&sa, sizeof(sa), uaddr) != 0)
			return;
		in->family = AF_INET;
		in->port = bpf_ntohs(sa.sin_port);
		__builtin_memcpy(in->addr, &sa.sin_addr.s_addr, 4);
	} else if (fam == AF_INET6) {
		struct sockaddr_in6 sa6;

		if (bpf_probe_read_user(&sa6, sizeof(sa6), uaddr) != 0)
			return;
		in->family = AF_INET6;
		in->port = bpf_ntohs(sa6.sin6_port);
		__builtin_memcpy(in->addr, &sa6.sin6_addr, 16);
	} else {
		in->family = fam;
	}
}

static __always_inline int sys_sockaddr(struct trace_event_raw_sys_enter *ctx, __u32 kind)
{
	struct sec_scratch *sc = scratch();
	struct sec_in in;

	if (!sc)
		return 0;
	in_init(&in, kind);
	copy_args(in.args, ctx);
	read_sockaddr(&in, (const void *)in.args[1]);
	sec_handle(&in, sc);
	return 0;
}

/* ---- process lifecycle ---------------------------------------------------- */

#if SEC_TP_BTF
/* tp_btf: typed arguments, no trace record; the fork hook sees the child
 * task and leaves thread creations out. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(sec_exec_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct sec_scratch *sc = scratch();
	struct sec_in in;
	int n;

	if (!sc)
		return 0;
	in_init(&in, SEC_KIND_EXEC);
	in.args[0] = BPF_CORE_READ(p, pid);
	in.args[1] = old_pid;
	n = read_path(sc, BPF_CORE_READ(bprm, filename), 0, &in.flags);
	if (n < 0) {
		in.path_state = 2;
		in.flags |= SEC_F_PATH_MISSING;
	} else {
		in.path_state = 1;
		in.path_len = n;
	}
	sec_handle(&in, sc);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sec_fork_btf, struct task_struct *parent, struct task_struct *child)
{
	struct sec_scratch *sc;
	struct sec_in in;

	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0; /* a new thread, not a new process */
	sc = scratch();
	if (!sc)
		return 0;
	in_init(&in, SEC_KIND_FORK);
	in.args[0] = BPF_CORE_READ(child, tgid);
	in.args[1] = BPF_CORE_READ(parent, tgid);
	sec_handle(&in, sc);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sec_exit_btf, struct task_struct *p)
{
	struct sec_scratch *sc;
	struct sec_in in;

	if (BPF_CORE_READ(p, pid) != BPF_CORE_READ(p, tgid))
		return 0; /* a thread, not the process */
	sc = scratch();
	if (!sc)
		return 0;
	in_init(&in, SEC_KIND_EXIT);
	in.ret = BPF_CORE_READ(p, exit_code);
	sec_handle(&in, sc);
	return 0;
}
#else
SEC("tracepoint/sched/sched_process_exec")
int sec_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct sec_scratch *sc = scratch();
	struct sec_in in;
	__u32 loc = ctx->__data_loc_filename;
	int n;

	if (!sc)
		return 0;
	in_init(&in, SEC_KIND_EXEC);
	in.args[0] = ctx->pid;
	in.args[1] = ctx->old_pid;
	/* __data_loc: offset in the low 16 bits, length in the high 16. */
	n = read_path(sc, (const char *)ctx + (loc & 0xffff), 0, &in.flags);
	if (n < 0) {
		in.path_state = 2;
		in.flags |= SEC_F_PATH_MISSING;
	} else {
		in.path_state = 1;
		in.path_len = n;
	}
	sec_handle(&in, sc);
	return 0;
}

SEC("tracepoint/sched/sched_process_fork")
int sec_fork(struct trace_event_raw_sched_process_fork *ctx)
{
	struct sec_scratch *sc = scratch();
	struct sec_in in;

	if (!sc)
		return 0;
	in_init(&in, SEC_KIND_FORK);
	in.args[0] = ctx->child_pid;
	in.args[1] = ctx->parent_pid;
	sec_handle(&in, sc);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int sec_exit(struct trace_event_raw_sched_process_template *ctx)
{
	struct sec_scratch *sc;
	struct sec_in in;
	__u64 id = bpf_get_current_pid_tgid();
	struct task_struct *t;

	if ((__u32)id != (id >> 32))
		return 0; /* a thread, not the process */
	sc = scratch();
	if (!sc)
		return 0;
	in_init(&in, SEC_KIND_EXIT);
	t = (struct task_struct *)bpf_get_current_task();
	in.ret = BPF_CORE_READ(t, exit_code);
	sec_handle(&in, sc);
	return 0;
}

#endif

/* ---- files ------------------------------------------------------------------ */

SEC("tracepoint/syscalls/sys_enter_openat")
int sec_openat(struct trace_event_raw_sys_enter *ctx)
{
	/* openat(dfd, filename, flags, mode): rule flags read args[2]. */
	return sys_path(ctx, SEC_KIND_OPEN, 1);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int sec_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return sys_path_exit(ctx, SEC_KIND_OPEN);
}

/* ---- network ---------------------------------------------------------------- */

SEC("tracepoint/syscalls/sys_enter_connect")
int sec_connect(struct trace_event_raw_sys_enter *ctx) { return sys_sockaddr(ctx, SEC_KIND_CONNECT); }

SEC("tracepoint/syscalls/sys_enter_bind")
int sec_bind(struct trace_event_raw_sys_enter *ctx) { return sys_sockaddr(ctx, SEC_KIND_BIND); }

SEC("tracepoint/syscalls/sys_enter_listen")
int sec_listen(struct trace_event_raw_sys_enter *ctx) { return sys_args(ctx, SEC_KIND_LISTEN); }

SEC("tracepoint/syscalls/sys_enter_socket")
int sec_socket(struct trace_event_raw_sys_enter *ctx) { return sys_args(ctx, SEC_KIND_SOCKET); }

/* accept/accept4: the peer's address exists at sys_exit only. */
static __always_inline int accept_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct sec_stash st = {.kind = SEC_KIND_ACCEPT};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	copy_args(st.args, ctx);
	stash_put(tid, &st);
	return 0;
}

static __always_inline int accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct sec_stash *st;

	if (pending_none())
		return 0; /* nothing stashed anywhere: no hash lookup */
	st = bpf_map_lookup_elem(&sec_stash, &tid);
	struct sec_scratch *sc;
	struct sec_in in;

	if (!st || st->kind != SEC_KIND_ACCEPT)
		return 0;
	in_init(&in, SEC_KIND_ACCEPT);
	__builtin_memcpy(in.args, st->args, sizeof(in.args));
	stash_take(tid);
	sc = scratch();
	if (!sc || ctx->ret < 0)
		return 0;
	in.ret = ctx->ret;
	read_sockaddr(&in, (const void *)in.args[1]);
	sec_handle(&in, sc);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_accept")
int sec_accept(struct trace_event_raw_sys_enter *ctx) { return accept_enter(ctx); }
SEC("tracepoint/syscalls/sys_exit_accept")
int sec_accept_exit(struct trace_event_raw_sys_exit *ctx) { return accept_exit(ctx); }
SEC("tracepoint/syscalls/sys_enter_accept4")
int sec_accept4(struct trace_event_raw_sys_enter *ctx) { return accept_enter(ctx); }
SEC("tracepoint/syscalls/sys_exit_accept4")
int sec_accept4_exit(struct trace_event_raw_sys_exit *ctx) { return accept_exit(ctx); }

/* ---- privileges, namespaces, kernel ----------------------------------------- */

SEC("tracepoint/syscalls/sys_enter_setuid")
int sec_setuid(struct trace_event_raw_sys_enter *ctx) { return sys_args(ctx, SEC_KIND_SETUID); }
SEC("tracepoint/syscalls/sys_enter_setgid")
int sec_setgid(struct trace_event_raw_sys_enter *ctx) { return sys_args(ctx, SEC_KIND_SETGID); }
SEC("tracepoint/syscalls/sys_enter_setresuid")
int sec_setresuid(struct trace_event_raw_sys_enter *ctx) { return sys_args(ctx, SEC_KIND_SETRESUID); }
SEC("tracepoint/syscalls/sys_enter_capset")
int sec_capset(struct trace_event_raw_sys_enter *ctx) { return sys_args(ctx, SEC_KIND_CAPSET); }
SEC("tracepoint/syscalls/sys_enter_ptrace")
int sec_ptrace(struct trace_event_raw_sys_enter *ctx) { return sys_args(ctx, SEC_KIND_PTRACE); }
/* mount(dev, dir, type, flags, data): the path is the mount point. */
SEC("tracepoint/syscalls/sys_enter_mount")
int sec_mount(struct trace_event_raw_sys_enter *ctx) { return sys_path(ctx, SEC_KIND_MOUNT, 1); }
SEC("tracepoint/syscalls/sys_exit_mount")
int sec_mount_exit(struct trace_event_raw_sys_exit *ctx) { return sys_path_exit(ctx, SEC_KIND_MOUNT); }
SEC("tracepoint/syscalls/sys_enter_umount")
int sec_umount(struct trace_event_raw_sys_enter *ctx) { return sys_path(ctx, SEC_KIND_UMOUNT, 0); }
SEC("tracepoint/syscalls/sys_exit_umount")
int sec_umount_exit(struct trace_event_raw_sys_exit *ctx) { return sys_path_exit(ctx, SEC_KIND_UMOUNT); }
SEC("tracepoint/syscalls/sys_enter_setns")
int sec_setns(struct trace_event_raw_sys_enter *ctx) { return sys_args(ctx, SEC_KIND_SETNS); }
SEC("tracepoint/syscalls/sys_enter_unshare")
int sec_unshare(struct trace_event_raw_sys_enter *ctx) { return sys_args(ctx, SEC_KIND_UNSHARE); }
SEC("tracepoint/syscalls/sys_enter_init_module")
int sec_init_module(struct trace_event_raw_sys_enter *ctx) { return sys_args(ctx, SEC_KIND_INIT_MODULE); }
SEC("tracepoint/syscalls/sys_enter_finit_module")
int sec_finit_module(struct trace_event_raw_sys_enter *ctx) { return sys_args(ctx, SEC_KIND_FINIT_MODULE); }

SEC("tracepoint/syscalls/sys_enter_bpf")
int sec_bpf(struct trace_event_raw_sys_enter *ctx)
{
	struct sec_config *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&sec_config, &zero);
	if (cfg && cfg->agent_tgid == (bpf_get_current_pid_tgid() >> 32)) {
		count(SEC_CTR_SELF_BPF);
		return 0;
	}
	return sys_args(ctx, SEC_KIND_BPF);
}

/* ---- deny: cgroup hooks (return 0 = EPERM to the caller) -------------------- */

static __always_inline int cg_addr(struct bpf_sock_addr *ctx, __u32 kind, int v6)
{
	struct sec_scratch *sc = scratch();
	struct sec_in in;

	if (!sc)
		return 1;
	in_init(&in, kind);
	in.side = SEC_SIDE_CG;
	in.port = bpf_ntohs((__u16)ctx->user_port);
	if (v6) {
		in.family = AF_INET6;
		/* Four words at constant offsets: the verifier refuses a
		 * context pointer moved by a loop variable. */
		__u32 w[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]};

		__builtin_memcpy(in.addr, w, 16);
	} else {
		__u32 w = ctx->user_ip4;

		in.family = AF_INET;
		__builtin_memcpy(in.addr, &w, 4);
	}
	return sec_handle(&in, sc) ? 0 : 1;
}

SEC("cgroup/connect4")
int sec_cg_connect4(struct bpf_sock_addr *ctx) { return cg_addr(ctx, SEC_KIND_CONNECT, 0); }
SEC("cgroup/connect6")
int sec_cg_connect6(struct bpf_sock_addr *ctx) { return cg_addr(ctx, SEC_KIND_CONNECT, 1); }
SEC("cgroup/bind4")
int sec_cg_bind4(struct bpf_sock_addr *ctx) { return cg_addr(ctx, SEC_KIND_BIND, 0); }
SEC("cgroup/bind6")
int sec_cg_bind6(struct bpf_sock_addr *ctx) { return cg_addr(ctx, SEC_KIND_BIND, 1); }

SEC("cgroup/sock_create")
int sec_cg_sock(struct bpf_sock *ctx)
{
	struct sec_scratch *sc = scratch();
	struct sec_in in;

	if (!sc)
		return 1;
	in_init(&in, SEC_KIND_SOCKET);
	in.side = SEC_SIDE_CG;
	/* The same argument positions as socket(family, type, protocol). */
	in.args[0] = ctx->family;
	in.args[1] = ctx->type;
	in.args[2] = ctx->protocol;
	return sec_handle(&in, sc) ? 0 : 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#endif /* KAGAMI_SECURITY_PROGS_H */
