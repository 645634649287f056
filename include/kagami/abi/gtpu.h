/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * GTP-U (TS 29.281) constants shared by the BPF parser (bpf/lib/gtpu.h) and
 * the C++ that names and interprets its counters. Plain C, no includes.
 */
#ifndef KAGAMI_ABI_GTPU_H
#define KAGAMI_ABI_GTPU_H

#define GTPU_MSG_ECHO_REQUEST 1
#define GTPU_MSG_ECHO_RESPONSE 2
#define GTPU_MSG_ERROR_INDICATION 26
#define GTPU_MSG_SUPPORTED_EXT_HDRS 31
#define GTPU_MSG_END_MARKER 254
#define GTPU_MSG_TPDU 255

#define GTPU_FLAG_PN 0x01
#define GTPU_FLAG_S 0x02
#define GTPU_FLAG_E 0x04

#define GTPU_EXT_PDU_SESSION_CONTAINER 0x85

/*
 * Extension headers walked per packet. TS 29.281 section 5.2.2 defines
 * about ten types and real N3/N9 chains carry one or two (PDU Session
 * Container, sometimes with a PDCP PDU number or NR RAN container). Eight
 * covers any sensible combination; a longer chain is hostile and counted
 * as KG_PERR_GTPU_EXT_TOO_MANY.
 */
#define GTPU_MAX_EXT 8

#endif /* KAGAMI_ABI_GTPU_H */
