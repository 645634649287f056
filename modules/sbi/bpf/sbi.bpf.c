/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sbi: copies the TCP payload of watched connections up to userspace, where
 * modules/sbi/decoder.cc reassembles it and decodes HTTP/2 (h2c) and
 * HTTP/1.1 (docs/sbi.md).
 *
 * Programs (one per hook):
 *   sbi_tc_ingress / sbi_tc_egress  TC clsact on the operator's interfaces;
 *   sbi_ssl_*_entry / sbi_ssl_*_ret uprobes/uretprobes on libssl's
 *                                    SSL_write, SSL_read, SSL_write_ex,
 *                                    SSL_read_ex: the plaintext of TLS SBI;
 *   sbi_replay                       XDP over replay batches
 *                                    (include/kagami/abi/replay.h), driven by
 *                                    `kagami replay` through BPF_PROG_TEST_RUN.
 *
 * What is copied: every TCP segment with payload, SYN, FIN or RST whose
 * port (either end) is in sbi_config.port_bits and whose address (either
 * end) is in sbi_cidrs, when those restrictions are on. The replay program
 * copies every TCP segment: userspace recognises HTTP by its content.
 * Payload goes in records of at most SBI_CHUNK bytes through
 * bpf_ringbuf_output() from a per-CPU scratch record (the ring gets only the
 * bytes used, not SBI_CHUNK each); a full ring is counted in sbi_drops and
 * seen by userspace as a sequence gap.
 *
 * No vmlinux.h: every type here is UAPI or a wire format (as obs.bpf.c).
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <asm/ptrace.h> /* struct pt_regs (UAPI, x86-64 names rdi, rsi, ...) for uprobes */
#include <bpf/bpf_tracing.h>

#include "modules/sbi/abi.h"
#include "kagami/abi/replay.h"
#include "lib/events.h"
#include "lib/parse.h"
#include "lib/replay.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TC_ACT_OK 0

/* Bytes a TC program makes linear before parsing: Ethernet, two VLAN tags,
 * IPv6 with a few extension headers and a TCP header with options. The
 * payload itself is read with bpf_skb_load_bytes(), linear or not. */
#define SBI_PULL_LEN 256

/* The ring. 4 MiB by default; the module patches max_entries (ring_kb). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SBI_RING_BYTES_DEFAULT);
} sbi_ring SEC(".maps");

/* Records lost by cause (KG_DROP_RING_FULL), per CPU as every module's. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KG_DROP__MAX);
	__type(key, __u32);
	__type(value, __u64);
} sbi_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SBI_CTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sbi_counters SEC(".maps");

/* One value: the flags and the port bitmap (8 KiB; one lookup per packet
 * instead of one per port). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sbi_config);
} sbi_config SEC(".maps");

/* Watched prefixes, IPv4 mapped into IPv6 (prefix length + 96). An LPM trie
 * answers "is this address inside any of them" in one lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SBI_CIDRS_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sbi_cidr_key);
	__type(value, __u8);
} sbi_cidrs SEC(".maps");

/* SSL_* entry arguments until the return probe of the same thread: one
 * call in flight per thread, so 16384 threads calling libssl at once. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct sbi_ssl_args);
} sbi_ssl_args SEC(".maps");

/* The record being filled: 2 KiB do not fit on the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sbi_seg);
} sbi_scratch SEC(".maps");

static __always_inline void count(__u32 ctr, __u64 n)
{
	__u64 *p = bpf_map_lookup_elem(&sbi_counters, &ctr);

	if (p)
		*p += n;
}

static __always_inline int port_on(const struct sbi_config *cfg, __u16 port)
{
	return (cfg->port_bits[(port >> 6) & 1023] >> (port & 63)) & 1;
}

static __always_inline int addr_on(const __u8 *addr)
{
	struct sbi_cidr_key k = {.prefixlen = 128};

	__builtin_memcpy(k.addr, addr, 16);
	return bpf_map_lookup_elem(&sbi_cidrs, &k) != NULL;
}

/* Live programs: is this connection watched? Replay watches everything. */
static __always_inline int watched(const struct l3l4 *m)
{
	__u32 zero = 0;
	struct sbi_config *cfg = bpf_map_lookup_elem(&sbi_config, &zero);

	if (!cfg || !(cfg->flags & SBI_CFG_ACTIVE))
		return 0;
	if ((cfg->flags & SBI_CFG_PORTS) && !port_on(cfg, m->sport) && !port_on(cfg, m->dport))
		return 0;
	if ((cfg->flags & SBI_CFG_CIDRS) && !addr_on(m->saddr) && !addr_on(m->daddr))
		return 0;
	return 1;
}

/*
 * Sends the payload at `off` (`left` bytes, sequence number `seq`) up the
 * ring in records of at most SBI_CHUNK bytes; the scratch record's header
 * is already filled. Global functions: the verifier checks each once, with
 * unknown arguments, instead of once per parse path of the caller (inlined,
 * the chunk loop times the parse paths exceeded a million instructions).
 */
#define SBI_EMIT_BODY(LOAD)                                                        \
	__u32 zero = 0, i;                                                         \
	struct sbi_seg *rec = bpf_map_lookup_elem(&sbi_scratch, &zero);            \
                                                                                   \
	if (!rec)                                                                  \
		return 0;                                                          \
	/* SBI_MAX_CHUNKS records cover the largest payload a packet can carry \
	 * (64 KiB, see abi.h); the first iteration also carries a             \
	 * payload-less SYN/FIN/RST. */                                           \
	for (i = 0; i < SBI_MAX_CHUNKS; i++) {                                     \
		__u32 n = left > SBI_CHUNK ? SBI_CHUNK : left;                     \
                                                                                   \
		rec->seq = seq;                                                    \
		rec->data_len = n;                                                 \
		rec->hdr.len = SBI_SEG_HDR_BYTES + n;                              \
		if (n > SBI_CHUNK)                                                 \
			return 0;                                                  \
		if (n > 0 && LOAD(ctx, off, rec->data, n))                         \
			return 0;                                                  \
		if (bpf_ringbuf_output(&sbi_ring, rec, SBI_SEG_HDR_BYTES + n, 0)) { \
			kg_drop(&sbi_drops, KG_DROP_RING_FULL);                    \
		} else {                                                           \
			count(SBI_CTR_RECORDS, 1);                                 \
			count(SBI_CTR_BYTES, n);                                   \
		}                                                                  \
		/* SYN and FIN take a sequence number of their own; only the   \
		 * first record carries them. */                                   \
		rec->flags &= ~(SBI_SEG_SYN | SBI_SEG_FIN | SBI_SEG_RST);          \
		left -= n;                                                         \
		off += n;                                                          \
		seq += n;                                                          \
		if (!left)                                                         \
			return 0;                                                  \
	}                                                                          \
	count(SBI_CTR_PAYLOAD_CUT, 1);                                             \
	return 0;

__noinline int sbi_emit_skb(struct __sk_buff *ctx, __u32 off, __u32 left, __u32 seq)
{
	if (!ctx)
		return 0;
	SBI_EMIT_BODY(bpf_skb_load_bytes)
}

__noinline int sbi_emit_xdp(struct xdp_md *ctx, __u32 off, __u32 left, __u32 seq)
{
	if (!ctx)
		return 0;
	SBI_EMIT_BODY(bpf_xdp_load_bytes)
}

struct sbi_frame {
	__u64 ts;
	__u32 base;    /* frame offset in the packet buffer (replay batches) */
	__u32 size;    /* frame bytes from base */
	__u32 ifindex;
	__u8 source;   /* SBI_SRC_* */
	__u8 xdp;      /* constant per call site: which load helper */
	__u8 live;     /* constant per call site: apply the watch filter */
	__u8 pad;
};

/*
 * Parses one frame and copies its TCP payload. Returns nothing: everything
 * it cannot do is counted. `data`/`data_end` are the context's packet
 * pointers.
 */
static __always_inline void sbi_frame(void *ctx, void *data, void *data_end, const struct sbi_frame *f)
{
	struct cursor c = {.data = data, .data_end = data_end, .off = f->base, .size = f->base + f->size};
	struct l3l4 m = {};
	struct sbi_seg *rec;
	__u32 zero = 0, end, seq, left;
	__u8 *th, flags = 0;

	if (parse_l3(&c, &m)) {
		count(SBI_CTR_NOT_PARSED, 1);
		return;
	}
	if (m.family == 0 || m.l4 != IPPROTO_TCP || m.frag_later)
		return;
	if (parse_tcp(&c, &m)) {
		count(SBI_CTR_NOT_PARSED, 1);
		return;
	}
	count(SBI_CTR_TCP, 1);
	if (f->live && !watched(&m))
		return;
	count(SBI_CTR_WATCHED, 1);
	th = cur_ptr(&c, m.l4_off, 20);
	if (!th)
		return;
	seq = be32_at(th + 4);
	if (m.tcp_flags & 0x02)
		flags |= SBI_SEG_SYN;
	if (m.tcp_flags & 0x01)
		flags |= SBI_SEG_FIN;
	if (m.tcp_flags & 0x04)
		flags |= SBI_SEG_RST;
	if (m.tcp_flags & 0x10)
		flags |= SBI_SEG_ACK;
	/* Payload ends where the IP length says (Ethernet padding is not
	 * payload), or where the frame we hold ends (snapped, cut). */
	end = m.l4_end < c.size ? m.l4_end : c.size;
	left = end > m.payload_off ? end - m.payload_off : 0;
	if (!left && !(flags & (SBI_SEG_SYN | SBI_SEG_FIN | SBI_SEG_RST)))
		return; /* a bare ACK says nothing userspace needs */
	rec = bpf_map_lookup_elem(&sbi_scratch, &zero);
	if (!rec)
		return;
	rec->hdr.kind = SBI_KIND_SEG;
	rec->hdr.flags = 0;
	rec->hdr.mono_ns = f->ts;
	__builtin_memcpy(rec->saddr, m.saddr, 16);
	__builtin_memcpy(rec->daddr, m.daddr, 16);
	rec->sport = m.sport;
	rec->dport = m.dport;
	rec->payload_len = left;
	rec->flags = flags;
	rec->family = m.family;
	rec->source = f->source;
	rec->pad = 0;
	rec->ifindex = f->ifindex;
	if (f->xdp)
		sbi_emit_xdp(ctx, m.payload_off, left, seq);
	else
		sbi_emit_skb(ctx, m.payload_off, left, seq);
}

static __always_inline int sbi_tc(struct __sk_buff *skb, __u8 source)
{
	struct sbi_frame f = {};

	if (skb->len > SBI_PULL_LEN)
		bpf_skb_pull_data(skb, SBI_PULL_LEN);
	else
		bpf_skb_pull_data(skb, skb->len);
	f.ts = bpf_ktime_get_ns();
	f.base = 0;
	f.size = skb->len;
	f.ifindex = skb->ifindex;
	f.source = source;
	f.xdp = 0;
	f.live = 1;
	sbi_frame(skb, (void *)(long)skb->data, (void *)(long)skb->data_end, &f);
	/* Passive: never changes the packet's fate. */
	return TC_ACT_OK;
}

SEC("tc")
int sbi_tc_ingress(struct __sk_buff *skb)
{
	return sbi_tc(skb, SBI_SRC_TC_INGRESS);
}

SEC("tc")
int sbi_tc_egress(struct __sk_buff *skb)
{
	return sbi_tc(skb, SBI_SRC_TC_EGRESS);
}


/* ---- TLS plaintext: libssl uprobes ------------------------------------------ */

/* Copies `len` bytes of user memory at `ptr` up the ring as TLS records
 * (header already in the scratch record). Global: verified once. */
__noinline int sbi_emit_user(__u64 ptr, __u32 left)
{
	__u32 zero = 0, i, off = 0;
	struct sbi_seg *rec = bpf_map_lookup_elem(&sbi_scratch, &zero);

	if (!rec)
		return 0;
	/* SBI_MAX_CHUNKS x 2 KiB = 66 KiB: four full TLS records (16 KiB each)
	 * per call; a larger SSL_write is cut and counted (the decoder then
	 * sees a stream it cannot follow and says so). */
	for (i = 0; i < SBI_MAX_CHUNKS; i++) {
		__u32 n = left > SBI_CHUNK ? SBI_CHUNK : left;

		rec->data_len = n;
		rec->hdr.len = SBI_SEG_HDR_BYTES + n;
		if (n == 0 || n > SBI_CHUNK)
			return 0;
		if (bpf_probe_read_user(rec->data, n, (void *)(ptr + off)))
			return 0;
		if (bpf_ringbuf_output(&sbi_ring, rec, SBI_SEG_HDR_BYTES + n, 0)) {
			kg_drop(&sbi_drops, KG_DROP_RING_FULL);
		} else {
			count(SBI_CTR_RECORDS, 1);
			count(SBI_CTR_BYTES, n);
		}
		left -= n;
		off += n;
		if (!left)
			return 0;
	}
	count(SBI_CTR_PAYLOAD_CUT, 1);
	return 0;
}

static __always_inline int ssl_entry(struct pt_regs *ctx, __u32 write, int ex)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sbi_ssl_args a = {};

	a.ssl = PT_REGS_PARM1(ctx);
	a.buf = PT_REGS_PARM2(ctx);
	/* SSL_write_ex(ssl, buf, num, size_t *written) */
	a.out_len = ex ? PT_REGS_PARM4(ctx) : 0;
	a.write = write;
	bpf_map_update_elem(&sbi_ssl_args, &id, &a, BPF_ANY);
	return 0;
}

static __always_inline int ssl_return(struct pt_regs *ctx, int ex)
{
	__u64 id = bpf_get_current_pid_tgid(), n = 0;
	struct sbi_ssl_args *a = bpf_map_lookup_elem(&sbi_ssl_args, &id);
	struct sbi_seg *rec;
	__u32 zero = 0;
	long rc = PT_REGS_RC(ctx);

	if (!a)
		return 0;
	if (ex) {
		/* 1 on success, the count in *written / *readbytes. */
		if (rc == 1 && a->out_len)
			bpf_probe_read_user(&n, sizeof(n), (void *)a->out_len);
	} else if (rc > 0) {
		n = rc;
	}
	rec = bpf_map_lookup_elem(&sbi_scratch, &zero);
	if (n && rec) {
		rec->hdr.kind = SBI_KIND_SEG;
		rec->hdr.flags = 0;
		rec->hdr.mono_ns = bpf_ktime_get_ns();
		__builtin_memset(rec->saddr, 0, 16);
		__builtin_memset(rec->daddr, 0, 16);
		__builtin_memcpy(rec->saddr, &a->ssl, 8);
		rec->sport = 0;
		rec->dport = 0;
		rec->seq = 0;
		rec->payload_len = n > 0xffffffff ? 0xffffffff : (__u32)n;
		rec->flags = SBI_SEG_TLS | (a->write ? SBI_SEG_TLS_WRITE : 0);
		rec->family = 0;
		rec->source = SBI_SRC_TLS;
		rec->pad = 0;
		rec->ifindex = id >> 32;
		count(SBI_CTR_WATCHED, 1);
		sbi_emit_user(a->buf, rec->payload_len);
	}
	bpf_map_delete_elem(&sbi_ssl_args, &id);
	return 0;
}

SEC("uprobe")
int sbi_ssl_write_entry(struct pt_regs *ctx) { return ssl_entry(ctx, 1, 0); }
SEC("uretprobe")
int sbi_ssl_write_ret(struct pt_regs *ctx) { return ssl_return(ctx, 0); }
SEC("uprobe")
int sbi_ssl_read_entry(struct pt_regs *ctx) { return ssl_entry(ctx, 0, 0); }
SEC("uretprobe")
int sbi_ssl_read_ret(struct pt_regs *ctx) { return ssl_return(ctx, 0); }
SEC("uprobe")
int sbi_ssl_write_ex_entry(struct pt_regs *ctx) { return ssl_entry(ctx, 1, 1); }
SEC("uretprobe")
int sbi_ssl_write_ex_ret(struct pt_regs *ctx) { return ssl_return(ctx, 1); }
SEC("uprobe")
int sbi_ssl_read_ex_entry(struct pt_regs *ctx) { return ssl_entry(ctx, 0, 1); }
SEC("uretprobe")
int sbi_ssl_read_ex_ret(struct pt_regs *ctx) { return ssl_return(ctx, 1); }

/* One frame of a replay batch. Global: verified once, not once per frame
 * of the batch loop. */
__noinline int sbi_frame_replay(struct xdp_md *ctx, __u32 base, __u32 size, __u64 ts)
{
	struct sbi_frame f = {};

	if (!ctx)
		return 0;
	f.base = base;
	f.size = size;
	f.ts = ts;
	f.ifindex = ctx->ingress_ifindex;
	f.source = SBI_SRC_REPLAY;
	f.xdp = 1;
	f.live = 0;
	sbi_frame(ctx, (void *)(long)ctx->data, (void *)(long)ctx->data_end, &f);
	return 0;
}

/*
 * Replay: a batch of frames per BPF_PROG_TEST_RUN. Never attached by
 * Kagami; a packet without the batch magic passes untouched.
 */
SEC("xdp")
int sbi_replay(struct xdp_md *ctx)
{
	__u32 off = KG_REPLAY_FIRST, count_ = 0, i;

	if (kg_replay_batch(ctx, &count_))
		return XDP_PASS;
	/* KG_REPLAY_MAX_FRAMES is the most records the driver puts in a batch. */
	for (i = 0; i < KG_REPLAY_MAX_FRAMES; i++) {
		struct kg_replay_frame f;

		if (i >= count_)
			return XDP_PASS;
		if (kg_replay_next(ctx, &off, &f))
			break;
		count(SBI_CTR_REPLAY_FRAMES, 1);
		sbi_frame_replay(ctx, f.base, f.cap, f.ts_ns);
	}
	if (i >= count_)
		return XDP_PASS;
	count(SBI_CTR_REPLAY_BAD_BATCH, 1);
	return XDP_PASS;
}
