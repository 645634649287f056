// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Deliberately rejected by the verifier: reads packet memory without a bounds
 * check. The manager must refuse it with the tail of the verifier log.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int rejected_xdp(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data;

	return p[20] == 17 ? XDP_DROP : XDP_PASS;
}
