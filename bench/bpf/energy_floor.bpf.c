// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The floor of the energy hooks (bench/energy_bench.cc): empty programs on
 * the same three BTF-typed tracepoints as modules/energy's preferred
 * variant. What an attached program costs before it does anything (the
 * trampoline into BPF, the run-time bookkeeping) is the part no accounting
 * design can remove; the module's cost is reported against it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/sched_switch")
int BPF_PROG(floor_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return 0;
}

SEC("tp_btf/softirq_entry")
int BPF_PROG(floor_softirq_entry, unsigned int vec_nr)
{
	return 0;
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(floor_softirq_exit, unsigned int vec_nr)
{
	return 0;
}
