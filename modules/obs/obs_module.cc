#include "modules/obs/obs_module.h"

#include "core/session_directory.h"
#include "modules/obs/obs_object.h"

#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bpf/kernel.h"
#include "core/config_section.h"
#include "identity/netns.h"
#include "obs.skel.h"

namespace kagami::obs {
namespace {

using core::MetricFamily;
using core::Sample;

const char* dir_name(uint8_t d) { return d == OBS_DIR_EGRESS ? "egress" : "ingress"; }

bool read_u64(const std::string& path, uint64_t& v) {
  std::ifstream f(path);
  return static_cast<bool>(f >> v);
}

MetricFamily family(std::string name, std::string help, std::string type) {
  return MetricFamily{std::move(name), std::move(help), std::move(type), {}};
}

}  // namespace

Result<ObsConfig> parse_config(const nlohmann::json& section) {
  ObsConfig cfg;
  core::ConfigSection s("obs", section);
  KAGAMI_TRY(s.allow({"interfaces", "direction", "xdp", "top_n_teids"}));
  KAGAMI_TRY(s.strings("interfaces", cfg.interfaces, core::Need::Required, OBS_IF_SLOTS - 1));
  for (const auto& n : cfg.interfaces)
    if (n.size() >= IFNAMSIZ || n.find_first_of(":@#/ ") != std::string::npos)
      return s.error("interfaces", fmt::format("'{}' is not a valid interface name", n));
  std::string dir = "both";
  KAGAMI_TRY(s.choice("direction", dir, {"both", "ingress", "egress"}));
  cfg.ingress = dir != "egress";
  cfg.egress = dir != "ingress";
  KAGAMI_TRY(s.boolean("xdp", cfg.xdp));
  if (cfg.xdp && !cfg.ingress) return s.error("xdp", "XDP only sees ingress, but direction is egress");
  KAGAMI_TRY(s.integer("top_n_teids", cfg.top_n_teids, 0, 10000));
  return cfg;
}

std::vector<std::string> attach_specs(const ObsConfig& cfg) {
  std::vector<std::string> out;
  for (const auto& i : cfg.interfaces) {
    if (cfg.ingress)
      out.push_back(cfg.xdp ? fmt::format("xdp:{}@obs_xdp", i)
                            : fmt::format("tc:{}:ingress@obs_tc_ingress", i));
    if (cfg.egress) out.push_back(fmt::format("tc:{}:egress@obs_tc_egress", i));
  }
  return out;
}

std::string slot_name(const ObsConfig& cfg, uint32_t slot) {
  if (slot == 0) return "other";
  if (slot <= cfg.interfaces.size()) return cfg.interfaces[slot - 1];
  return fmt::format("slot{}", slot);  // written by an older config; gone since
}

IfaceStats system_iface_stats() {
  IfaceStats s;
  s.drops = [](const std::string& ifname, uint64_t& rx, uint64_t& tx) {
    const std::string base = "/sys/class/net/" + ifname + "/statistics/";
    return read_u64(base + "rx_dropped", rx) && read_u64(base + "tx_dropped", tx);
  };
  return s;
}

std::vector<MetricFamily> build_metrics(const ObsSnapshot& s, const ObsConfig& cfg,
                                         const IfaceStats& ifs, const core::SessionDirectory* sessions) {
  std::vector<MetricFamily> out;
  const std::string& node = cfg.node;

  // --- L2-L4 packets per interface ---
  auto pk = family("kagami_obs_packets_total", "Frames seen by obs, per interface, direction and L4 protocol.", "counter");
  auto by = family("kagami_obs_bytes_total", "Frame bytes seen by obs, per interface, direction and L4 protocol.", "counter");
  for (const auto& [k, v] : s.iface) {
    std::map<std::string, std::string> l = {{"node", node},
                                            {"interface", slot_name(cfg, k.slot)},
                                            {"direction", dir_name(k.dir)},
                                            {"protocol", l4_class_name(k.l4)}};
    pk.samples.push_back({l, double(v.packets), ""});
    by.samples.push_back({l, double(v.bytes), ""});
  }
  out.push_back(std::move(pk));
  out.push_back(std::move(by));
  auto dr = family("kagami_obs_interface_drops_total", "Packets the kernel dropped on the interface (sysfs rx_dropped/tx_dropped).", "counter");
  for (const auto& i : cfg.interfaces) {
    uint64_t rx = 0, tx = 0;
    if (!ifs.drops || !ifs.drops(i, rx, tx)) continue;
    dr.samples.push_back({{{"node", node}, {"interface", i}, {"direction", "ingress"}}, double(rx), ""});
    dr.samples.push_back({{{"node", node}, {"interface", i}, {"direction", "egress"}}, double(tx), ""});
  }
  out.push_back(std::move(dr));

  auto mal = family("kagami_obs_malformed_total", "Packets counted malformed, by the first problem found.", "counter");
  for (int r = 1; r < KG_PERR_MAX; r++)
    for (int d = 0; d < OBS_DIR_MAX; d++)
      if (s.malformed[d][r])
        mal.samples.push_back({{{"node", node},
                                {"reason", malformed_reason_name(static_cast<kg_parse_error>(r))},
                                {"direction", dir_name(d)}},
                               double(s.malformed[d][r]), ""});
  out.push_back(std::move(mal));

  // --- GTP-U ---
  auto gm = family("kagami_obs_gtpu_messages_total", "GTP-U messages (outermost header on UDP 2152) by interface and type.", "counter");
  for (int sl = 0; sl < OBS_IF_SLOTS; sl++)
    for (int t = 0; t < 256; t++)
      if (s.gtpu_msg_by_slot[sl][t])
        gm.samples.push_back({{{"node", node}, {"interface", slot_name(cfg, sl)}, {"type", gtpu_msg_name(t)}},
                              double(s.gtpu_msg_by_slot[sl][t]), ""});
  out.push_back(std::move(gm));

  // Top-N TEIDs by packets; the rest folded into teid="other".
  std::vector<std::pair<uint32_t, const TeidStats*>> teids;
  for (const auto& [teid, t] : s.teids)
    if (t.packets) teids.push_back({teid, &t});
  std::sort(teids.begin(), teids.end(), [](const auto& a, const auto& b) {
    return a.second->packets != b.second->packets ? a.second->packets > b.second->packets : a.first < b.first;
  });
  auto tp = family("kagami_obs_gtpu_teid_packets_total", "GTP-U packets per TEID and interface (top-N TEIDs by packets, the rest as teid=\"other\").", "counter");
  auto tb = family("kagami_obs_gtpu_teid_bytes_total", "GTP-U frame bytes per TEID and interface (top-N TEIDs by packets, the rest as teid=\"other\").", "counter");
  // A TEID seen on no slot (a snapshot built by hand) counts on slot 0.
  auto per_slot = [](const TeidStats& t) {
    std::map<uint8_t, PktBytes> m = t.by_slot;
    if (m.empty()) m[0] = {t.packets, t.frame_bytes};
    return m;
  };
  std::map<uint8_t, PktBytes> other;
  uint64_t folded = 0;
  for (size_t i = 0; i < teids.size(); i++) {
    const auto& [teid, t] = teids[i];
    if (i < cfg.top_n_teids) {
      const std::string id = fmt::format("0x{:08x}", teid);
      for (const auto& [sl, v] : per_slot(*t)) {
        if (!v.packets) continue;
        std::map<std::string, std::string> l = {{"node", node}, {"interface", slot_name(cfg, sl)}, {"teid", id}};
        // The 5G context join (n2): the session behind this TEID, when known.
        if (sessions)
          if (auto lab = sessions->lookup_teid(teid))
            for (const auto& [k, v] : *lab) l.emplace(k, v);
        tp.samples.push_back({l, double(v.packets), ""});
        tb.samples.push_back({l, double(v.bytes), ""});
      }
    } else {
      for (const auto& [sl, v] : per_slot(*t)) {
        other[sl].packets += v.packets;
        other[sl].bytes += v.bytes;
      }
      folded++;
    }
  }
  for (const auto& [sl, v] : other) {
    if (!v.packets) continue;
    std::map<std::string, std::string> l = {{"node", node}, {"interface", slot_name(cfg, sl)}, {"teid", "other"}};
    tp.samples.push_back({l, double(v.packets), ""});
    tb.samples.push_back({l, double(v.bytes), ""});
  }
  out.push_back(std::move(tp));
  out.push_back(std::move(tb));
  auto fo = family("kagami_obs_series_folded", "Label values folded into an \"other\" series by the top-N limit.", "gauge");
  fo.samples.push_back({{{"node", node}, {"metric", "kagami_obs_gtpu_teid_packets_total"}}, double(folded), ""});
  out.push_back(std::move(fo));
  auto ev = family("kagami_obs_map_evictions_total", "Entries evicted from full LRU maps (inserted minus present).", "counter");
  const uint64_t ins = s.total(OBS_CTR_GTPU_TEID_NEW);
  ev.samples.push_back({{{"node", node}, {"map", "teid"}}, double(ins > s.teid_entries ? ins - s.teid_entries : 0), ""});
  out.push_back(std::move(ev));

  auto qf = family("kagami_obs_gtpu_qfi_packets_total", "GTP-U packets with a PDU Session Container, by interface, QFI, PDU type and hook direction.", "counter");
  for (int sl = 0; sl < OBS_IF_SLOTS; sl++)
    for (int slot = 0; slot < OBS_QFI_SLOTS; slot++)
      if (s.qfi_by_slot[sl][slot].packets)
        qf.samples.push_back({{{"node", node},
                               {"interface", slot_name(cfg, sl)},
                               {"qfi", std::to_string(slot % 64)},
                               {"pdu_type", (slot / 64) % 2 ? "ul" : "dl"},
                               {"direction", dir_name(slot / 128)}},
                              double(s.qfi_by_slot[sl][slot].packets), ""});
  out.push_back(std::move(qf));

  // --- PFCP ---
  auto pm = family("kagami_obs_pfcp_messages_total", "PFCP messages by interface and type.", "counter");
  for (int sl = 0; sl < OBS_IF_SLOTS; sl++)
    for (int t = 0; t < 256; t++)
      if (s.pfcp_msg_by_slot[sl][t])
        pm.samples.push_back({{{"node", node}, {"interface", slot_name(cfg, sl)}, {"type", pfcp_msg_name(t)}},
                              double(s.pfcp_msg_by_slot[sl][t]), ""});
  out.push_back(std::move(pm));
  auto pc = family("kagami_obs_pfcp_causes_total", "Cause values of PFCP responses, by interface and message type.", "counter");
  for (const auto& [k, n] : s.pfcp_cause_by_slot) {
    const auto& [sl, type, cause] = k;
    pc.samples.push_back({{{"node", node}, {"interface", slot_name(cfg, sl)}, {"type", pfcp_msg_name(type)},
                           {"cause", pfcp_cause_name(cause)}},
                          double(n), ""});
  }
  out.push_back(std::move(pc));
  // One series per configured interface, and "other": stable even at zero.
  const uint32_t slots = static_cast<uint32_t>(std::min<size_t>(cfg.interfaces.size() + 1, OBS_IF_SLOTS));
  auto each_slot = [&](core::MetricFamily& f, auto value) {
    for (uint32_t sl = 0; sl < slots; sl++)
      f.samples.push_back({{{"node", node}, {"interface", slot_name(cfg, sl)}}, double(value(sl)), ""});
  };
  auto ps = family("kagami_obs_pfcp_sessions", "PFCP sessions established (accepted establishments minus accepted deletions seen), by interface.", "gauge");
  each_slot(ps, [&](uint32_t sl) {
    const uint64_t est = s.slot_ctr[sl][OBS_SCTR_PFCP_SESS_EST_ACCEPTED], del = s.slot_ctr[sl][OBS_SCTR_PFCP_SESS_DEL_ACCEPTED];
    return est > del ? est - del : 0;
  });
  out.push_back(std::move(ps));
  auto lat = family("kagami_obs_pfcp_response_latency_seconds", "Time from a PFCP request to its response (matched by peers and sequence number), by interface.", "histogram");
  for (const auto& [k, h] : s.pfcp_latency_by_slot) {
    const std::map<std::string, std::string> base = {{"node", node}, {"interface", slot_name(cfg, k.first)},
                                                     {"type", pfcp_msg_name(k.second)}};
    uint64_t cum = 0;
    for (int i = 0; i < OBS_LAT_BUCKETS; i++) {
      cum += h.buckets[i];
      const double le = double(uint64_t{1} << (i + 1)) / 1e6;  // bucket i ends at 2^(i+1) us
      auto l = base;
      l["le"] = i + 1 == OBS_LAT_BUCKETS ? "+Inf" : fmt::format("{:g}", le);
      lat.samples.push_back({l, double(cum), "_bucket"});
    }
    lat.samples.push_back({base, double(h.sum_ns) / 1e9, "_sum"});
    lat.samples.push_back({base, double(h.count), "_count"});
  }
  out.push_back(std::move(lat));
  auto un = family("kagami_obs_pfcp_responses_unmatched_total", "PFCP responses whose request was not seen, by interface.", "counter");
  each_slot(un, [&](uint32_t sl) { return s.slot_ctr[sl][OBS_SCTR_PFCP_RESPONSES_UNMATCHED]; });
  out.push_back(std::move(un));

  // --- SCTP ---
  auto sc = family("kagami_obs_sctp_chunks_total", "SCTP chunks by interface and type (every chunk of every packet).", "counter");
  for (int sl = 0; sl < OBS_IF_SLOTS; sl++)
    for (int t = 0; t < 256; t++)
      if (s.sctp_chunk_by_slot[sl][t])
        sc.samples.push_back({{{"node", node}, {"interface", slot_name(cfg, sl)}, {"type", std::to_string(t)}},
                              double(s.sctp_chunk_by_slot[sl][t]), ""});
  out.push_back(std::move(sc));
  auto sp = family("kagami_obs_sctp_data_chunks_total", "SCTP DATA chunks by interface and payload protocol id (60 = NGAP).", "counter");
  for (int sl = 0; sl < OBS_IF_SLOTS; sl++)
    for (int t = 0; t < OBS_SCTP_PPID_SLOTS; t++)
      if (s.sctp_ppid_by_slot[sl][t])
        sp.samples.push_back({{{"node", node},
                               {"interface", slot_name(cfg, sl)},
                               {"ppid", t == OBS_SCTP_PPID_OTHER ? "other" : std::to_string(t)}},
                              double(s.sctp_ppid_by_slot[sl][t]), ""});
  out.push_back(std::move(sp));
  auto sr = family("kagami_obs_sctp_data_retransmitted_total", "SCTP DATA chunks whose TSN was seen before on the association, by interface.", "counter");
  each_slot(sr, [&](uint32_t sl) { return s.slot_ctr[sl][OBS_SCTR_SCTP_DATA_RETRANSMITTED]; });
  out.push_back(std::move(sr));
  auto sa = family("kagami_obs_sctp_aborts_total", "SCTP ABORT chunks, by interface.", "counter");
  each_slot(sa, [&](uint32_t sl) { return s.slot_ctr[sl][OBS_SCTR_SCTP_ABORTS]; });
  out.push_back(std::move(sa));

  // Every series with an interface also names the pod owning it (the same
  // label the transport module's per-pod series use); "" for a node's own
  // interfaces and for "other".
  auto pod_of = [&](const std::string& ifname) -> std::string {
    for (size_t i = 0; i < cfg.interfaces.size(); i++)
      if (cfg.interfaces[i] == ifname) return i + 1 < ifs.pod_uid.size() ? ifs.pod_uid[i + 1] : "";
    return "";
  };
  for (auto& f : out)
    for (auto& smp : f.samples)
      if (auto it = smp.labels.find("interface"); it != smp.labels.end()) smp.labels["pod_uid"] = pod_of(it->second);
  return out;
}

std::vector<core::FeatureNeed> ObsModule::needs() const {
  return {{"tc", true, ""}, {"xdp", false, "TC ingress (config xdp: false)"}};
}

Result<std::vector<core::LoadRequest>> ObsModule::plan(const nlohmann::json& config, const core::ModuleContext& ctx) {
  auto cfg = parse_config(config);
  if (!cfg) return cfg.error();
  ctx_ = ctx;
  cfg->node = ctx.node.empty() ? "unknown" : ctx.node;
  // The agent resolved needs() against this kernel: without XDP, ingress
  // falls back to TC (the FeatureNeed says so) instead of failing to attach.
  bool xdp_resolved = false;
  for (const auto& it : ctx.features.items) xdp_resolved = xdp_resolved || it.need.feature == "xdp";
  if (cfg->xdp && xdp_resolved && !ctx.features.available("xdp")) {
    if (ctx.log) ctx.log->warn("obs.xdp: this kernel has no XDP; counting ingress on TC instead");
    cfg->xdp = false;
  }
  core::LoadRequest req;
  req.name = kProgramName;
  size_t sz = 0;
  const void* elf = obs_bpf__elf_bytes(&sz);
  const auto* b = static_cast<const uint8_t*>(elf);
  req.source.bytes.assign(b, b + sz);
  req.source.label = "builtin:obs";
  req.builtin = true;
  for (const auto& spec : attach_specs(*cfg)) {
    auto ap = core::AttachPoint::parse(spec);
    if (!ap) return ap.error().with_context("obs");
    req.attach.push_back(*ap);
  }
  // Appended counters grow the value (Extend); transient correlation state
  // (fragments, pending PFCP requests, TSNs) may simply start over.
  // Per-interface arrays grew from one slot to OBS_IF_SLOTS: Extend keeps
  // the old counts in slot 0.
  req.migrations = {{OBS_MAP_COUNTERS, core::MapMigration::Rule::Extend},
                    {OBS_MAP_MALFORMED, core::MapMigration::Rule::Extend},
                    {OBS_MAP_GTPU_MSG, core::MapMigration::Rule::Extend},
                    {OBS_MAP_PFCP_MSG, core::MapMigration::Rule::Extend},
                    {OBS_MAP_QFI, core::MapMigration::Rule::Extend},
                    {OBS_MAP_SCTP_CHUNK, core::MapMigration::Rule::Extend},
                    {OBS_MAP_SCTP_PPID, core::MapMigration::Rule::Extend},
                    // a per-type array before interface slots: histograms restart
                    {OBS_MAP_PFCP_LATENCY, core::MapMigration::Rule::Reset},
                    {OBS_MAP_IFACE, core::MapMigration::Rule::Reset},
                    {OBS_MAP_FRAG, core::MapMigration::Rule::Reset},
                    {OBS_MAP_PFCP_PENDING, core::MapMigration::Rule::Reset},
                    {OBS_MAP_SCTP_TSN, core::MapMigration::Rule::Reset}};
  cfg_ = *cfg;
  // obs_xdp is chain-aware (it shares an interface with a policy or a load
  // balancer through the XDP chain), and a chain's slot and prog_array are
  // per interface: every XDP interface after the first takes a load of its
  // own, "obs-xdp-<n>", that counts into the same maps (share_maps_with).
  std::vector<core::LoadRequest> out;
  std::vector<core::AttachPoint> mine;
  size_t xdp_seen = 0;
  for (auto& ap : req.attach) {
    if (ap.kind != core::AttachPoint::Kind::Xdp || xdp_seen++ == 0) {
      mine.push_back(ap);
      continue;
    }
    core::LoadRequest extra;
    extra.name = fmt::format("{}-xdp-{}", kProgramName, xdp_seen);
    extra.source = req.source;
    extra.builtin = true;
    extra.attach = {ap};
    extra.migrations = req.migrations;
    extra.share_maps_with = kProgramName;
    out.push_back(std::move(extra));
  }
  req.attach = std::move(mine);
  out.insert(out.begin(), std::move(req));
  return out;
}

Result<void> ObsModule::configure(const core::ProgramManager& pm) {
  auto fd = pm.map_fd(kProgramName, OBS_MAP_IFSLOT);
  if (!fd) return fd.error().with_context("obs: interface slots");
  std::array<obs_ifslot, OBS_IFSLOT_TABLE> table{};
  std::vector<std::string> missing, full;
  owners_.assign(cfg_.interfaces.size() + 1, {});
  for (size_t i = 0; i < cfg_.interfaces.size(); i++) {
    const unsigned ifindex = if_nametoindex(cfg_.interfaces[i].c_str());
    if (!ifindex) {
      missing.push_back(cfg_.interfaces[i]);
      continue;
    }
    owners_[i + 1].ifindex = ifindex;
    // Who owns it: best effort, a label and never a reason to fail.
    if (auto o = identity::interface_owner(cfg_.interfaces[i]); o && o->pid) {
      owners_[i + 1].pod_uid = o->workload.pod_uid;
      owners_[i + 1].container = o->workload.container_id;
      owners_[i + 1].runtime = o->workload.runtime;
    }
    // Its own entry, or the next one (the BPF side looks at both).
    uint32_t k = ifindex % OBS_IFSLOT_TABLE;
    if (table[k].ifindex) k = (k + 1) % OBS_IFSLOT_TABLE;
    if (table[k].ifindex) {
      full.push_back(cfg_.interfaces[i]);
      continue;
    }
    table[k] = obs_ifslot{ifindex, static_cast<uint32_t>(i + 1)};
  }
  // Every entry, so that an interface dropped from the config loses its slot.
  for (uint32_t k = 0; k < OBS_IFSLOT_TABLE; k++)
    KAGAMI_TRY_CTX(bpf::map_update(fd->get(), &k, &table[k]), "obs: writing interface slot " + std::to_string(k));
  if (!missing.empty()) return make_error("obs: no such interface: {}; counted as interface=\"other\"", fmt::join(missing, ", "));
  if (!full.empty())
    return make_error("obs: interfaces {} collide with two others in the slot table; counted as interface=\"other\"",
                      fmt::join(full, ", "));
  return ok();
}

Result<ObsSnapshot> ObsModule::read(const core::ProgramManager& pm) const {
  std::vector<Fd> fds;  // alive until read_snapshot returns
  return read_snapshot([&](const std::string& map) -> Result<int> {
    auto fd = pm.map_fd(kProgramName, map);
    if (!fd) return fd.error();
    fds.push_back(std::move(*fd));
    return fds.back().get();
  });
}

Result<std::vector<core::MetricFamily>> ObsModule::collect(const core::ProgramManager& pm) {
  auto s = read(pm);
  if (!s) return s.error().with_context("obs");
  IfaceStats ifs = system_iface_stats();
  for (const auto& o : owners_) ifs.pod_uid.push_back(o.pod_uid);
  return build_metrics(*s, cfg_, ifs, core::session_directory());
}

Result<nlohmann::json> ObsModule::snapshot(const core::ProgramManager& pm) {
  auto s = read(pm);
  if (!s) return s.error().with_context("obs");
  nlohmann::json j = to_json(*s);
  // What the module adds to the object's JSON: interface names for slots.
  for (auto& i : j["packets"]["interfaces"]) i["interface"] = slot_name(cfg_, i["slot"].get<uint32_t>());
  nlohmann::json owners = nlohmann::json::object();
  for (size_t sl = 1; sl < owners_.size(); sl++)
    owners[slot_name(cfg_, static_cast<uint32_t>(sl))] = {{"slot", sl},
                                                          {"ifindex", owners_[sl].ifindex},
                                                          {"pod_uid", owners_[sl].pod_uid},
                                                          {"container", owners_[sl].container},
                                                          {"runtime", owners_[sl].runtime}};
  j["packets"]["interface_owners"] = owners;
  auto by_interface = [&](const std::array<std::array<uint64_t, 256>, OBS_IF_SLOTS>& a, bool hex) {
    nlohmann::json o = nlohmann::json::object();
    for (uint32_t sl = 0; sl < OBS_IF_SLOTS; sl++)
      for (uint32_t t = 0; t < 256; t++)
        if (a[sl][t]) o[slot_name(cfg_, sl)][hex ? fmt::format("0x{:02x}", t) : std::to_string(t)] = a[sl][t];
    return o;
  };
  j["gtpu"]["by_interface"] = by_interface(s->gtpu_msg_by_slot, true);
  j["pfcp"]["by_interface"] = by_interface(s->pfcp_msg_by_slot, false);
  return j;
}

}  // namespace kagami::obs

namespace kagami::obs {

nlohmann::json teid_session_labels(const ObsSnapshot& s, const core::SessionDirectory& sessions) {
  nlohmann::json by = nlohmann::json::object();
  uint64_t unlabelled = 0;
  for (const auto& [teid, t] : s.teids) {
    if (!t.packets) continue;
    auto lab = sessions.lookup_teid(teid);
    if (!lab) {
      unlabelled++;
      continue;
    }
    nlohmann::json e = {{"packets", t.packets}};
    for (const auto& [k, v] : *lab) e[k] = v;
    by[fmt::format("0x{:08x}", teid)] = std::move(e);
  }
  return {{"by_teid", by}, {"teids_unlabelled", unlabelled}};
}

namespace {

class ObsReplayRun final : public core::ReplayRun {
 public:
  explicit ObsReplayRun(std::unique_ptr<ObsObject> obj) : obj_(std::move(obj)) {}
  int prog_fd() const override { return obj_->replay_fd(); }
  Result<nlohmann::json> finish(uint64_t replayed_frames) override {
    auto snap = obj_->snapshot();
    if (!snap) return snap.error();
    // Every frame handed over must have been counted: a batch the program
    // could not walk is a bug here, not a property of the capture.
    const uint64_t seen = snap->total(OBS_CTR_PACKETS), bad = snap->total(OBS_CTR_REPLAY_BAD_BATCH);
    if (seen != replayed_frames || bad != 0)
      return make_error("obs_replay counted {} of {} frames ({} bad batches)", seen, replayed_frames, bad);
    auto j = to_json(*snap);
    if (auto* d = core::session_directory(); d && !snap->teids.empty()) j["gtpu_sessions"] = teid_session_labels(*snap, *d);
    return j;
  }

 private:
  std::unique_ptr<ObsObject> obj_;
};

}  // namespace

Result<std::unique_ptr<core::ReplayRun>> ObsModule::open_replay() {
  auto obj = ObsObject::open(/*replay_mode=*/true, ObsObject::Programs::ReplayOnly);
  if (!obj) return obj.error();
  return std::unique_ptr<core::ReplayRun>(new ObsReplayRun(std::move(*obj)));
}

}  // namespace kagami::obs

KAGAMI_REGISTER_MODULE(obs, ::kagami::obs::ObsModule)
