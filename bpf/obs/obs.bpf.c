// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Transport and 5G user-plane observability. Being written (issue 3). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int obs_tc_ingress(struct __sk_buff *skb)
{
	return 0;
}
