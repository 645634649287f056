// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Runtime security, classic sched tracepoints (fallback). All code is in security_progs.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define SEC_TP_BTF 0
#include "security_progs.h"
