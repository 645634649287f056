#include "modules/sbi/sbi.h"

#include <arpa/inet.h>
#include <linux/types.h>
#include <net/if.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bpf/elf_patch.h"
#include "bpf/kernel.h"
#include "bpf/map_view.h"
#include "bpf/ringbuf.h"
#include "common/fd.h"
#include "core/config_section.h"
#include "modules/sbi/abi.h"
#include "sbi.skel.h"

namespace kagami::modules {
namespace {

using nlohmann::json;

constexpr const char* kProgram = "sbi";

Result<std::vector<uint64_t>> read_percpu_u64(int fd, uint32_t n) {
  auto v = bpf::ArrayView<uint64_t>::open(fd, "sbi counters");
  if (!v) return v.error();
  return v->read_summed(n);
}

Result<uint16_t> parse_port(const core::ConfigSection& s, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end || errno || v < 1 || v > 65535)
    return s.error("ports", fmt::format("'{}' is not a port (1-65535)", text));
  return static_cast<uint16_t>(v);
}

}  // namespace

Result<std::pair<uint32_t, std::array<uint8_t, 16>>> parse_cidr(const std::string& s) {
  const size_t slash = s.find('/');
  const std::string addr = s.substr(0, slash);
  std::array<uint8_t, 16> a{};
  uint32_t max = 0, base = 0;
  in_addr v4{};
  if (inet_pton(AF_INET, addr.c_str(), &v4) == 1) {
    a[10] = a[11] = 0xff;
    std::memcpy(a.data() + 12, &v4, 4);
    max = 32;
    base = 96;
  } else if (inet_pton(AF_INET6, addr.c_str(), a.data()) == 1) {
    max = 128;
  } else {
    return make_error("'{}' is not an IPv4 or IPv6 address", addr);
  }
  uint32_t len = max;
  if (slash != std::string::npos) {
    const std::string l = s.substr(slash + 1);
    char* end = nullptr;
    const long v = std::strtol(l.c_str(), &end, 10);
    if (l.empty() || *end || v < 0 || v > static_cast<long>(max))
      return make_error("'{}': prefix length must be 0-{}", s, max);
    len = static_cast<uint32_t>(v);
  }
  // Host bits set are an operator's typo more often than not.
  for (uint32_t bit = base + len; bit < 128; bit++)
    if (a[bit / 8] & (0x80 >> (bit % 8))) return make_error("'{}' has host bits set", s);
  return std::make_pair(base + len, a);
}

Result<SbiConfig> parse_sbi_config(const json& section) {
  SbiConfig c;
  core::ConfigSection s("sbi", section);
  KAGAMI_TRY(s.allow({"interfaces", "ports", "cidrs", "ring_kb", "events", "libssl", "tls_side"}));
  KAGAMI_TRY(s.strings("interfaces", c.interfaces, core::Need::Optional, 64));
  KAGAMI_TRY(s.path("libssl", c.libssl));
  KAGAMI_TRY(s.choice("tls_side", c.tls_side, {"server", "client", "both"}));
  if (c.interfaces.empty() && c.libssl.empty())
    return s.error("interfaces", "must list at least one interface (or set libssl for TLS only)");
  for (const auto& n : c.interfaces)
    if (n.size() >= IFNAMSIZ || n.find_first_of(" /:@#") != std::string::npos)
      return s.error("interfaces", fmt::format("'{}' is not a valid interface name", n));
  // Ports: numbers or "low-high" strings. Default: the ports 5G cores serve
  // SBI on out of the box (Open5GS 7777, free5GC 8000 and 29500-29599 as
  // TS 29.510's examples, plain 80/8080).
  const json& ports = s.raw("ports");
  if (ports.is_null()) {
    c.ports = {{80, 80}, {7777, 7777}, {8000, 8000}, {8080, 8080}, {29500, 29599}};
  } else {
    if (!ports.is_array()) return s.error("ports", "must be a list of ports or \"low-high\" ranges");
    for (const auto& p : ports) {
      if (p.is_number_integer()) {
        auto v = parse_port(s, std::to_string(p.get<int64_t>()));
        if (!v) return v.error();
        c.ports.emplace_back(*v, *v);
      } else if (p.is_string()) {
        const std::string t = p.get<std::string>();
        const size_t dash = t.find('-');
        auto lo = parse_port(s, t.substr(0, dash));
        if (!lo) return lo.error();
        auto hi = dash == std::string::npos ? lo : parse_port(s, t.substr(dash + 1));
        if (!hi) return hi.error();
        if (*hi < *lo) return s.error("ports", fmt::format("range '{}' ends before it starts", t));
        c.ports.emplace_back(*lo, *hi);
      } else {
        return s.error("ports", fmt::format("{} is neither a port nor a \"low-high\" range", p.dump()));
      }
    }
  }
  KAGAMI_TRY(s.strings("cidrs", c.cidrs, core::Need::Optional, SBI_CIDRS_MAX_ENTRIES));
  for (const auto& x : c.cidrs)
    if (auto r = parse_cidr(x); !r) return s.error("cidrs", r.error().message);
  if (ports.is_array() && ports.empty() && c.cidrs.empty())
    return s.error("ports", "an empty list with no cidrs would copy every TCP connection of the node; "
                            "list ports or cidrs");
  const int64_t page_kb = ::sysconf(_SC_PAGESIZE) / 1024;
  KAGAMI_TRY(s.integer("ring_kb", c.ring_kb, page_kb, 1048576));
  if ((c.ring_kb & (c.ring_kb - 1)) != 0)
    return s.error("ring_kb", fmt::format("must be a power of two (the kernel's ringbuf rule), got {}", c.ring_kb));
  KAGAMI_TRY(s.choice("events", c.events, {"none", "errors", "all"}));
  return c;
}

Result<void> feed_record(sbi::Decoder& d, std::span<const uint8_t> rec) {
  sbi_seg h{};
  if (rec.size() < SBI_SEG_HDR_BYTES) return make_error("sbi record of {} bytes, shorter than its header", rec.size());
  std::memcpy(&h, rec.data(), SBI_SEG_HDR_BYTES);
  if (h.hdr.kind != SBI_KIND_SEG || h.data_len > SBI_CHUNK || h.hdr.len != rec.size() ||
      SBI_SEG_HDR_BYTES + h.data_len != rec.size())
    return make_error("sbi record kind {} len {} data_len {} in {} bytes: not a segment", h.hdr.kind, h.hdr.len,
                      h.data_len, rec.size());
  if (h.flags & SBI_SEG_TLS) {
    uint64_t ssl = 0;
    std::memcpy(&ssl, h.saddr, sizeof(ssl));
    d.tls_data(h.ifindex, ssl, h.flags & SBI_SEG_TLS_WRITE, h.hdr.mono_ns, rec.subspan(SBI_SEG_HDR_BYTES, h.data_len));
    return ok();
  }
  sbi::Segment s;
  std::memcpy(s.src.addr.data(), h.saddr, 16);
  std::memcpy(s.dst.addr.data(), h.daddr, 16);
  s.src.port = h.sport;
  s.dst.port = h.dport;
  s.seq = h.seq;
  s.syn = h.flags & SBI_SEG_SYN;
  s.fin = h.flags & SBI_SEG_FIN;
  s.rst = h.flags & SBI_SEG_RST;
  s.ack = h.flags & SBI_SEG_ACK;
  s.ts_ns = h.hdr.mono_ns;
  s.data = rec.subspan(SBI_SEG_HDR_BYTES, h.data_len);
  d.segment(s);
  return ok();
}

json exchange_event(const sbi::Exchange& e) {
  json j = {{"kind", "sbi_request"},
            {"transport", e.transport},
            {"service", e.service.empty() ? "/" : e.service},
            {"method", e.method},
            {"path", e.path_template},
            {"status", e.status},
            {"client", e.client.to_string()},
            {"server", e.server.to_string()},
            {"mono_ns", e.response_ns}};
  if (e.response_ns >= e.request_ns) j["latency_ns"] = e.response_ns - e.request_ns;
  if (e.stream_id) j["stream"] = e.stream_id;
  if (!e.side.empty()) {
    j["side"] = e.side;
    j["pid"] = e.pid;
    j.erase("client");
    j.erase("server");  // a TLS stream is known by process and SSL object, not addresses
  }
  return j;
}

// ---- replay -----------------------------------------------------------------------

namespace {

class SbiReplayRun final : public core::ReplayRun {
 public:
  static Result<std::unique_ptr<SbiReplayRun>> open() {
    std::unique_ptr<SbiReplayRun> r(new SbiReplayRun());
    r->skel_ = sbi_bpf__open();
    if (!r->skel_) return errno_error(errno, "sbi: opening the embedded sbi.bpf.o");
    // Replay drives sbi_replay alone: verifying the TC programs would only
    // cost load time.
    bpf_program__set_autoload(r->skel_->progs.sbi_tc_ingress, false);
    bpf_program__set_autoload(r->skel_->progs.sbi_tc_egress, false);
    for (bpf_program* p : {r->skel_->progs.sbi_ssl_write_entry, r->skel_->progs.sbi_ssl_write_ret,
                           r->skel_->progs.sbi_ssl_read_entry, r->skel_->progs.sbi_ssl_read_ret,
                           r->skel_->progs.sbi_ssl_write_ex_entry, r->skel_->progs.sbi_ssl_write_ex_ret,
                           r->skel_->progs.sbi_ssl_read_ex_entry, r->skel_->progs.sbi_ssl_read_ex_ret})
      bpf_program__set_autoload(p, false);
    if (int err = sbi_bpf__load(r->skel_); err) return errno_error(-err, "sbi: loading sbi_replay");
    r->decoder_ = std::make_unique<sbi::Decoder>(sbi::Limits{}, [p = r.get()](const sbi::Exchange& e) {
      p->accounting_.add(e);
    });
    auto* self = r.get();
    auto rb = bpf::RingBuffer::open({bpf_map__fd(r->skel_->maps.sbi_ring)},
                                    [self](size_t, std::span<const uint8_t> rec) {
                                      if (!feed_record(*self->decoder_, rec)) self->bad_records_++;
                                    });
    if (!rb) return rb.error().with_context("sbi: opening the replay ring");
    r->ring_ = std::move(*rb);
    return r;
  }
  ~SbiReplayRun() override {
    ring_ = bpf::RingBuffer();
    if (skel_) sbi_bpf__destroy(skel_);
  }
  int prog_fd() const override { return bpf_program__fd(skel_->progs.sbi_replay); }
  Result<void> after_batch() override {
    auto n = ring_.consume();
    if (!n) return n.error().with_context("sbi: draining the replay ring");
    return ok();
  }
  Result<json> finish(uint64_t replayed_frames) override {
    KAGAMI_TRY(after_batch());
    auto c = read_percpu_u64(bpf_map__fd(skel_->maps.sbi_counters), SBI_CTR_MAX);
    if (!c) return c.error();
    auto d = read_percpu_u64(bpf_map__fd(skel_->maps.sbi_drops), KG_DROP__MAX);
    if (!d) return d.error();
    // Every frame handed over was walked; nothing was lost on the way up
    // (the ring is drained after every batch, so a drop is a bug here).
    if ((*c)[SBI_CTR_REPLAY_FRAMES] != replayed_frames || (*c)[SBI_CTR_REPLAY_BAD_BATCH] != 0)
      return make_error("sbi_replay walked {} of {} frames ({} bad batches)", (*c)[SBI_CTR_REPLAY_FRAMES],
                        replayed_frames, (*c)[SBI_CTR_REPLAY_BAD_BATCH]);
    if ((*d)[KG_DROP_RING_FULL] || bad_records_)
      return make_error("sbi_replay lost {} records to a full ring, {} unreadable", (*d)[KG_DROP_RING_FULL],
                        bad_records_);
    json out = decoder_->stats().truth_sections();
    json sbi = decoder_->stats().to_json();
    sbi["kernel"] = {{"tcp_packets", (*c)[SBI_CTR_TCP]},
                     {"records", (*c)[SBI_CTR_RECORDS]},
                     {"payload_bytes", (*c)[SBI_CTR_BYTES]},
                     {"payload_cut", (*c)[SBI_CTR_PAYLOAD_CUT]},
                     {"not_parsed", (*c)[SBI_CTR_NOT_PARSED]}};
    sbi["requests"] = accounting_.to_json();
    out["sbi"] = std::move(sbi);
    return out;
  }

 private:
  SbiReplayRun() = default;
  sbi_bpf* skel_ = nullptr;
  std::unique_ptr<sbi::Decoder> decoder_;
  sbi::Accounting accounting_;
  bpf::RingBuffer ring_;
  uint64_t bad_records_ = 0;
};

}  // namespace

Result<std::unique_ptr<core::ReplayRun>> SbiModule::open_replay() {
  auto r = SbiReplayRun::open();
  if (!r) return r.error();
  return std::unique_ptr<core::ReplayRun>(std::move(*r));
}

// ---- live -------------------------------------------------------------------------

SbiModule::~SbiModule() { stop(); }

std::vector<core::FeatureNeed> SbiModule::needs() const {
  return {{"tc", true, ""},
          {"ringbuf", true, ""},
          {"lpm_trie", true, ""},
          {"uprobe", false, "no TLS plaintext (h2c and HTTP/1.1 only)"}};
}

Result<std::vector<core::LoadRequest>> SbiModule::plan(const json& config, const core::ModuleContext& ctx) {
  auto c = parse_sbi_config(config);
  if (!c) return c.error();
  core::LoadRequest req;
  req.name = kProgram;
  req.builtin = true;
  size_t n = 0;
  const auto* p = static_cast<const uint8_t*>(sbi_bpf__elf_bytes(&n));
  req.source.bytes.assign(p, p + n);
  req.source.label = "builtin:sbi.bpf.o";
  if (c->ring_kb * 1024u != SBI_RING_BYTES_DEFAULT)
    KAGAMI_TRY_CTX(bpf::patch_map_max_entries(req.source.bytes, SBI_MAP_RING, c->ring_kb * 1024u), "sbi.ring_kb");
  for (const auto& i : c->interfaces) {
    for (const char* dir : {"ingress", "egress"}) {
      auto a = core::AttachPoint::parse(fmt::format("tc:{}:{}@sbi_tc_{}", i, dir, dir));
      if (!a) return a.error().with_context("sbi.interfaces");
      req.attach.push_back(*a);
    }
  }
  // TLS: both forms of each call, entry and return (the return probe reads
  // what the entry saved). Without uprobes here, TLS is left out and said so.
  bool tls_on = false;
  if (!c->libssl.empty()) {
    if (ctx.features.available("uprobe")) {
      static constexpr const char* kCalls[][2] = {{"SSL_write", "write"},
                                                  {"SSL_read", "read"},
                                                  {"SSL_write_ex", "write_ex"},
                                                  {"SSL_read_ex", "read_ex"}};
      for (const auto& [fn, prog] : kCalls) {
        for (const char* kind : {"uprobe", "uretprobe"}) {
          auto a = core::AttachPoint::parse(fmt::format("{}:{}:{}@sbi_ssl_{}_{}", kind, c->libssl, fn, prog,
                                                        std::string(kind) == "uprobe" ? "entry" : "ret"));
          if (!a) return a.error().with_context("sbi.libssl");
          req.attach.push_back(*a);
        }
      }
      tls_on = true;
    } else if (ctx.log) {
      ctx.log->warn("sbi.libssl: this kernel refuses uprobes; TLS plaintext is not watched");
    }
  }
  // A new ring size is a new ring.
  req.migrations = {{SBI_MAP_RING, core::MapMigration::Rule::Reset}};
  // The drain thread reads the config (events, tls_side) under mu_.
  std::lock_guard lk(mu_);
  ctx_ = ctx;
  config_ = *c;
  tls_on_ = tls_on;
  std::vector<core::LoadRequest> out;
  out.push_back(std::move(req));
  return out;
}

Result<void> SbiModule::configure(const core::ProgramManager& pm) {
  auto cfg_fd = pm.map_fd(kProgram, SBI_MAP_CONFIG);
  if (!cfg_fd) return cfg_fd.error();
  auto cidr_fd = pm.map_fd(kProgram, SBI_MAP_CIDRS);
  if (!cidr_fd) return cidr_fd.error();
  // CIDRs first, then the flags that make the programs use them. Old
  // entries go: the trie holds exactly the configured prefixes.
  std::vector<sbi_cidr_key> old;
  sbi_cidr_key k{}, next{};
  const void* cur = nullptr;
  // At most SBI_CIDRS_MAX_ENTRIES keys to walk.
  for (int i = 0; i <= SBI_CIDRS_MAX_ENTRIES && bpf_map_get_next_key(cidr_fd->get(), cur, &next) == 0; i++) {
    old.push_back(next);
    k = next;
    cur = &k;
  }
  for (auto& o : old) (void)bpf::map_delete(cidr_fd->get(), &o);
  for (const auto& x : config_.cidrs) {
    auto r = parse_cidr(x);
    if (!r) return r.error().with_context("sbi.cidrs");
    sbi_cidr_key key{};
    key.prefixlen = r->first;
    std::memcpy(key.addr, r->second.data(), 16);
    const __u8 one = 1;
    KAGAMI_TRY_CTX(bpf::map_update(cidr_fd->get(), &key, &one), "sbi.cidrs " + x);
  }
  auto v = std::make_unique<sbi_config>();
  std::memset(v.get(), 0, sizeof(*v));
  v->flags = SBI_CFG_ACTIVE;
  if (!config_.ports.empty()) v->flags |= SBI_CFG_PORTS;
  if (!config_.cidrs.empty()) v->flags |= SBI_CFG_CIDRS;
  for (const auto& [lo, hi] : config_.ports)
    for (uint32_t p = lo; p <= hi; p++) v->port_bits[p >> 6] |= 1ull << (p & 63);
  const __u32 zero = 0;
  KAGAMI_TRY_CTX(bpf::map_update(cfg_fd->get(), &zero, v.get()), "sbi: writing sbi_config");
  return ok();
}

Result<void> SbiModule::start(const core::ProgramManager& pm) {
  if (thread_.joinable()) return ok();
  auto ring = pm.map_fd(kProgram, SBI_MAP_RING);
  if (!ring) return ring.error();
  {
    std::lock_guard lk(mu_);
    decoder_ = std::make_unique<sbi::Decoder>(sbi::Limits{}, [this](const sbi::Exchange& e) {
      // One view of a TLS exchange counts (tls_side), unless both asked.
      if (!e.side.empty() && config_.tls_side != "both" && e.side != config_.tls_side) return;
      accounting_.add(e);  // mu_ is held by the drain loop
      if (!ctx_.events || config_.events == "none") return;
      if (config_.events == "errors" && e.status > 0 && e.status < 400) return;
      ctx_.events->publish("sbi", exchange_event(e));
    });
  }
  stop_ = false;
  thread_ = std::thread([this, fd = ring->release()] { drain_loop(fd); });
  return ok();
}

void SbiModule::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void SbiModule::drain_loop(int raw_fd) {
  Fd fd(raw_fd);
  auto rb = bpf::RingBuffer::open({fd.get()}, [this](size_t, std::span<const uint8_t> rec) {
    std::lock_guard lk(mu_);
    if (!feed_record(*decoder_, rec)) {
      bad_records_++;
      if (ctx_.events) ctx_.events->count_drop("sbi", "decode");
    }
  });
  if (!rb) {
    if (ctx_.log) ctx_.log->error("sbi: cannot read the ring: {}", rb.error().message);
    return;
  }
  // 100 ms: stop() is prompt, and a poll that finds data returns at once.
  while (!stop_) (void)rb->poll(100);
  (void)rb->consume();
}

Result<std::vector<core::MetricFamily>> SbiModule::collect(const core::ProgramManager& pm) {
  auto fd = pm.map_fd(kProgram, SBI_MAP_COUNTERS);
  if (!fd) return fd.error();
  auto c = read_percpu_u64(fd->get(), SBI_CTR_MAX);
  if (!c) return c.error();
  std::lock_guard lk(mu_);  // ctx_ and config_ change in plan()
  const std::string& node = ctx_.node;
  core::MetricFamily kern{"kagami_sbi_kernel_total",
                          "sbi TC programs: tcp (packets looked at), watched, records and payload_bytes copied up, "
                          "payload_cut (packets beyond the record limit)",
                          "counter",
                          {}};
  const std::pair<const char*, uint32_t> rows[] = {{"tcp", SBI_CTR_TCP},
                                                   {"watched", SBI_CTR_WATCHED},
                                                   {"records", SBI_CTR_RECORDS},
                                                   {"payload_bytes", SBI_CTR_BYTES},
                                                   {"payload_cut", SBI_CTR_PAYLOAD_CUT}};
  for (const auto& [n, i] : rows) kern.samples.push_back({{{"node", node}, {"what", n}}, double((*c)[i]), ""});
  std::vector<core::MetricFamily> out{kern};
  auto fam = accounting_.metrics(node);
  out.insert(out.end(), fam.begin(), fam.end());
  if (decoder_) {
    const auto& st = decoder_->stats();
    core::MetricFamily err{"kagami_sbi_decode_errors_total",
                           "what the SBI decoder could not decode, by reason (docs/sbi.md)", "counter", {}};
    for (const auto& [r, v] : st.errors) err.samples.push_back({{{"node", node}, {"reason", r}}, double(v), ""});
    err.samples.push_back({{{"node", node}, {"reason", "tcp_gap"}}, double(st.tcp.gaps), ""});
    core::MetricFamily conns{"kagami_sbi_connections_total", "TCP connections seen, by what they carried",
                             "counter", {}};
    const std::pair<const char*, uint64_t> cr[] = {{"h2", st.conns.h2},
                                                    {"http1", st.conns.http1},
                                                    {"not_http", st.conns.not_http},
                                                    {"evicted", st.conns.evicted}};
    for (const auto& [n, v] : cr) conns.samples.push_back({{{"node", node}, {"protocol", n}}, double(v), ""});
    out.push_back(err);
    out.push_back(conns);
  }
  return out;
}

Result<json> SbiModule::snapshot(const core::ProgramManager& pm) {
  auto fd = pm.map_fd(kProgram, SBI_MAP_COUNTERS);
  if (!fd) return fd.error();
  auto c = read_percpu_u64(fd->get(), SBI_CTR_MAX);
  if (!c) return c.error();
  auto dfd = pm.map_fd(kProgram, SBI_MAP_DROPS);
  if (!dfd) return dfd.error();
  auto d = read_percpu_u64(dfd->get(), KG_DROP__MAX);
  if (!d) return d.error();
  std::lock_guard lk(mu_);
  json ports = json::array();
  for (const auto& [lo, hi] : config_.ports) ports.push_back(lo == hi ? std::to_string(lo) : fmt::format("{}-{}", lo, hi));
  json j = {{"config",
             {{"interfaces", config_.interfaces}, {"ports", ports}, {"cidrs", config_.cidrs},
              {"ring_kb", config_.ring_kb}, {"events", config_.events}}},
            {"hooks", tls_on_ ? "tc+uprobe" : "tc"},
            {"tls", {{"libssl", config_.libssl}, {"attached", tls_on_}, {"side", config_.tls_side}}},
            {"kernel",
             {{"tcp_packets", (*c)[SBI_CTR_TCP]},
              {"watched", (*c)[SBI_CTR_WATCHED]},
              {"records", (*c)[SBI_CTR_RECORDS]},
              {"payload_bytes", (*c)[SBI_CTR_BYTES]},
              {"payload_cut", (*c)[SBI_CTR_PAYLOAD_CUT]},
              {"ring_full", (*d)[KG_DROP_RING_FULL]}}}};
  j["bad_records"] = bad_records_;
  j["requests"] = accounting_.to_json();
  if (decoder_) {
    j["decoder"] = decoder_->stats().to_json();
    json truth = decoder_->stats().truth_sections();
    for (auto& [k, v] : truth.items()) j[k] = v;
  }
  return j;
}

}  // namespace kagami::modules

KAGAMI_REGISTER_MODULE(sbi, ::kagami::modules::SbiModule)
