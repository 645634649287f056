// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* exec events, classic tracepoint sched/sched_process_exec (fallback). All code is in exec_progs.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define EXEC_TP_BTF 0
#include "exec_progs.h"
