#include "modules/obs/obs_module.h"

#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "obs.skel.h"

namespace kagami::obs {
namespace {

using core::MetricFamily;
using core::Sample;

std::string hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

const char* dir_name(uint8_t d) { return d == OBS_DIR_EGRESS ? "egress" : "ingress"; }

std::string l4_name(uint8_t l4) {
  switch (l4) {
    case 0: return "non_ip";
    case 1: return "icmp";
    case 6: return "tcp";
    case 17: return "udp";
    case 58: return "icmpv6";
    case 132: return "sctp";
    default: return fmt::format("ip_proto_{}", l4);
  }
}

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
  if (section.is_null()) return make_error("obs: the section needs 'interfaces'");
  if (!section.is_object()) return make_error("obs: the section must be a mapping");
  static const std::set<std::string> known = {"interfaces", "direction", "xdp", "top_n_teids", "node"};
  for (const auto& [k, v] : section.items())
    if (!known.count(k)) return make_error("obs.{}: unknown key (known: interfaces, direction, xdp, top_n_teids, node)", k);

  if (!section.contains("interfaces") || !section["interfaces"].is_array() || section["interfaces"].empty())
    return make_error("obs.interfaces: a list of at least one interface name is required");
  std::set<std::string> seen;
  for (const auto& i : section["interfaces"]) {
    if (!i.is_string()) return make_error("obs.interfaces: every entry must be an interface name");
    std::string n = i.get<std::string>();
    if (n.empty() || n.size() >= IFNAMSIZ || n.find_first_of(":@#/ ") != std::string::npos)
      return make_error("obs.interfaces: '{}' is not a valid interface name", n);
    if (!seen.insert(n).second) return make_error("obs.interfaces: '{}' is listed twice", n);
    cfg.interfaces.push_back(n);
  }
  if (section.contains("direction")) {
    const auto& d = section["direction"];
    std::string s = d.is_string() ? d.get<std::string>() : "";
    if (s == "both") {
      cfg.ingress = cfg.egress = true;
    } else if (s == "ingress") {
      cfg.egress = false;
    } else if (s == "egress") {
      cfg.ingress = false;
    } else {
      return make_error("obs.direction: must be both, ingress or egress (got {})", d.dump());
    }
  }
  if (section.contains("xdp")) {
    if (!section["xdp"].is_boolean()) return make_error("obs.xdp: must be true or false");
    cfg.xdp = section["xdp"].get<bool>();
    if (cfg.xdp && !cfg.ingress)
      return make_error("obs.xdp: XDP only sees ingress, but direction is egress");
  }
  if (section.contains("top_n_teids")) {
    const auto& t = section["top_n_teids"];
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > 10000)
      return make_error("obs.top_n_teids: must be an integer in 0..10000 (got {})", t.dump());
    cfg.top_n_teids = static_cast<uint32_t>(t.get<int64_t>());
  }
  if (section.contains("node")) {
    if (!section["node"].is_string() || section["node"].get<std::string>().empty())
      return make_error("obs.node: must be a non-empty string");
    cfg.node = section["node"].get<std::string>();
  }
  if (cfg.node.empty()) cfg.node = hostname();
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

IfaceStats system_iface_stats() {
  IfaceStats s;
  s.name = [](uint32_t ifindex) -> std::string {
    char buf[IF_NAMESIZE] = {};
    if (if_indextoname(ifindex, buf)) return buf;
    return fmt::format("ifindex{}", ifindex);  // gone since the packet was counted
  };
  s.drops = [](const std::string& ifname, uint64_t& rx, uint64_t& tx) {
    const std::string base = "/sys/class/net/" + ifname + "/statistics/";
    return read_u64(base + "rx_dropped", rx) && read_u64(base + "tx_dropped", tx);
  };
  return s;
}

std::vector<MetricFamily> build_metrics(const ObsSnapshot& s, const ObsConfig& cfg,
                                        const IfaceStats& ifs) {
  std::vector<MetricFamily> out;
  const std::string& node = cfg.node;

  // --- transport per interface ---
  auto pk = family("kagami_obs_packets_total", "Frames seen by obs, per interface, direction and L4 protocol.", "counter");
  auto by = family("kagami_obs_bytes_total", "Frame bytes seen by obs, per interface, direction and L4 protocol.", "counter");
  for (const auto& [k, v] : s.iface) {
    std::map<std::string, std::string> l = {{"node", node},
                                            {"interface", ifs.name(k.ifindex)},
                                            {"direction", dir_name(k.dir)},
                                            {"protocol", l4_name(k.l4)}};
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
  for (int r = 1; r < OBS_MAL_MAX; r++)
    for (int d = 0; d < OBS_DIR_MAX; d++)
      if (s.malformed[d][r])
        mal.samples.push_back({{{"node", node},
                                {"reason", malformed_reason_name(static_cast<obs_malformed_reason>(r))},
                                {"direction", dir_name(d)}},
                               double(s.malformed[d][r]), ""});
  out.push_back(std::move(mal));

  // --- GTP-U ---
  auto gm = family("kagami_obs_gtpu_messages_total", "GTP-U messages (outermost header on UDP 2152) by type.", "counter");
  for (int t = 0; t < 256; t++)
    if (s.gtpu_msg[t])
      gm.samples.push_back({{{"node", node}, {"type", gtpu_msg_name(t)}}, double(s.gtpu_msg[t]), ""});
  out.push_back(std::move(gm));

  // Top-N TEIDs by packets; the rest folded into teid="other".
  std::vector<std::pair<uint32_t, const TeidStats*>> teids;
  for (const auto& [teid, t] : s.teids)
    if (t.packets) teids.push_back({teid, &t});
  std::sort(teids.begin(), teids.end(), [](const auto& a, const auto& b) {
    return a.second->packets != b.second->packets ? a.second->packets > b.second->packets : a.first < b.first;
  });
  auto tp = family("kagami_obs_gtpu_teid_packets_total", "GTP-U packets per TEID (top-N by packets, the rest as teid=\"other\").", "counter");
  auto tb = family("kagami_obs_gtpu_teid_bytes_total", "GTP-U frame bytes per TEID (top-N by packets, the rest as teid=\"other\").", "counter");
  uint64_t other_p = 0, other_b = 0, folded = 0;
  for (size_t i = 0; i < teids.size(); i++) {
    const auto& [teid, t] = teids[i];
    if (i < cfg.top_n_teids) {
      const std::string id = fmt::format("0x{:08x}", teid);
      tp.samples.push_back({{{"node", node}, {"teid", id}}, double(t->packets), ""});
      tb.samples.push_back({{{"node", node}, {"teid", id}}, double(t->frame_bytes), ""});
    } else {
      other_p += t->packets;
      other_b += t->frame_bytes;
      folded++;
    }
  }
  if (folded) {
    tp.samples.push_back({{{"node", node}, {"teid", "other"}}, double(other_p), ""});
    tb.samples.push_back({{{"node", node}, {"teid", "other"}}, double(other_b), ""});
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

  auto qf = family("kagami_obs_gtpu_qfi_packets_total", "GTP-U packets with a PDU Session Container, by QFI, PDU type and hook direction.", "counter");
  for (int slot = 0; slot < OBS_QFI_SLOTS; slot++)
    if (s.qfi[slot].packets)
      qf.samples.push_back({{{"node", node},
                             {"qfi", std::to_string(slot % 64)},
                             {"pdu_type", (slot / 64) % 2 ? "ul" : "dl"},
                             {"direction", dir_name(slot / 128)}},
                            double(s.qfi[slot].packets), ""});
  out.push_back(std::move(qf));

  // --- PFCP ---
  auto pm = family("kagami_obs_pfcp_messages_total", "PFCP messages by type.", "counter");
  for (int t = 0; t < 256; t++)
    if (s.pfcp_msg[t])
      pm.samples.push_back({{{"node", node}, {"type", pfcp_msg_name(t)}}, double(s.pfcp_msg[t]), ""});
  out.push_back(std::move(pm));
  auto pc = family("kagami_obs_pfcp_causes_total", "Cause values of PFCP responses, by message type.", "counter");
  for (const auto& [k, n] : s.pfcp_cause)
    pc.samples.push_back({{{"node", node}, {"type", pfcp_msg_name(k.first)}, {"cause", pfcp_cause_name(k.second)}}, double(n), ""});
  out.push_back(std::move(pc));
  auto ps = family("kagami_obs_pfcp_sessions", "PFCP sessions established (accepted establishments minus accepted deletions seen).", "gauge");
  const uint64_t est = s.total(OBS_CTR_PFCP_SESS_EST_ACCEPTED), del = s.total(OBS_CTR_PFCP_SESS_DEL_ACCEPTED);
  ps.samples.push_back({{{"node", node}}, double(est > del ? est - del : 0), ""});
  out.push_back(std::move(ps));
  auto lat = family("kagami_obs_pfcp_response_latency_seconds", "Time from a PFCP request to its response (matched by peer and sequence number).", "histogram");
  for (const auto& [t, h] : s.pfcp_latency) {
    const std::string type = pfcp_msg_name(t);
    uint64_t cum = 0;
    for (int i = 0; i < OBS_LAT_BUCKETS; i++) {
      cum += h.buckets[i];
      const double le = double(uint64_t{1} << (i + 1)) / 1e6;  // bucket i ends at 2^(i+1) us
      lat.samples.push_back({{{"node", node}, {"type", type}, {"le", i + 1 == OBS_LAT_BUCKETS ? "+Inf" : fmt::format("{:g}", le)}}, double(cum), "_bucket"});
    }
    lat.samples.push_back({{{"node", node}, {"type", type}}, double(h.sum_ns) / 1e9, "_sum"});
    lat.samples.push_back({{{"node", node}, {"type", type}}, double(h.count), "_count"});
  }
  out.push_back(std::move(lat));
  auto un = family("kagami_obs_pfcp_responses_unmatched_total", "PFCP responses whose request was not seen.", "counter");
  un.samples.push_back({{{"node", node}}, double(s.total(OBS_CTR_PFCP_RESPONSES_UNMATCHED)), ""});
  out.push_back(std::move(un));

  // --- SCTP ---
  auto sc = family("kagami_obs_sctp_chunks_total", "SCTP chunks by type (every chunk of every packet).", "counter");
  for (int t = 0; t < 256; t++)
    if (s.sctp_chunk[t]) sc.samples.push_back({{{"node", node}, {"type", std::to_string(t)}}, double(s.sctp_chunk[t]), ""});
  out.push_back(std::move(sc));
  auto sp = family("kagami_obs_sctp_data_chunks_total", "SCTP DATA chunks by payload protocol id (60 = NGAP).", "counter");
  for (int t = 0; t < OBS_SCTP_PPID_SLOTS; t++)
    if (s.sctp_ppid[t])
      sp.samples.push_back({{{"node", node}, {"ppid", t == OBS_SCTP_PPID_OTHER ? "other" : std::to_string(t)}}, double(s.sctp_ppid[t]), ""});
  out.push_back(std::move(sp));
  auto sr = family("kagami_obs_sctp_data_retransmitted_total", "SCTP DATA chunks whose TSN was seen before on the association.", "counter");
  sr.samples.push_back({{{"node", node}}, double(s.total(OBS_CTR_SCTP_DATA_RETRANSMITTED)), ""});
  out.push_back(std::move(sr));
  auto sa = family("kagami_obs_sctp_aborts_total", "SCTP ABORT chunks.", "counter");
  sa.samples.push_back({{{"node", node}}, double(s.total(OBS_CTR_SCTP_ABORTS)), ""});
  out.push_back(std::move(sa));
  return out;
}

std::vector<core::FeatureNeed> ObsModule::needs() const {
  return {{"tc", true, ""}, {"xdp", false, "TC ingress (config xdp: false)"}};
}

Result<std::vector<core::LoadRequest>> ObsModule::plan(const nlohmann::json& config) {
  auto cfg = parse_config(config);
  if (!cfg) return cfg.error();
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
  req.migrations = {{OBS_MAP_COUNTERS, core::MapMigration::Rule::Extend},
                    {OBS_MAP_MALFORMED, core::MapMigration::Rule::Extend},
                    {OBS_MAP_FRAG, core::MapMigration::Rule::Reset},
                    {OBS_MAP_PFCP_PENDING, core::MapMigration::Rule::Reset},
                    {OBS_MAP_SCTP_TSN, core::MapMigration::Rule::Reset}};
  cfg_ = *cfg;
  return std::vector<core::LoadRequest>{std::move(req)};
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
  return build_metrics(*s, cfg_, system_iface_stats());
}

Result<nlohmann::json> ObsModule::snapshot(const core::ProgramManager& pm) {
  auto s = read(pm);
  if (!s) return s.error().with_context("obs");
  return to_json(*s);
}

}  // namespace kagami::obs
