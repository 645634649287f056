/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * PFCP (TS 29.244) constants shared by the BPF parser (bpf/lib/pfcp.h) and
 * the C++ that names and interprets its counters. Plain C, no includes.
 */
#ifndef KAGAMI_ABI_PFCP_H
#define KAGAMI_ABI_PFCP_H

#define PFCP_FLAG_S 0x01
#define PFCP_FLAG_MP 0x02
#define PFCP_FLAG_FO 0x04

#define PFCP_IE_CAUSE 19
#define PFCP_CAUSE_ACCEPTED 1

/* Message types (TS 29.244 table 7.3-1) that both sides need by number. */
#define PFCP_MSG_SESSION_ESTABLISHMENT_REQUEST 50
#define PFCP_MSG_SESSION_ESTABLISHMENT_RESPONSE 51
#define PFCP_MSG_SESSION_DELETION_RESPONSE 55

/*
 * Top-level IEs walked to find the Cause. In every response of TS 29.244
 * (tables 7.4.x / 7.5.x) the Cause is the first or second IE (after Node ID);
 * 16 leaves room for reordered or vendor IEs in front of it. A response that
 * still has IEs left after 16 without a Cause is counted
 * KG_PERR_PFCP_TOO_MANY_IES.
 */
#define PFCP_MAX_IES 16

/*
 * Messages per datagram. The FO flag lets a node append a message to a
 * response (section 7.2.2.1, used for Session Report piggybacking); chains
 * longer than a few are not produced by any implementation. 4 bounds the work.
 */
#define PFCP_MAX_MSGS 4

#endif /* KAGAMI_ABI_PFCP_H */
