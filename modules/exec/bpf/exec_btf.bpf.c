// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* exec events, tp_btf sched_process_exec (preferred: typed arguments). All code is in exec_progs.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define EXEC_TP_BTF 1
#include "exec_progs.h"
