#include "modules/n2/n2_module.h"

#include <bpf/libbpf.h>
#include <fcntl.h>
#include <net/if.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bpf/map_view.h"
#include "bpf/ringbuf.h"
#include "common/fd.h"
#include "core/config_section.h"
#include "core/session_directory.h"
#include "n2.skel.h"

namespace kagami::n2 {
namespace {

using nlohmann::json;
constexpr const char* kProgramName = "n2";

const char* counter_name(int c) {
  switch (c) {
    case N2_CTR_FRAMES: return "frames";
    case N2_CTR_SCTP_PACKETS: return "sctp_packets";
    case N2_CTR_DATA_CHUNKS: return "data_chunks";
    case N2_CTR_NGAP_CHUNKS: return "ngap_chunks";
    case N2_CTR_NGAP_PDUS: return "ngap_pdus";
    case N2_CTR_NGAP_WITH_NAS: return "ngap_with_nas";
    case N2_CTR_SPLIT_CHUNKS: return "split_chunks";
    case N2_CTR_CHUNK_BAD_LENGTH: return "chunk_bad_length";
    case N2_CTR_CHUNK_PAST_END: return "chunk_past_end";
    case N2_CTR_TOO_MANY_CHUNKS: return "too_many_chunks";
    case N2_CTR_SCTP_TRUNCATED: return "sctp_truncated";
    case N2_CTR_EVENTS: return "events";
    case N2_CTR_REPLAY_BAD_BATCH: return "replay_bad_batch";
    case N2_CTR_L3_MALFORMED: return "l3_malformed";
    case N2_CTR_NGAP_FRAMES: return "ngap_frames";
    case N2_CTR_PFCP_COPIED: return "pfcp_copied";
    default: return "unknown";
  }
}

}  // namespace

Result<N2Config> parse_config(const json& section) {
  N2Config cfg;
  core::ConfigSection s("n2", section);
  KAGAMI_TRY(s.allow({"interfaces", "direction", "order", "max_ues", "hash_identities", "key_file"}));
  KAGAMI_TRY(s.strings("interfaces", cfg.interfaces, core::Need::Required, 64));
  for (const auto& n : cfg.interfaces)
    if (n.empty() || n.size() >= IFNAMSIZ || n.find_first_of(":@#/ ") != std::string::npos)
      return s.error("interfaces", fmt::format("'{}' is not a valid interface name", n));
  std::string dir = "both";
  KAGAMI_TRY(s.choice("direction", dir, {"both", "ingress", "egress"}));
  cfg.ingress = dir != "egress";
  cfg.egress = dir != "ingress";
  KAGAMI_TRY(s.integer("order", cfg.order, 1, 65535));
  KAGAMI_TRY(s.integer("max_ues", cfg.max_ues, 1, 10000000));
  KAGAMI_TRY(s.boolean("hash_identities", cfg.hash_identities));
  KAGAMI_TRY(s.path("key_file", cfg.key_file));
  return cfg;
}

std::vector<std::string> attach_specs(const N2Config& cfg) {
  std::vector<std::string> out;
  for (const auto& i : cfg.interfaces) {
    if (cfg.ingress) out.push_back(fmt::format("tc:{}:ingress@n2_tc_ingress#{}", i, cfg.order));
    if (cfg.egress) out.push_back(fmt::format("tc:{}:egress@n2_tc_egress#{}", i, cfg.order));
  }
  return out;
}

Result<json> read_kernel_sections(const std::function<Result<int>(const char*)>& map_fd) {
  auto cfd = map_fd(N2_MAP_CTR);
  if (!cfd) return cfd.error();
  auto ctr = bpf::ArrayView<__u64>::open(*cfd, N2_MAP_CTR);
  if (!ctr) return ctr.error();
  auto cv = ctr->read_summed(N2_CTR__MAX);
  if (!cv) return cv.error();
  auto efd = map_fd(N2_MAP_ERR);
  if (!efd) return efd.error();
  auto err = bpf::ArrayView<__u64>::open(*efd, N2_MAP_ERR);
  if (!err) return err.error();
  auto ev = err->read_summed(NGAP_E__MAX);
  if (!ev) return ev.error();
  auto pfd = map_fd(N2_MAP_PROC);
  if (!pfd) return pfd.error();
  auto proc = bpf::MapView<n2_proc_key, __u64>::open(*pfd, N2_MAP_PROC);
  if (!proc) return proc.error();
  std::map<int, std::map<int, uint64_t>> by_proc;  // proc -> pdu type -> count
  std::map<int, uint64_t> by_type;
  std::map<std::string, std::map<std::string, uint64_t>> by_if;
  uint64_t pdus = 0;
  KAGAMI_TRY(proc->for_each_summed([&](const n2_proc_key& k, const __u64& v) {
    by_proc[k.proc][k.pdu_type] += v;
    by_type[k.pdu_type] += v;
    pdus += v;
  }));
  json bp = json::object();
  for (const auto& [pc, types] : by_proc) {
    uint64_t n = 0;
    for (const auto& [t, c] : types) n += c;
    json e = {{"name", proc_name(pc)}, {"count", n}};
    for (const auto& [t, c] : types) e[pdu_type_name(t)] = c;
    bp[std::to_string(pc)] = e;
  }
  json bt = json::object();
  for (const auto& [t, c] : by_type) bt[pdu_type_name(t)] = c;
  json n2 = {{"counters", json::object()}, {"ngap_errors", json::object()}};
  for (int i = 0; i < N2_CTR__MAX; i++) n2["counters"][counter_name(i)] = (*cv)[i];
  for (int i = 1; i < NGAP_E__MAX; i++) n2["ngap_errors"][ngap_error_name(i)] = (*ev)[i];
  // Records lost to a full ring (the event loop exports them too, as
  // kagami_events_dropped_total{module="n2"}).
  auto dfd = map_fd(N2_MAP_DROPS);
  if (!dfd) return dfd.error();
  auto drops = bpf::ArrayView<__u64>::open(*dfd, N2_MAP_DROPS);
  if (!drops) return drops.error();
  auto dv = drops->read_summed(KG_DROP__MAX);
  if (!dv) return dv.error();
  n2["ring_full"] = (*dv)[KG_DROP_RING_FULL];
  json out = json::object();
  out["n2"] = n2;
  if (pdus)
    out["ngap"] = {{"pdus", pdus}, {"frames", (*cv)[N2_CTR_NGAP_FRAMES]}, {"by_pdu_type", bt},
                   {"by_procedure_code", bp}};
  return out;
}

std::vector<core::FeatureNeed> N2Module::needs() const {
  return {{"tc", true, ""}, {"ringbuf", true, ""}};
}

Result<std::vector<core::LoadRequest>> N2Module::plan(const json& config, const core::ModuleContext& ctx) {
  auto cfg = parse_config(config);
  if (!cfg) return cfg.error();
  TrackerOptions topt;
  topt.max_ues = static_cast<size_t>(cfg->max_ues);
  topt.hash_identities = cfg->hash_identities;
  if (!cfg->key_file.empty()) {
    std::ifstream f(cfg->key_file, std::ios::binary);
    char k[16];
    if (!f.read(k, 16)) return make_error("n2.key_file: {}: cannot read 16 bytes of key", cfg->key_file);
    std::memcpy(topt.key, k, 16);
  } else {
    std::random_device rd;
    topt.key[0] = (static_cast<uint64_t>(rd()) << 32) | rd();
    topt.key[1] = (static_cast<uint64_t>(rd()) << 32) | rd();
  }
  core::LoadRequest req;
  req.name = kProgramName;
  size_t sz = 0;
  const auto* b = static_cast<const uint8_t*>(n2_bpf__elf_bytes(&sz));
  req.source.bytes.assign(b, b + sz);
  req.source.label = "builtin:n2";
  req.builtin = true;
  for (const auto& spec : attach_specs(*cfg)) {
    auto ap = core::AttachPoint::parse(spec);
    if (!ap) return ap.error().with_context("n2");
    req.attach.push_back(*ap);
  }
  req.migrations = {{N2_MAP_CTR, core::MapMigration::Rule::Extend},
                    {N2_MAP_ERR, core::MapMigration::Rule::Extend},
                    {N2_MAP_EVENTS, core::MapMigration::Rule::Reset},
                    {N2_MAP_SCRATCH, core::MapMigration::Rule::Reset}};
  {
    std::lock_guard lk(*mu_);
    if (!ctx_.log || cfg->max_ues != cfg_.max_ues) {
      auto* dir = core::session_directory();
      if (dir) dir->clear("n2");  // the new tracker publishes afresh
      tracker_ = std::make_shared<Tracker>(topt);
      tracker_->set_directory(dir);
    }
  }
  cfg_ = *cfg;
  ctx_ = ctx;
  return std::vector<core::LoadRequest>{std::move(req)};
}

std::vector<core::EventSource> N2Module::event_sources() const {
  auto mu = mu_;
  auto tr = tracker_;
  return {{kProgramName, N2_MAP_EVENTS, N2_MAP_DROPS, [mu, tr](std::span<const uint8_t> rec) -> Result<json> {
             json line;
             std::lock_guard lk(*mu);
             KAGAMI_TRY(tr->add(rec, &line));
             if (!line.contains("kind")) line["kind"] = "ngap";
             return line;
           }}};
}

void N2Module::stop() {
  if (auto* dir = core::session_directory()) dir->clear("n2");
}

Result<std::vector<core::MetricFamily>> N2Module::collect(const core::ProgramManager& pm) {
  std::vector<Fd> held;  // the map fds live until the read is done
  auto k = read_kernel_sections([&](const char* name) -> Result<int> {
    auto fd = pm.map_fd(kProgramName, name);
    if (!fd) return fd.error();
    held.push_back(std::move(*fd));
    return held.back().get();
  });
  if (!k) return k.error();
  std::vector<core::MetricFamily> out;
  const std::string node = ctx_.node.empty() ? "unknown" : ctx_.node;
  core::MetricFamily pdus{"kagami_n2_ngap_pdus_total", "NGAP PDUs by procedure and PDU type", "counter", {}};
  if (k->contains("ngap"))
    for (const auto& [pc, e] : (*k)["ngap"]["by_procedure_code"].items())
      for (const char* t : {"initiatingMessage", "successfulOutcome", "unsuccessfulOutcome"})
        if (e.contains(t))
          pdus.samples.push_back({{{"node", node}, {"procedure", e["name"].get<std::string>()}, {"pdu_type", t}},
                                  e[t].get<double>(), ""});
  out.push_back(std::move(pdus));
  core::MetricFamily errs{"kagami_n2_ngap_bad_total", "NGAP messages not walked to the end, by reason", "counter", {}};
  for (const auto& [r, v] : (*k)["n2"]["ngap_errors"].items())
    errs.samples.push_back({{{"node", node}, {"reason", r}}, v.get<double>(), ""});
  for (const char* r : {"split_chunks", "chunk_bad_length", "chunk_past_end", "too_many_chunks", "sctp_truncated"})
    errs.samples.push_back({{{"node", node}, {"reason", r}}, (*k)["n2"]["counters"][r].get<double>(), ""});
  std::lock_guard lk(*mu_);
  for (const auto& [r, v] : tracker_->bad())
    errs.samples.push_back({{{"node", node}, {"reason", "userspace_" + r}}, static_cast<double>(v), ""});
  out.push_back(std::move(errs));
  core::MetricFamily kpi{"kagami_n2_kpi", "TS 28.552 measurements derived from N2 (docs/kpis.md)", "gauge", {}};
  const json kpis = tracker_->kpis().to_json();
  for (const auto& [name, v] : kpis.items()) {
    if (v.is_number())
      kpi.samples.push_back({{{"node", node}, {"measurement", name}}, v.get<double>(), ""});
    else
      for (const auto& [cause, c] : v.items())
        kpi.samples.push_back({{{"node", node}, {"measurement", name}, {"cause", cause}}, c.get<double>(), ""});
  }
  out.push_back(std::move(kpi));
  out.push_back({"kagami_n2_ues", "UE records kept", "gauge",
                 {{{{"node", node}}, static_cast<double>(tracker_->ues()), ""}}});
  out.push_back({"kagami_n2_ue_evictions_total", "UE records evicted from the full table", "counter",
                 {{{{"node", node}}, static_cast<double>(tracker_->evictions()), ""}}});
  return out;
}

Result<json> N2Module::snapshot(const core::ProgramManager& pm) {
  std::vector<Fd> held;  // the map fds live until the read is done
  auto k = read_kernel_sections([&](const char* name) -> Result<int> {
    auto fd = pm.map_fd(kProgramName, name);
    if (!fd) return fd.error();
    held.push_back(std::move(*fd));
    return held.back().get();
  });
  if (!k) return k.error();
  std::lock_guard lk(*mu_);
  json j = *k;
  j.update(tracker_->nas_sections());
  j["n2"]["kpis"] = tracker_->kpis().to_json();
  j["n2"]["ues"] = tracker_->ue_records();
  j["n2"]["teid_sessions"] = tracker_->teid_sessions();
  j["n2"]["join"] = tracker_->join();
  j["n2"]["messages_decoded"] = tracker_->messages();
  j["n2"]["ue_evictions"] = tracker_->evictions();
  j["n2"]["ciphered_nea_unknown"] = tracker_->ciphered_nea_unknown();
  j["n2"]["userspace_bad"] = tracker_->bad();
  return j;
}

namespace {

class N2ReplayRun final : public core::ReplayRun {
 public:
  explicit N2ReplayRun(n2_bpf* skel) : skel_(skel) {}
  ~N2ReplayRun() override {
    rb_.reset();  // before the maps it reads go
    n2_bpf__destroy(skel_);
  }
  int prog_fd() const override { return bpf_program__fd(skel_->progs.n2_replay); }
  // Drains what the batch copied up: the tracker (and the session
  // directory obs reads in its finish()) is complete after the last batch.
  Result<void> after_batch() override {
    if (!rb_) {
      tr_.set_directory(core::session_directory());
      auto rb = bpf::RingBuffer::open({bpf_map__fd(skel_->maps.n2_events)}, [this](size_t, std::span<const uint8_t> rec) {
        auto r = tr_.add(rec);
        if (!r && first_error_.empty()) first_error_ = r.error().message;
      });
      if (!rb) return rb.error();
      rb_.emplace(std::move(*rb));
    }
    auto n = rb_->consume();
    if (!n) return n.error();
    if (!first_error_.empty()) return make_error("n2 replay: {}", first_error_);
    return ok();
  }
  Result<json> finish(uint64_t replayed_frames) override {
    auto fd_of = [this](const char* name) -> Result<int> {
      bpf_map* m = bpf_object__find_map_by_name(skel_->obj, name);
      if (!m) return make_error("n2.bpf.o has no map {}", name);
      return bpf_map__fd(m);
    };
    auto k = read_kernel_sections(fd_of);
    if (!k) return k.error();
    const auto& c = (*k)["n2"]["counters"];
    if (c["frames"].get<uint64_t>() != replayed_frames || c["replay_bad_batch"].get<uint64_t>() != 0)
      return make_error("n2_replay counted {} of {} frames ({} bad batches)", c["frames"].get<uint64_t>(),
                        replayed_frames, c["replay_bad_batch"].get<uint64_t>());
    // The messages the program copied up, in capture order (one CPU runs
    // the whole replay), drained after every batch (and once more here).
    KAGAMI_TRY(after_batch());
    const Tracker& tr = tr_;
    json out = *k;
    out.update(tr.nas_sections());
    out["n2"]["messages_decoded"] = tr.messages();
    out["n2"]["kpis"] = tr.kpis().to_json();
    out["n2"]["ues"] = tr.ues();
    // Forensics: what happened to each UE, message by message.
    out["n2"]["ue_records"] = tr.ue_records(true);
    // The 5G context join, N2 side: UL TEID -> UE, PDU session, UE address.
    out["n2"]["teid_sessions"] = tr.teid_sessions();
    // The 5G context join: UL and DL tunnel ends, PFCP sessions, labels.
    out["n2"]["join"] = tr.join();
    out["n2"]["ciphered_nea_unknown"] = tr.ciphered_nea_unknown();
    out["n2"]["userspace_bad"] = tr.bad();

    return out;
  }

 private:
  n2_bpf* skel_;
  // A replay keeps far more of each UE's timeline than the agent (whose
  // bound is per UE in memory for days): `kagami replay --ue-timeline`.
  Tracker tr_{TrackerOptions{.max_ues = 65536, .timeline_per_ue = 4096}};
  std::optional<bpf::RingBuffer> rb_;
  std::string first_error_;
};

}  // namespace

Result<std::unique_ptr<core::ReplayRun>> N2Module::open_replay() {
  n2_bpf* skel = n2_bpf__open();
  if (!skel) return errno_error(errno, "open n2.bpf.o");
  // One thread drives a replay: plain maps instead of per-CPU (as obs).
  bpf_map* m;
  bpf_object__for_each_map(m, skel->obj) {
    switch (bpf_map__type(m)) {
      case BPF_MAP_TYPE_PERCPU_ARRAY: bpf_map__set_type(m, BPF_MAP_TYPE_ARRAY); break;
      case BPF_MAP_TYPE_PERCPU_HASH: bpf_map__set_type(m, BPF_MAP_TYPE_HASH); break;
      default: break;
    }
  }
  bpf_program__set_autoload(skel->progs.n2_tc_ingress, false);
  bpf_program__set_autoload(skel->progs.n2_tc_egress, false);
  std::unique_ptr<core::ReplayRun> run(new N2ReplayRun(skel));
  if (int err = n2_bpf__load(skel); err)
    return errno_error(err, "load n2.bpf.o (verifier or map creation; see the libbpf log)");
  return run;
}

}  // namespace kagami::n2

KAGAMI_REGISTER_MODULE(n2, ::kagami::n2::N2Module)
