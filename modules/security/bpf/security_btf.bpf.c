// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Runtime security, tp_btf sched hooks (preferred where the probe finds tp_btf). All code is in security_progs.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define SEC_TP_BTF 1
#include "security_progs.h"
