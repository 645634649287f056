// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Energy accounting, fallback variant (classic tracepoints) with the
 * activity counter (energy_pmu). All code is in energy_progs.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define ENERGY_TP_BTF 0
#define ENERGY_PMU 1
#include "energy_progs.h"
