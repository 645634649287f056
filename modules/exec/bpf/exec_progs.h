/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* exec events, the code of both hook variants (exec.bpf.c: classic
 * tracepoint sched/sched_process_exec; exec_btf.bpf.c: tp_btf, typed
 * arguments, no trace record). One record per successful execve/execveat;
 * every exec in scope is either submitted or counted in exec_drops by cause:
 *   EXEC_CTR_SEEN == EXEC_CTR_SENT + drops[RING_FULL] + drops[RATE_LIMIT].
 * The includer defines EXEC_TP_BTF (0 or 1) and includes vmlinux.h and the
 * libbpf headers first. */
#ifndef KAGAMI_EXEC_PROGS_H
#define KAGAMI_EXEC_PROGS_H

#include "lib/events.h"
#include "lib/ratelimit.h"
#include "../abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EXEC_RING_BYTES_DEFAULT);
} exec_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KG_DROP__MAX);
	__type(key, __u32);
	__type(value, __u64);
} exec_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EXEC_CTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} exec_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_config);
} exec_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} exec_scope SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, EXEC_RL_MAX_ENTRIES);
	__type(key, __u64);
	__type(value, struct kg_ratelimit_state);
} exec_rl SEC(".maps");

static __always_inline void count(__u32 ctr)
{
	__u64 *p = bpf_map_lookup_elem(&exec_counters, &ctr);

	if (p)
		*p += 1;
}

/* src: the exec'd path in kernel memory. len: its length with the NUL
 * when the hook knows it (classic tracepoint), 0 when not (tp_btf). */
static __always_inline int exec_emit(__u32 pid, const char *src, __u32 len)
{
	struct exec_config *cfg;
	struct exec_event *e;
	struct task_struct *task;
	__u32 zero = 0;
	__u64 cgid, uid_gid;
	long n;
	char last = 0;

	/* A CO-RE type-id relocation (one ld_imm64, never 0) that puts struct
	 * exec_event into the object's BTF: ring records have no map type of
	 * their own, and the ABI test compares the layout from the BTF. */
	if (bpf_core_type_id_local(struct exec_event) == 0)
		return 0;
	cfg = bpf_map_lookup_elem(&exec_config, &zero);
	if (!cfg)
		return 0;
	/* 1: current is under the cgroup in slot 0; 0: not; <0: the slot is
	 * empty (scope on but no cgroup set: nothing is in scope). */
	if (cfg->scope && bpf_current_task_under_cgroup(&exec_scope, 0) != 1) {
		count(EXEC_CTR_OUT_OF_SCOPE);
		return 0;
	}
	count(EXEC_CTR_SEEN);
	cgid = bpf_get_current_cgroup_id();
	if (!kg_ratelimit_allow(&exec_rl, &cgid, cfg->rate, cfg->burst, &exec_drops))
		return 0;
	e = kg_event_reserve(&exec_events, &exec_drops, sizeof(*e), EXEC_KIND_EXEC);
	if (!e)
		return 0;

	task = (struct task_struct *)bpf_get_current_task();
	e->pid = pid;
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	uid_gid = bpf_get_current_uid_gid();
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	e->cgroup_id = cgid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	e->filename[0] = '\0';
	n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), src);
	if (n < 0) {
		e->filename[0] = '\0';
		n = 0;
	}
	if (len) {
		e->filename_len = len;
		if (len > sizeof(e->filename))
			e->hdr.flags |= EXEC_F_FILENAME_TRUNCATED;
	} else {
		/* A full buffer is a truncation only if the source goes on
		 * past the last byte copied. */
		if (n == sizeof(e->filename) &&
		    (bpf_probe_read_kernel(&last, 1, src + sizeof(e->filename) - 1) != 0 || last != '\0'))
			e->hdr.flags |= EXEC_F_FILENAME_TRUNCATED;
		e->filename_len = (e->hdr.flags & EXEC_F_FILENAME_TRUNCATED) ? 0 : (__u32)n;
	}
	count(EXEC_CTR_SENT);
	kg_event_submit(e);
	return 0;
}

#if EXEC_TP_BTF
SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return exec_emit(BPF_CORE_READ(p, pid), BPF_CORE_READ(bprm, filename), 0);
}
#else
SEC("tracepoint/sched/sched_process_exec")
int exec_tp(struct trace_event_raw_sched_process_exec *ctx)
{
	/* __data_loc: low 16 bits offset from the record start, high 16 bits
	 * length of the string with its NUL. */
	__u32 loc = ctx->__data_loc_filename;

	return exec_emit(ctx->pid, (const char *)ctx + (loc & 0xffff), loc >> 16);
}
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#endif /* KAGAMI_EXEC_PROGS_H */
