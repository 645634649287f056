#include "modules/policy/l7/l7_module.h"

#include <arpa/inet.h>
#include <linux/types.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bpf/kernel.h"
#include "bpf/map_view.h"
#include "common/fd.h"
#include "core/config_section.h"
#include "modules/policy/l7/abi.h"
#include "modules/policy/policy_module.h"
#include "policy_l7.skel.h"

namespace kagami::policy::l7 {

const char* reason_name(uint8_t r) {
  switch (r) {
    case L7_R_RULE: return "rule";
    case L7_R_NO_RULE: return "no_rule";
    case L7_R_OVERSIZED: return "oversized";
    case L7_R_MALFORMED: return "malformed";
    case L7_R_CHUNKED: return "chunked";
    case L7_R_SHORT_HEAD: return "short_head";
    case L7_R_POISONED: return "after_deny";
    case L7_R_BODY: return "body";
    case L7_R_NO_STATE: return "no_state";
    case L7_R_H2C: return "h2c";
    default: return "unknown";
  }
}

Result<L7Config> parse_l7_config(const nlohmann::json& section) {
  L7Config cfg;
  core::ConfigSection s(kProgramName, section);
  KAGAMI_TRY(s.allow({"files", "cgroups", "workloads", "sample_rate", "sample_burst"}));
  KAGAMI_TRY(s.strings("files", cfg.files, core::Need::Required));
  KAGAMI_TRY(s.strings("cgroups", cfg.cgroups));
  for (const auto& c : cfg.cgroups)
    if (c.empty() || c[0] != '/') return make_error("{}.cgroups: '{}' is not an absolute path", kProgramName, c);
  KAGAMI_TRY(s.integer("sample_rate", cfg.sample_rate, 0, 1000000));
  KAGAMI_TRY(s.integer("sample_burst", cfg.sample_burst, 1, 1000000));
  return cfg;
}

Result<Applied> write_l7(const std::function<Result<int>(const std::string&)>& fd_of, const Compiled& c,
                         uint32_t sample_rate, uint32_t sample_burst) {
  auto cfg_fd = fd_of(L7_MAP_CFG);
  if (!cfg_fd) return cfg_fd.error();
  auto rules_fd = fd_of(L7_MAP_RULES);
  if (!rules_fd) return rules_fd.error();
  auto ports_fd = fd_of(L7_MAP_PORTS);
  if (!ports_fd) return ports_fd.error();
  auto peers_fd = fd_of(L7_MAP_PEERS);
  if (!peers_fd) return peers_fd.error();
  if (c.rules.size() > L7_MAX_RULES) return make_error("L7 policy: {} rules, more than {}", c.rules.size(), L7_MAX_RULES);

  const uint32_t zero = 0;
  l7_cfg cur{};
  KAGAMI_TRY_CTX(bpf::map_lookup(*cfg_fd, &zero, &cur), "policy_l7: reading l7_cfg");
  const uint32_t base = cur.generation == 0 ? 0 : (cur.base == 0 ? L7_MAX_RULES : 0);

  // 1. Peers and ports first: new entries only add identities and policed
  //    ports that the rules written next refer to.
  std::vector<uint32_t> old_peers;
  KAGAMI_TRY(bpf::map_for_each(*peers_fd, 4, 4, false, [&](const uint8_t* k, const uint8_t*) {
    uint32_t ip;
    std::memcpy(&ip, k, 4);
    if (!c.peers.count(ip)) old_peers.push_back(ip);
  }));
  for (const auto& [ip, id] : c.peers) KAGAMI_TRY_CTX(bpf::map_update(*peers_fd, &ip, &id), "policy_l7: writing l7_peers");
  const uint8_t one = 1;
  for (uint16_t p : c.ports) KAGAMI_TRY_CTX(bpf::map_update(*ports_fd, &p, &one), "policy_l7: writing l7_ports");

  // 2. The half not in force.
  for (size_t i = 0; i < c.rules.size(); ++i) {
    const auto& r = c.rules[i];
    l7_rule v{};
    v.rule_id = r.rule_id;
    v.src_ident = r.src_ident;
    v.port = r.port;
    v.method_len = static_cast<uint8_t>(std::min<size_t>(r.method.size(), L7_MAX_METHOD));
    std::memcpy(v.method, r.method.data(), v.method_len);
    v.path_kind = static_cast<uint8_t>(r.path.kind);
    v.path_len = static_cast<uint16_t>(std::min<size_t>(r.path.literal.size(), L7_MAX_PATH));
    std::memcpy(v.path, r.path.literal.data(), v.path_len);
    const uint32_t k = base + static_cast<uint32_t>(i);
    KAGAMI_TRY_CTX(bpf::map_update(*rules_fd, &k, &v), "policy_l7: writing l7_rules");
  }

  // 3. The switch, written last (one update of a one-entry array).
  l7_cfg next{};
  next.nrules = static_cast<uint32_t>(c.rules.size());
  next.base = base;
  next.generation = cur.generation + 1;
  next.sample_rate = sample_rate;
  next.sample_burst = sample_burst;
  KAGAMI_TRY_CTX(bpf::map_update(*cfg_fd, &zero, &next), "policy_l7: switching to the new rules");

  // 4. What the new policy no longer names: ports no longer policed (their
  //    connections already in the sockhash stay judged, by the new rules:
  //    no rule, so denied, until they close) and peers gone.
  std::vector<uint16_t> old_ports;
  KAGAMI_TRY(bpf::map_for_each(*ports_fd, 2, 1, false, [&](const uint8_t* k, const uint8_t*) {
    uint16_t p;
    std::memcpy(&p, k, 2);
    if (std::find(c.ports.begin(), c.ports.end(), p) == c.ports.end()) old_ports.push_back(p);
  }));
  for (uint16_t p : old_ports) (void)bpf::map_delete(*ports_fd, &p);
  for (uint32_t ip : old_peers) (void)bpf::map_delete(*peers_fd, &ip);

  Applied a;
  a.generation = next.generation;
  a.base = base;
  a.rules = c.rules.size();
  a.ports = c.ports.size();
  a.peers = c.peers.size();
  return a;
}

std::vector<core::FeatureNeed> L7Module::needs() const {
  return {{"sockops", true, ""}, {"sk_skb", true, ""}, {"sockhash", true, ""}, {"bpf_loop", true, ""},
          {"ringbuf", false, "no flow events"}};
}

Result<std::vector<core::LoadRequest>> L7Module::plan(const nlohmann::json& config, const core::ModuleContext& ctx) {
  auto cfg = parse_l7_config(config);
  if (!cfg) return cfg.error();
  auto wl = parse_workloads(config.is_object() && config.contains("workloads") ? config["workloads"] : nlohmann::json());
  if (!wl) return wl.error().with_context(kProgramName);
  auto pols = load_l7_policy_files(cfg->files);
  if (!pols) return pols.error().with_context(kProgramName);
  auto comp = compile_l7(*wl, *pols);
  if (!comp) return comp.error().with_context(kProgramName);
  std::vector<std::string> cgroups = cfg->cgroups;
  for (const auto& c : comp->cgroups)
    if (std::find(cgroups.begin(), cgroups.end(), c) == cgroups.end()) cgroups.push_back(c);
  if (cgroups.empty())
    return make_error("{}: no cgroup to hook: select a workload declared with cgroup:, or list {}.cgroups",
                      kProgramName, kProgramName);
  core::LoadRequest req;
  req.name = kProgramName;
  size_t sz = 0;
  const auto* b = static_cast<const uint8_t*>(policy_l7_bpf__elf_bytes(&sz));
  req.source.bytes.assign(b, b + sz);
  req.source.label = "builtin:policy_l7";
  req.builtin = true;
  std::vector<std::string> specs;
  for (const auto& c : cgroups) specs.push_back(fmt::format("cgroup:{}:sockops@l7_sockops", c));
  specs.push_back(fmt::format("sk_skb:{}:parser@l7_parser", L7_MAP_SOCKS));
  specs.push_back(fmt::format("sk_skb:{}:verdict@l7_verdict", L7_MAP_SOCKS));
  for (const auto& s : specs) {
    auto ap = core::AttachPoint::parse(s);
    if (!ap) return ap.error().with_context(kProgramName);
    req.attach.push_back(*ap);
  }
  for (const char* m : {L7_MAP_CFG, L7_MAP_RULES, L7_MAP_PORTS, L7_MAP_PEERS, L7_MAP_STATS})
    req.migrations.push_back({m, core::MapMigration::Rule::Reset});
  ctx_ = ctx;
  cfg_ = std::move(*cfg);
  workloads_ = std::move(*wl);
  policies_ = std::move(*pols);
  compiled_ = std::move(*comp);
  return std::vector<core::LoadRequest>{std::move(req)};
}

Result<void> L7Module::configure(const core::ProgramManager& pm) {
  // Addresses of netns workloads are read now (they may change between applies).
  std::vector<Workload> wl = workloads_;
  for (auto& w : wl) {
    if (w.netns.empty()) continue;
    auto addrs = netns_addresses(w.netns);
    if (!addrs) return addrs.error().with_context(fmt::format("{}: workload {}/{}", kProgramName, w.ns, w.name));
    for (const auto& a : *addrs)
      if (std::find(w.addresses.begin(), w.addresses.end(), a) == w.addresses.end()) w.addresses.push_back(a);
  }
  auto c = compile_l7(wl, policies_);
  if (!c) return c.error().with_context(std::string(kProgramName) + " (the policy in force stays)");
  std::vector<Fd> fds;
  auto a = write_l7(
      [&](const std::string& m) -> Result<int> {
        auto fd = pm.map_fd(kProgramName, m);
        if (!fd) return fd.error();
        fds.push_back(std::move(*fd));
        return fds.back().get();
      },
      *c, cfg_.sample_rate, cfg_.sample_burst);
  if (!a) return a.error().with_context(std::string(kProgramName) + " (the policy in force stays)");
  std::lock_guard lock(mu_);
  applied_ = *a;
  rule_names_ = c->rule_names;
  identity_names_ = c->identity_names;
  if (ctx_.log)
    ctx_.log->info("L7 policy generation {} in force: {} rules on {} ports", a->generation, a->rules, a->ports);
  return ok();
}

std::vector<core::EventSource> L7Module::event_sources() const {
  core::EventSource s;
  s.program = kProgramName;
  s.ring_map = L7_MAP_EVENTS;
  s.drops_map = L7_MAP_DROPS;
  s.decode = [this](std::span<const uint8_t> rec) -> Result<nlohmann::json> {
    if (rec.size() < sizeof(l7_event)) return make_error("policy_l7: short flow record ({} bytes)", rec.size());
    l7_event e;
    std::memcpy(&e, rec.data(), sizeof e);
    if (e.hdr.kind != L7_EVENT_FLOW) return make_error("policy_l7: unknown record kind {}", e.hdr.kind);
    auto ip = [](uint32_t a) {
      char buf[INET_ADDRSTRLEN] = {};
      inet_ntop(AF_INET, &a, buf, sizeof buf);
      return std::string(buf);
    };
    const size_t mlen = strnlen(e.method, L7_MAX_METHOD);
    const size_t plen = std::min<size_t>(e.path_len, L7_EVENT_PATH);
    std::lock_guard lock(mu_);
    auto ident = [&](uint32_t id) {
      auto it = identity_names_.find(id);
      return it == identity_names_.end() ? std::string("world") : it->second;
    };
    // The server side: the workload whose address is the local one.
    std::string dst = "world";
    for (const auto& [addr, id] : compiled_.peers)
      if (addr == e.local_ip4) dst = ident(id);
    nlohmann::json j{{"type", "flow"},
                     {"l7", "http"},
                     {"verdict", e.verdict == L7_V_DENY ? "deny" : "allow"},
                     {"reason", reason_name(e.reason)},
                     {"rule", e.rule < rule_names_.size() ? rule_names_[e.rule] : "unknown"},
                     {"method", std::string(e.method, mlen)},
                     {"path", std::string(e.path, plen)},
                     {"source", {{"ip", ip(e.peer_ip4)}, {"port", e.peer_port}, {"workload", ident(e.src_ident)}}},
                     {"destination", {{"ip", ip(e.local_ip4)}, {"port", e.local_port}, {"workload", dst}}},
                     {"generation", e.generation}};
    if (e.hdr.flags & L7_EV_F_PATH_TRUNC) j["path_truncated"] = true;
    return j;
  };
  return {s};
}

namespace {

Result<std::vector<StatRow>> read_stats(const core::ProgramManager& pm) {
  auto fd = pm.map_fd(kProgramName, L7_MAP_STATS);
  if (!fd) return fd.error();
  auto v = bpf::MapView<l7_stat_key, l7_stat_val>::open(fd->get(), L7_MAP_STATS);
  if (!v) return v.error();
  std::vector<StatRow> rows;
  KAGAMI_TRY(v->for_each_summed([&](const l7_stat_key& k, const l7_stat_val& s) {
    rows.push_back({k.rule, k.reason, k.verdict, k.port, s.requests, s.bytes});
  }));
  return rows;
}

}  // namespace

std::vector<core::MetricFamily> build_metrics(const std::vector<StatRow>& rows,
                                              const std::vector<std::string>& rule_names, const Applied& a,
                                              const std::string& node) {
  core::MetricFamily rq{"kagami_policy_l7_requests_total",
                        "HTTP messages judged by the L7 policy (request heads, and body chunks with reason body), "
                        "by rule, reason, verdict and port.",
                        "counter", {}};
  core::MetricFamily by{"kagami_policy_l7_bytes_total", "Bytes of those messages.", "counter", {}};
  for (const auto& r : rows) {
    std::map<std::string, std::string> l = {{"node", node},
                                            {"rule", r.rule < rule_names.size() ? rule_names[r.rule] : "unknown"},
                                            {"reason", reason_name(r.reason)},
                                            {"verdict", r.verdict == L7_V_DENY ? "deny" : "allow"},
                                            {"port", std::to_string(r.port)}};
    rq.samples.push_back({l, double(r.requests), ""});
    by.samples.push_back({l, double(r.bytes), ""});
  }
  core::MetricFamily gen{"kagami_policy_l7_generation", "Generation of the L7 policy in force (0: none).", "gauge", {}};
  gen.samples.push_back({{{"node", node}}, double(a.generation), ""});
  core::MetricFamily sz{"kagami_policy_l7_entries", "Entries of the L7 policy in force, by table.", "gauge", {}};
  for (auto [t, v] : std::initializer_list<std::pair<const char*, size_t>>{
           {"rules", a.rules}, {"ports", a.ports}, {"peers", a.peers}})
    sz.samples.push_back({{{"node", node}, {"table", t}}, double(v), ""});
  return {rq, by, gen, sz};
}

Result<std::vector<core::MetricFamily>> L7Module::collect(const core::ProgramManager& pm) {
  auto rows = read_stats(pm);
  if (!rows) return rows.error().with_context(kProgramName);
  std::lock_guard lock(mu_);
  return build_metrics(*rows, rule_names_, applied_, ctx_.node.empty() ? "unknown" : ctx_.node);
}

Result<nlohmann::json> L7Module::snapshot(const core::ProgramManager& pm) {
  auto rows = read_stats(pm);
  if (!rows) return rows.error().with_context(kProgramName);
  std::lock_guard lock(mu_);
  nlohmann::json verdicts = nlohmann::json::array();
  for (const auto& r : *rows)
    verdicts.push_back({{"rule", r.rule < rule_names_.size() ? rule_names_[r.rule] : "unknown"},
                        {"reason", reason_name(r.reason)},
                        {"verdict", r.verdict == L7_V_DENY ? "deny" : "allow"},
                        {"port", r.port},
                        {"requests", r.requests},
                        {"bytes", r.bytes}});
  nlohmann::json pols = nlohmann::json::array();
  for (const auto& p : policies_) pols.push_back({{"name", p.name}, {"namespace", p.ns}, {"file", p.file}});
  return nlohmann::json{{"generation", applied_.generation},
                        {"hooks", {{"sockops_cgroups", compiled_.cgroups}, {"cgroups", cfg_.cgroups},
                                   {"sk_skb", "stream_parser + stream_verdict on l7_socks"}}},
                        {"entries", {{"rules", applied_.rules}, {"ports", applied_.ports}, {"peers", applied_.peers}}},
                        {"policies", pols},
                        {"verdicts", verdicts}};
}

}  // namespace kagami::policy::l7

KAGAMI_REGISTER_MODULE(policy_l7, ::kagami::policy::l7::L7Module)
