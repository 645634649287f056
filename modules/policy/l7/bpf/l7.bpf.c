// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* L7 policy, HTTP/1.1, on the server's socket receive path.
 *
 *   l7_sockops  (cgroup sockops) puts every accepted connection on a policed
 *               port (l7_ports) into l7_socks and gives it a state (l7_conns);
 *   l7_parser   (sk_skb/stream_parser) frames the stream: one request head
 *               (up to CRLF CRLF), then its body (Content-Length) in chunks;
 *               0 = wait, so a head split across segments is judged whole;
 *   l7_verdict  (sk_skb/stream_verdict) judges a head against l7_rules:
 *               SK_PASS to the server, or the same bytes rewritten into an
 *               "HTTP/1.1 403 Forbidden" and redirected to the EGRESS of the
 *               same socket, so the client reads a real 403 on its own
 *               connection and the server never sees the request.
 *
 * Two facts of this kernel shape the code (docs/policy-l7.md):
 *   - the skb a stream program sees starts where the received skb starts,
 *     not where the message starts: a second pipelined request in one
 *     segment sits at strp_msg.offset, which only the kernel context has
 *     (bpf_cast_to_kern_ctx);
 *   - a redirected message is sent as strp_msg.full_len bytes from that
 *     offset whatever bpf_skb_change_tail did, so the 403 is written over
 *     the request in place and padded to exactly the request's length.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "lib/events.h"
#include "lib/ratelimit.h"
#include "modules/policy/l7/abi.h"

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct l7_conn {
	__u32 body_left;  /* body bytes of an allowed request still to pass */
	__u8 poisoned;    /* after a deny that closes: every later byte is dropped */
	__u8 drop_body;   /* body_left belongs to a denied request: drop it */
	__u16 local_port;
	__u32 peer_ip4, local_ip4;
	__u16 peer_port;
	__u8 h2c;         /* the parser framed an HTTP/2 preface: the verdict refuses it */
	__u8 pad2;
	__u32 src_ident;
};

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, L7_MAX_CONNS);
	__type(key, __u64);   /* socket cookie */
	__type(value, __u64);
} l7_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7_MAX_CONNS);
	__type(key, __u64);
	__type(value, struct l7_conn);
} l7_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l7_cfg);
} l7_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, __u8);
} l7_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * L7_MAX_RULES);  /* two halves: see l7_cfg.base */
	__type(key, __u32);
	__type(value, struct l7_rule);
} l7_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} l7_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct l7_stat_key);
	__type(value, struct l7_stat_val);
} l7_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} l7_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KG_DROP__MAX);
	__type(key, __u32);
	__type(value, __u64);
} l7_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kg_ratelimit_state);
} l7_rl SEC(".maps");

/* The head being judged and the 403 being written: too big for the stack. */
struct l7_scratch {
	char head[L7_MAX_HEAD];
	char resp[L7_MAX_HEAD];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l7_scratch);
} l7_scratch SEC(".maps");

#define HMASK (L7_MAX_HEAD - 1)  /* L7_MAX_HEAD is a power of two */

SEC("sockops")
int l7_sockops(struct bpf_sock_ops *ops)
{
	__u64 cookie;

	if (ops->op == BPF_SOCK_OPS_STATE_CB) {
		if (ops->args[1] == BPF_TCP_CLOSE) {
			cookie = bpf_get_socket_cookie(ops);
			bpf_map_delete_elem(&l7_conns, &cookie);
		}
		return 1;
	}
	if (ops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB || ops->family != 2 /* AF_INET */)
		return 1;
	__u16 port = (__u16)ops->local_port;
	if (!bpf_map_lookup_elem(&l7_ports, &port))
		return 1;
	struct l7_conn c = {};
	c.local_port = port;
	c.peer_ip4 = ops->remote_ip4;
	c.local_ip4 = ops->local_ip4;
	c.peer_port = (__u16)bpf_ntohl(ops->remote_port);
	__u32 *id = bpf_map_lookup_elem(&l7_peers, &c.peer_ip4);
	c.src_ident = id ? *id : 0;
	cookie = bpf_get_socket_cookie(ops);
	bpf_map_update_elem(&l7_conns, &cookie, &c, BPF_ANY);
	bpf_sock_ops_cb_flags_set(ops, BPF_SOCK_OPS_STATE_CB_FLAG);
	/* A failed insert leaves the connection unjudged: count it as a deny
	 * with no state? It never reaches the verdict, so the state says so
	 * and userspace counts sockhash inserts against accepted connections. */
	bpf_sock_hash_update(ops, &l7_socks, &cookie, BPF_NOEXIST);
	return 1;
}

/* The stream parser's offset and the message length (kernel context:
 * struct sk_skb_cb in skb->cb). */
static __always_inline void strp_pos(struct __sk_buff *skb, int *off, int *full)
{
	struct sk_buff *k = bpf_cast_to_kern_ctx(skb);
	struct sk_skb_cb *cb = (struct sk_skb_cb *)k->cb;

	*off = BPF_CORE_READ(cb, strp.strp.offset);
	*full = BPF_CORE_READ(cb, strp.strp.full_len);
}

struct scan_ctx {
	char *buf;
	__u32 n;
	__u32 end;  /* head length (just past CRLF CRLF); 0 = not found */
};

static long scan_end(__u64 i, struct scan_ctx *c)
{
	if (i + 3 >= c->n)
		return 1;
	char *b = c->buf;
	if (b[i & HMASK] == '\r' && b[(i + 1) & HMASK] == '\n' && b[(i + 2) & HMASK] == '\r' &&
	    b[(i + 3) & HMASK] == '\n') {
		c->end = i + 4;
		return 1;
	}
	return 0;
}

/* Copies n (1..L7_MAX_HEAD) bytes at off into buf and finds the end of head. */
static __always_inline __u32 find_head_end(struct __sk_buff *skb, int off, __u32 n, char *buf)
{
	if (n > L7_MAX_HEAD)
		n = L7_MAX_HEAD;
	if (n < 4)
		return 0;
	if (bpf_skb_load_bytes(skb, off, buf, n))
		return 0;
	struct scan_ctx c = {buf, n, 0};
	/* Bounded: one step per byte of at most L7_MAX_HEAD copied bytes. */
	bpf_loop(L7_MAX_HEAD, scan_end, &c, 0);
	return c.end;
}

/* "PRI * HTTP/2" as two little-endian words: two compares, few verifier states. */
static __always_inline int is_h2_preface(const char *h)
{
	return *(const __u64 *)h == 0x5448202a20495250ULL /* "PRI * HT" */ &&
	       *(const __u32 *)(h + 8) == 0x322f5054U /* "TP/2" */;
}

/* GOAWAY (RFC 9113 6.8), 24 bytes to replace the preface exactly: length 15,
 * type 7, no flags, stream 0, last stream 0, HTTP_1_1_REQUIRED (0xd), and
 * 7 bytes of debug data. */
static const char kGoaway[L7_H2_PREFACE_LEN] = {0, 0, 15, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0d,
						'k', 'a', 'g', 'a', 'm', 'i', '\n'};

SEC("sk_skb/stream_parser")
int l7_parser(struct __sk_buff *skb)
{
	int off, full;
	__u64 cookie = bpf_get_socket_cookie(skb);
	__u32 zero = 0;

	strp_pos(skb, &off, &full);
	if (off < 0 || (__u32)off >= skb->len)
		return 0;
	__u32 avail = skb->len - off;
	struct l7_conn *c = bpf_map_lookup_elem(&l7_conns, &cookie);
	if (!c || c->poisoned)
		return avail;  /* the verdict denies / drops it */
	if (c->body_left)
		return c->body_left < avail ? c->body_left : avail;
	struct l7_scratch *s = bpf_map_lookup_elem(&l7_scratch, &zero);
	if (!s)
		return avail;  /* cannot happen (per-CPU array of one); the verdict judges */
	__u32 end = find_head_end(skb, off, avail, s->head);
	/* "PRI * HTTP/2.0\r\n\r\n" ends like a head at 18 bytes; the preface
	 * is 24: one message, which the verdict refuses with a GOAWAY. */
	if (end == 18 && is_h2_preface(s->head)) {
		if (avail < L7_H2_PREFACE_LEN)
			return 0;
		c->h2c = 1;
		return L7_H2_PREFACE_LEN;
	}
	if (end)
		return end;
	/* No end of head in L7_MAX_HEAD bytes: a message of that size, which the
	 * verdict denies as oversized. Fewer bytes: wait for more. */
	return avail >= L7_MAX_HEAD ? L7_MAX_HEAD : 0;
}

/* --- judging --- */

struct match_ctx {
	char *head;
	__u32 mlen, plen;  /* method and request-target lengths */
	__u32 poff;        /* request-target offset in head */
	__u16 port;
	__u32 src;
	__u32 nrules, base;
	__u32 matched;     /* rule_id, 0 = none */
};

struct cmp_ctx {
	char *a;          /* head bytes at an offset (masked) */
	__u32 aoff;
	const char *b;    /* pattern */
	__u32 n;
	__u32 bad;
};

static long cmp_step(__u64 i, struct cmp_ctx *c)
{
	if (i >= c->n || i >= L7_MAX_PATH)
		return 1;
	if (c->a[(c->aoff + i) & HMASK] != c->b[i & (L7_MAX_PATH - 1)]) {
		c->bad = 1;
		return 1;
	}
	return 0;
}

static long match_rule(__u64 i, struct match_ctx *m)
{
	if (i >= m->nrules)
		return 1;
	__u32 k = m->base + i;
	struct l7_rule *r = bpf_map_lookup_elem(&l7_rules, &k);
	if (!r)
		return 1;
	if (r->port != m->port || (r->src_ident && r->src_ident != m->src))
		return 0;
	if (r->method_len) {
		if (r->method_len != m->mlen)
			return 0;
		struct cmp_ctx cm = {m->head, 0, r->method, r->method_len, 0};
		/* Bounded: at most L7_MAX_METHOD (<= L7_MAX_PATH) bytes. */
		bpf_loop(L7_MAX_METHOD, cmp_step, &cm, 0);
		if (cm.bad)
			return 0;
	}
	if (r->path_kind != L7_PATH_ANY) {
		if (r->path_kind == L7_PATH_EXACT && r->path_len != m->plen)
			return 0;
		if (r->path_len > m->plen)
			return 0;
		struct cmp_ctx cp = {m->head, m->poff, r->path, r->path_len, 0};
		/* Bounded: at most L7_MAX_PATH bytes. */
		bpf_loop(L7_MAX_PATH, cmp_step, &cp, 0);
		if (cp.bad)
			return 0;
	}
	m->matched = r->rule_id;
	return 1;
}

struct line_ctx {
	char *head;
	__u32 end;
	__u32 sp1, sp2, eol;  /* first SP, second SP, first CR; 0 = not seen */
	__u32 clen;           /* Content-Length value */
	__u8 has_clen, chunked, bad;
};

static __always_inline char lower(char ch)
{
	return (ch >= 'A' && ch <= 'Z') ? ch + 32 : ch;
}

/* True when head[i..] starts with the lower-case name `n` of length len. */
#define HDR_IS(h, i, n) hdr_is(h, i, n, sizeof(n) - 1)
static __always_inline int hdr_is(char *h, __u32 i, const char *n, __u32 len)
{
	/* Unrolled: header names are at most 18 bytes. */
#pragma unroll
	for (int j = 0; j < 18; j++) {
		if ((__u32)j >= len)
			return 1;
		if (lower(h[(i + j) & HMASK]) != n[j])
			return 0;
	}
	return 1;
}

static long line_step(__u64 i, struct line_ctx *l)
{
	if (i >= l->end)
		return 1;
	char ch = l->head[i & HMASK];
	if (!l->eol) {
		if (ch == ' ') {
			if (!l->sp1)
				l->sp1 = i;
			else if (!l->sp2)
				l->sp2 = i;
		} else if (ch == '\r' || ch == '\n') {
			l->eol = i;
		}
		return 0;
	}
	if (i == 0 || l->head[(i - 1) & HMASK] != '\n')
		return 0;
	/* i starts a header line. */
	if (HDR_IS(l->head, i, "transfer-encoding:")) {
		l->chunked = 1;
	} else if (HDR_IS(l->head, i, "content-length:")) {
		__u32 v = 0, j = i + 15, digits = 0;
		/* Bounded: optional whitespace and at most 10 digits. */
		for (int k = 0; k < 16; k++, j++) {
			char d = l->head[j & HMASK];
			if (d == ' ' || d == '\t') {
				if (digits)
					break;
				continue;
			}
			if (d < '0' || d > '9')
				break;
			if (++digits > 9) {
				l->bad = 1;  /* >= 1 GB or garbage: undecidable */
				break;
			}
			v = v * 10 + (d - '0');
		}
		if (!digits || (l->has_clen && l->clen != v))
			l->bad = 1;  /* empty or conflicting Content-Length (smuggling) */
		l->clen = v;
		l->has_clen = 1;
	}
	return 0;
}

static __always_inline void count(__u32 rule, __u8 reason, __u8 verdict, __u16 port, __u64 bytes)
{
	struct l7_stat_key k = {rule, reason, verdict, port};
	struct l7_stat_val *v = bpf_map_lookup_elem(&l7_stats, &k);

	if (v) {
		v->requests++;
		v->bytes += bytes;
		return;
	}
	struct l7_stat_val init = {1, bytes};
	bpf_map_update_elem(&l7_stats, &k, &init, BPF_NOEXIST);
}

/* One flow event, rate-limited per CPU. The method and path are copied
 * from the scratch head (mlen 0: none). Not inlined: three call sites
 * would triple the verifier's work on the verdict. */
#define RV(reason, verdict) ((reason) | ((verdict) << 8))
#define LENS(mlen, plen) ((__u64)(mlen) | ((__u64)(plen) << 32))
static __noinline void emit(struct l7_conn *c, __u32 rule, __u32 rv, __u64 lens, __u32 poff)
{
	__u32 zero = 0;
	__u8 reason = rv & 0xff, verdict = rv >> 8;
	__u32 mlen = (__u32)lens, plen = lens >> 32;
	struct l7_cfg *cfg = bpf_map_lookup_elem(&l7_cfg, &zero);

	if (!cfg || cfg->sample_rate == 0)
		return;
	/* Never true (local type ids are never 0); the reference pulls
	 * struct l7_event into the object's BTF, where the ABI layout test
	 * reads it (ring records have no map type of their own). */
	if (bpf_core_type_id_local(struct l7_event) == 0)
		return;
	if (!kg_ratelimit_allow(&l7_rl, &zero, cfg->sample_rate, cfg->sample_burst, &l7_drops))
		return;
	struct l7_event *e = kg_event_reserve(&l7_events, &l7_drops, sizeof(*e), L7_EVENT_FLOW);
	if (!e)
		return;
	e->rule = rule;
	e->reason = reason;
	e->verdict = verdict;
	e->generation = cfg->generation;
	if (c) {
		e->local_port = c->local_port;
		e->peer_ip4 = c->peer_ip4;
		e->local_ip4 = c->local_ip4;
		e->peer_port = c->peer_port;
		e->src_ident = c->src_ident;
	}
	struct l7_scratch *s = bpf_map_lookup_elem(&l7_scratch, &zero);
	if (s && mlen) {
		if (mlen > L7_MAX_METHOD)
			mlen = L7_MAX_METHOD;
		if (plen > L7_EVENT_PATH) {
			plen = L7_EVENT_PATH;
			e->hdr.flags |= L7_EV_F_PATH_TRUNC;
		}
		e->path_len = plen;
		/* Fixed-size copies; head is followed by resp in the same value,
		 * so head + (poff < L7_MAX_HEAD) + L7_EVENT_PATH stays inside it.
		 * Bytes past mlen/path_len are noise the decoder never reads. */
		bpf_probe_read_kernel(e->method, L7_MAX_METHOD, s->head);
		bpf_probe_read_kernel(e->path, L7_EVENT_PATH, s->head + (poff & HMASK));
		/* The method is NUL-padded (the decoder reads up to the first NUL). */
		for (int i = 0; i < L7_MAX_METHOD; i++)
			if ((__u32)i >= mlen)
				e->method[i] = 0;
	} else {
		__builtin_memset(e->method, 0, sizeof(e->method));
		e->path_len = 0;
	}
	kg_event_submit(e);
}

static const char k403a[] = "HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length:";
static const char k403b[] = "HTTP/1.1 403 Forbidden\r\nContent-Length:";

struct fill_ctx {
	char *resp;
	__u32 from, to;
};
static long fill_step(__u64 i, struct fill_ctx *f)
{
	__u32 k = f->from + i;
	if (k >= f->to)
		return 1;
	f->resp[k & HMASK] = (k + 1 == f->to) ? '\n' : ' ';
	return 0;
}

/* Rewrites the message [off, off+len) into a 403 of exactly len bytes and
 * sends it back out of the same socket. 1 = redirected; 0 = too short (the
 * caller drops the message and poisons the connection). `close` says
 * whether the 403 carries Connection: close. */
static __always_inline int answer_403(struct __sk_buff *skb, struct l7_scratch *s, int off, __u32 len,
				      __u64 cookie, int *closes)
{
	const char *t = k403a;
	__u32 tl = sizeof(k403a) - 1;

	if (len < L7_MIN_403 || len > L7_MAX_HEAD)
		return 0;
	if (len < tl + 5 + 4 + 1) {
		t = k403b;
		tl = sizeof(k403b) - 1;
	}
	*closes = t == k403a;
	/* Header: template, Content-Length in 5 columns (right-aligned with
	 * spaces: OWS), CRLF CRLF, then a body of spaces ending in LF. */
	__u32 hl = tl + 5 + 4;
	__u32 body = len - hl;
	if (t == k403a)
		bpf_probe_read_kernel(s->resp, sizeof(k403a) - 1, k403a);
	else
		bpf_probe_read_kernel(s->resp, sizeof(k403b) - 1, k403b);
	__u32 v = body;
	for (int i = 4; i >= 0; i--) {
		s->resp[(tl + i) & HMASK] = (v || i == 4) ? '0' + v % 10 : ' ';
		v /= 10;
	}
	s->resp[(tl + 5) & HMASK] = '\r';
	s->resp[(tl + 6) & HMASK] = '\n';
	s->resp[(tl + 7) & HMASK] = '\r';
	s->resp[(tl + 8) & HMASK] = '\n';
	struct fill_ctx f = {s->resp, hl, len};
	/* Bounded: at most L7_MAX_HEAD bytes of body. */
	bpf_loop(L7_MAX_HEAD, fill_step, &f, 0);
	if (len > L7_MAX_HEAD || len < 1)
		return 0;
	if (bpf_skb_store_bytes(skb, off, s->resp, len, 0))
		return 0;
	return bpf_sk_redirect_hash(skb, &l7_socks, &cookie, 0) == SK_PASS;
}

/* h2c is not judged in the kernel (docs/policy-l7.md): refused, fail
 * closed, with a frame the client understands, written over the preface.
 * Not inlined: keeps the verdict's verifier states down. */
static __noinline int refuse_h2c(struct __sk_buff *skb, struct l7_conn *c, int off, __u64 cookie)
{
	if (!c)
		return SK_DROP;
	c->poisoned = 1;
	count(0, L7_R_H2C, L7_V_DENY, c->local_port, L7_H2_PREFACE_LEN);
	emit(c, 0, RV(L7_R_H2C, L7_V_DENY), 0, 0);
	if (off < 0 || bpf_skb_store_bytes(skb, off, kGoaway, sizeof(kGoaway), 0))
		return SK_DROP;
	return bpf_sk_redirect_hash(skb, &l7_socks, &cookie, 0);
}

SEC("sk_skb/stream_verdict")
int l7_verdict(struct __sk_buff *skb)
{
	int off, full;
	__u32 zero = 0;
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct l7_cfg *cfg = bpf_map_lookup_elem(&l7_cfg, &zero);
	struct l7_conn *c = bpf_map_lookup_elem(&l7_conns, &cookie);

	strp_pos(skb, &off, &full);
	if (full <= 0 || off < 0)
		return SK_DROP;
	__u32 len = full;
	if (!c) {
		count(0, L7_R_NO_STATE, L7_V_DENY, 0, len);
		emit(0, 0, RV(L7_R_NO_STATE, L7_V_DENY), 0, 0);
		return SK_DROP;
	}
	if (c->poisoned) {
		count(0, L7_R_POISONED, L7_V_DENY, c->local_port, len);
		return SK_DROP;
	}
	if (c->h2c)
		return refuse_h2c(skb, c, off, cookie);
	if (c->body_left) {
		c->body_left = c->body_left > len ? c->body_left - len : 0;
		if (c->drop_body) {
			count(0, L7_R_BODY, L7_V_DENY, c->local_port, len);
			return SK_DROP;
		}
		count(0, L7_R_BODY, L7_V_ALLOW, c->local_port, len);
		return SK_PASS;
	}
	struct l7_scratch *s = bpf_map_lookup_elem(&l7_scratch, &zero);
	if (!s)
		return SK_DROP;
	__u32 end = find_head_end(skb, off, len, s->head);
	__u8 reason = L7_R_NO_RULE;
	__u32 rule = 0;
	struct line_ctx l = {s->head, end};
	if (!end || end != len) {
		reason = L7_R_OVERSIZED;
		goto deny;
	}
	/* Bounded: one step per byte of the head (<= L7_MAX_HEAD). */
	bpf_loop(L7_MAX_HEAD, line_step, &l, 0);
	if (!l.sp1 || !l.sp2 || !l.eol || l.sp2 <= l.sp1 + 1 || l.sp2 > l.eol) {
		reason = L7_R_MALFORMED;
		goto deny;
	}
	if (l.bad) {
		reason = L7_R_MALFORMED;
		goto deny;
	}
	if (l.chunked) {
		reason = L7_R_CHUNKED;
		goto deny;
	}
	/* One 64-bit load: nrules and base of the same policy (abi.h). */
	__u64 nb = cfg ? *(volatile __u64 *)cfg : 0;
	struct match_ctx m = {s->head, l.sp1, l.sp2 - l.sp1 - 1, l.sp1 + 1, c->local_port, c->src_ident,
			      (__u32)nb, (__u32)(nb >> 32), 0};
	/* Bounded: one step per rule in force (<= L7_MAX_RULES). */
	bpf_loop(L7_MAX_RULES, match_rule, &m, 0);
	if (m.matched) {
		c->body_left = l.has_clen ? l.clen : 0;
		c->drop_body = 0;
		count(m.matched, L7_R_RULE, L7_V_ALLOW, c->local_port, len);
		emit(c, m.matched, RV(L7_R_RULE, L7_V_ALLOW), LENS(m.mlen, m.plen), m.poff);
		return SK_PASS;
	}
deny:;
	__u32 mlen = l.sp1, plen = l.sp2 > l.sp1 ? l.sp2 - l.sp1 - 1 : 0;
	count(rule, reason, L7_V_DENY, c->local_port, len);
	emit(c, rule, RV(reason, L7_V_DENY), end ? LENS(mlen, plen) : 0, l.sp1 + 1);
	int closes = 1;
	int sent = answer_403(skb, s, off, len, cookie, &closes);
	/* After a 403 with Connection: close, or one we could not send, or a
	 * request whose end we cannot find (chunked, oversized, malformed):
	 * every later byte of this connection is dropped. A denied request with
	 * a Content-Length body has that body dropped, and the next request on
	 * the connection is judged. */
	if (!sent || closes || reason != L7_R_NO_RULE)
		c->poisoned = 1;
	else if (l.has_clen && l.clen) {
		c->body_left = l.clen;
		c->drop_body = 1;
	}
	if (!sent) {
		count(rule, L7_R_SHORT_HEAD, L7_V_DENY, c->local_port, 0);
		return SK_DROP;
	}
	return SK_PASS;  /* with the redirect recorded: the kernel sends it out */
}
