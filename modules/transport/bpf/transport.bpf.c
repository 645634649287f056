// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Transport counters, preferred variant: BTF-typed tracepoints (tp_btf).
 * All code is in transport_progs.h; see modules/transport/README.md. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define TRANSPORT_TP_BTF 1
#include "transport_progs.h"
