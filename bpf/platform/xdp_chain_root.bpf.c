// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * XDP chain root: the one program the manager attaches to an interface that
 * hosts several XDP programs. It owns nothing but the interface's prog_array
 * (lib/xdp_chain.h) and hands each packet to the first occupied slot.
 * With no slot occupied every packet passes, so an emptied chain is harmless.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#define KAGAMI_XDP_CHAIN_ROOT /* starts the chain: slot -1 */
#include "lib/xdp_chain.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int kagami_xdp_root(struct xdp_md *ctx)
{
	return kagami_xdp_chain_next(ctx);
}
