// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* exec events: one record per successful execve/execveat from the classic
 * tracepoint sched/sched_process_exec (stable ABI, no BTF of the event
 * needed beyond CO-RE for task_struct). Every exec in scope is either
 * submitted or counted in exec_drops by cause, so
 *   EXEC_CTR_SEEN == EXEC_CTR_SENT + drops[RING_FULL] + drops[RATE_LIMIT]. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

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

SEC("tracepoint/sched/sched_process_exec")
int exec_tp(struct trace_event_raw_sched_process_exec *ctx)
{
	struct exec_config *cfg;
	struct exec_event *e;
	struct task_struct *task;
	__u32 zero = 0, loc, off, len;
	__u64 cgid, uid_gid;

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
	e->pid = ctx->pid;
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	uid_gid = bpf_get_current_uid_gid();
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	e->cgroup_id = cgid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	/* __data_loc: low 16 bits offset from the record start, high 16 bits
	 * length of the string with its NUL. */
	loc = ctx->__data_loc_filename;
	off = loc & 0xffff;
	len = loc >> 16;
	e->filename_len = len;
	e->filename[0] = '\0';
	if (bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + off) < 0)
		e->filename[0] = '\0';
	if (len > sizeof(e->filename))
		e->hdr.flags |= EXEC_F_FILENAME_TRUNCATED;
	count(EXEC_CTR_SENT);
	kg_event_submit(e);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
