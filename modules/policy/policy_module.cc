#include "modules/policy/policy_module.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/types.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <set>
#include <cstring>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bpf/kernel.h"
#include "bpf/map_view.h"
#include "common/fd.h"
#include "modules/policy/abi.h"
#include "policy.skel.h"

namespace kagami::policy {

const char* reason_name(uint8_t r) {
  switch (r) {
    case POL_R_RULE: return "rule";
    case POL_R_NOT_ISOLATED: return "not_isolated";
    case POL_R_REPLY: return "reply";
    case POL_R_NOT_IP: return "not_ip";
    case POL_R_NDP: return "ndp";
    case POL_R_DENY_RULE: return "deny_rule";
    case POL_R_DEFAULT_DENY: return "default_deny";
    case POL_R_FRAGMENT: return "fragment";
    case POL_R_MALFORMED: return "malformed";
    case POL_R_NO_POLICY: return "no_policy";
    case POL_R_EDGE_DENY: return "edge_deny";
    case POL_R_GTPU_RULE: return "gtpu_rule";
    case POL_R_GTPU_DENY: return "gtpu_deny";
    case POL_R_GTPU_DEFAULT_DENY: return "gtpu_default_deny";
    case POL_R_GTPU_MALFORMED: return "gtpu_malformed";
    case POL_R_GTPU_FRAGMENT: return "gtpu_fragment";
    default: return "unknown";
  }
}

Result<std::vector<Cidr>> netns_addresses(const std::string& netns) {
  const std::string path = netns[0] == '/' ? netns : "/run/netns/" + netns;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return make_error("netns {}: {}", path, std::strerror(errno));
  std::vector<Cidr> out;
  std::string err;
  // setns() moves only the calling thread: a thread of our own enters the
  // namespace, reads, and ends (the agent's threads never move).
  std::thread t([&] {
    if (::setns(fd.get(), CLONE_NEWNET) != 0) {
      err = fmt::format("netns {}: setns: {}", path, std::strerror(errno));
      return;
    }
    struct ifaddrs* ifa = nullptr;
    if (::getifaddrs(&ifa) != 0) {
      err = fmt::format("netns {}: getifaddrs: {}", path, std::strerror(errno));
      return;
    }
    for (auto* i = ifa; i; i = i->ifa_next) {
      if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK)) continue;
      Cidr c;
      if (i->ifa_addr->sa_family == AF_INET) {
        c.family = 4;
        c.len = 32;
        std::memcpy(c.addr.data(), &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
        if (c.addr[0] == 169 && c.addr[1] == 254) continue;
      } else if (i->ifa_addr->sa_family == AF_INET6) {
        c.family = 6;
        c.len = 128;
        std::memcpy(c.addr.data(), &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
        if (c.addr[0] == 0xfe && (c.addr[1] & 0xc0) == 0x80) continue;
      } else {
        continue;
      }
      if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
    }
    ::freeifaddrs(ifa);
  });
  t.join();
  if (!err.empty()) return make_error("{}", err);
  return out;
}

namespace {

template <typename K>
Result<void> clear_slot(int fd, uint32_t key_size, uint32_t value_size, uint8_t slot,
                        const std::function<uint8_t(const K&)>& slot_of) {
  std::vector<K> doomed;
  KAGAMI_TRY(bpf::map_for_each(fd, key_size, value_size, false, [&](const uint8_t* k, const uint8_t*) {
    K key;
    std::memcpy(&key, k, sizeof key);
    if (slot_of(key) == slot) doomed.push_back(key);
  }));
  for (const auto& k : doomed) KAGAMI_TRY(bpf::map_delete(fd, &k));
  return ok();
}

}  // namespace

Result<Applied> write_policy(const std::function<Result<int>(const std::string&)>& fd_of, const Compiled& c,
                             uint32_t sample_rate, uint32_t sample_burst) {
  int fds[10];
  const char* names[10] = {POL_MAP_CFG,  POL_MAP_IDH,   POL_MAP_LENS,  POL_MAP_LOCAL, POL_MAP_ALLOW,
                           POL_MAP_DENY, POL_MAP_EDGE4, POL_MAP_EDGE6, POL_MAP_GTP,   POL_MAP_MOD};
  // Redirect targets are resolved first: an interface that is not there
  // fails the apply, and the policy in force stays.
  if (c.mods.size() > POL_MOD_MAX)
    return make_error("policy: {} rules with modify; the datapath holds {}", c.mods.size(), POL_MOD_MAX);
  std::vector<pol_mod> mods(c.mods.size());
  for (size_t i = 0; i < c.mods.size(); ++i) {
    const Modify& m = c.mods[i].modify;
    pol_mod& v = mods[i];
    std::memset(v.qfi_dscp, POL_MOD_QFI_KEEP, sizeof v.qfi_dscp);
    if (m.dscp) v.flags |= POL_MOD_F_DSCP, v.dscp = *m.dscp;
    if (!m.qfi_dscp.empty()) v.flags |= POL_MOD_F_DSCP_QFI;
    for (auto [q, d] : m.qfi_dscp) v.qfi_dscp[q & 63] = d;
    if (m.ttl) v.flags |= POL_MOD_F_TTL, v.ttl = *m.ttl;
    if (!m.redirect.empty()) {
      v.flags |= POL_MOD_F_REDIRECT;
      v.ifindex = if_nametoindex(m.redirect.c_str());
      if (!v.ifindex)
        return make_error("policy: rule {}: modify.redirect: no interface '{}' on this node", c.mods[i].name,
                          m.redirect);
    }
  }
  for (int i = 0; i < 10; ++i) {
    auto fd = fd_of(names[i]);
    if (!fd) return fd.error();
    fds[i] = *fd;
  }
  const uint32_t zero = 0;
  pol_cfg cfg{};
  KAGAMI_TRY_CTX(bpf::map_lookup(fds[0], &zero, &cfg), "policy: reading pol_cfg");
  const uint8_t slot = cfg.generation == 0 ? 0 : static_cast<uint8_t>((cfg.slot & 1) ^ 1);

  // 1. Empty the slot packets do not read (what the policy before the one
  //    in force left there).
  KAGAMI_TRY(clear_slot<pol_idh_key>(fds[1], sizeof(pol_idh_key), sizeof(pol_ident), slot,
                                     [](const pol_idh_key& k) { return k.slot; }));
  KAGAMI_TRY(clear_slot<pol_local_key>(fds[3], sizeof(pol_local_key), sizeof(pol_local_val), slot,
                                       [](const pol_local_key& k) { return static_cast<uint8_t>(k.slot); }));
  KAGAMI_TRY(clear_slot<pol_rule_key>(fds[4], sizeof(pol_rule_key), sizeof(pol_rule_val), slot,
                                      [](const pol_rule_key& k) { return k.slot; }));
  KAGAMI_TRY(clear_slot<pol_rule_key>(fds[5], sizeof(pol_rule_key), sizeof(pol_rule_val), slot,
                                      [](const pol_rule_key& k) { return k.slot; }));

  KAGAMI_TRY(clear_slot<pol_ip4_key>(fds[6], sizeof(pol_ip4_key), sizeof(pol_rule_val), slot,
                                     [](const pol_ip4_key& k) { return k.slot; }));
  KAGAMI_TRY(clear_slot<pol_ip6_key>(fds[7], sizeof(pol_ip6_key), sizeof(pol_rule_val), slot,
                                     [](const pol_ip6_key& k) { return k.slot; }));

  // 2. Fill it.
  Applied a;
  // Prefixes: one exact entry each, keyed by its length; the lengths
  // present per family go to pol_lens, longest first (written before the
  // switch like everything else in the slot).
  std::set<uint8_t, std::greater<>> lens4, lens6;
  for (const auto& [cidr, id] : c.prefixes) {
    const pol_ident v{id};
    pol_idh_key k{};
    k.slot = slot;
    k.family = cidr.family;
    k.len = cidr.len;
    std::memcpy(k.addr, cidr.addr.data(), cidr.family == 4 ? 4 : 16);  // compile() masks its prefixes
    (cidr.family == 4 ? lens4 : lens6).insert(cidr.len);
    KAGAMI_TRY_CTX(bpf::map_update(fds[1], &k, &v), "policy: writing " + cidr.str());
  }
  for (const int fam : {4, 6}) {
    pol_lens l{};
    for (uint8_t len : fam == 4 ? lens4 : lens6) l.len[l.n++] = len;
    const uint32_t idx = slot * 2u + (fam == 6);
    KAGAMI_TRY_CTX(bpf::map_update(fds[2], &idx, &l), "policy: writing pol_lens");
  }
  for (const auto& [id, flags] : c.local_flags) {
    const pol_local_key k{slot, id};
    const pol_local_val v{flags};
    KAGAMI_TRY_CTX(bpf::map_update(fds[3], &k, &v), "policy: writing pol_local");
  }
  for (const auto& r : c.rules) {
    pol_rule_key k{};
    k.prefixlen = POL_RULE_FIXED_BITS + (r.proto == POL_PROTO_ANY ? 0 : r.port_bits);
    k.slot = slot;
    k.dir = r.dir;
    k.proto = r.proto;
    k.local = htonl(r.local);
    k.peer = htonl(r.peer);
    k.port = htons(r.port);
    const pol_rule_val v{r.rule, r.mod};
    KAGAMI_TRY_CTX(bpf::map_update(fds[r.deny ? 5 : 4], &k, &v), "policy: writing rule " + std::to_string(r.rule));
    (r.deny ? a.deny : a.allow)++;
  }

  for (const auto& [cidr, rule] : c.edge) {
    const pol_rule_val v{rule, 0};
    if (cidr.family == 4) {
      pol_ip4_key k{};
      k.prefixlen = 32u + cidr.len;
      k.slot = slot;
      std::memcpy(k.addr, cidr.addr.data(), 4);
      KAGAMI_TRY_CTX(bpf::map_update(fds[6], &k, &v), "policy: writing edge " + cidr.str());
    } else {
      pol_ip6_key k{};
      k.prefixlen = 32u + cidr.len;
      k.slot = slot;
      std::memcpy(k.addr, cidr.addr.data(), 16);
      KAGAMI_TRY_CTX(bpf::map_update(fds[7], &k, &v), "policy: writing edge " + cidr.str());
    }
  }
  a.edge = c.edge.size();

  // GTP-U rules: the slot's half of the array, in order, then one empty
  // entry that ends the list (what follows it is never read).
  if (c.gtp.size() > POL_GTP_MAX_RULES)
    return make_error("policy: {} GTP-U rule entries; the datapath holds {}", c.gtp.size(), POL_GTP_MAX_RULES);
  auto masked_words = [](const std::optional<Cidr>& cd, uint32_t* want, uint32_t* mask) {
    uint8_t a[16] = {}, m[16] = {};
    if (cd) {
      int bits = cd->len;
      if (cd->family == 4) {  // IPv4-mapped, as the datapath holds inner IPv4 addresses
        a[10] = a[11] = 0xff;
        std::memcpy(a + 12, cd->addr.data(), 4);
        bits += 96;
      } else {
        std::memcpy(a, cd->addr.data(), 16);
      }
      for (int b = 0; b < bits; ++b) m[b / 8] |= static_cast<uint8_t>(0x80 >> (b % 8));
      for (int i = 0; i < 16; ++i) a[i] &= m[i];
    }
    std::memcpy(want, a, 16);
    std::memcpy(mask, m, 16);
  };
  for (size_t i = 0; i <= c.gtp.size() && i < POL_GTP_MAX_RULES; ++i) {
    pol_gtp_rule v{};
    if (i < c.gtp.size()) {
      const GtpEntry& e = c.gtp[i];
      v.rule = e.rule;
      v.local = e.local;
      v.dir = e.dir;
      v.deny = e.deny;
      v.mod = static_cast<uint8_t>(e.mod);
      if (e.teid) v.flags |= POL_GTP_F_TEID, v.teid = *e.teid;
      if (e.qfi) v.flags |= POL_GTP_F_QFI, v.qfi = *e.qfi;
      if (!e.any_proto) v.flags |= POL_GTP_F_PROTO, v.proto = e.proto;
      v.port_lo = e.port_lo;
      v.port_hi = e.port_hi;
      masked_words(e.src, v.src, v.src_mask);
      masked_words(e.dst, v.dst, v.dst_mask);
    }
    const uint32_t k = slot * POL_GTP_MAX_RULES + static_cast<uint32_t>(i);
    KAGAMI_TRY_CTX(bpf::map_update(fds[8], &k, &v), "policy: writing GTP-U rule " + std::to_string(i));
  }
  a.gtp = c.gtp.size();
  for (size_t i = 0; i < mods.size(); ++i) {
    const uint32_t k = slot * POL_MOD_MAX + static_cast<uint32_t>(i);
    KAGAMI_TRY_CTX(bpf::map_update(fds[9], &k, &mods[i]), "policy: writing modify entry " + std::to_string(i));
  }
  a.mods = mods.size();

  // 3. The switch, written last: one map update of the one-entry array
  //    (the kernel copies the value under RCU; a packet reads the old or the
  //    new slot, never half of each).
  pol_cfg next{slot, cfg.generation + 1, sample_rate, sample_burst};
  KAGAMI_TRY_CTX(bpf::map_update(fds[0], &zero, &next), "policy: switching to the new slot");
  a.generation = next.generation;
  a.slot = slot;
  a.prefixes = c.prefixes.size();
  a.identities = c.identities;
  a.locals = c.local_flags.size();
  return a;
}

std::vector<core::FeatureNeed> PolicyModule::needs() const {
  return {{"tc", true, ""}, {"lpm_trie", true, ""}, {"ringbuf", false, "no flow events"},
          {"xdp", false, "no XDP deny-list (edge_interfaces refused)"}};
}

Result<std::vector<core::LoadRequest>> PolicyModule::plan(const nlohmann::json& config, const core::ModuleContext& ctx) {
  auto cfg = parse_policy_config(config);
  if (!cfg) return cfg.error();
  auto wl = parse_workloads(config.is_object() && config.contains("workloads") ? config["workloads"] : nlohmann::json());
  if (!wl) return wl.error().with_context("policy");
  // Every policy file is read and checked now, before anything changes: an
  // invalid one fails the apply and the policy in force stays.
  auto pols = load_policy_files(cfg->files);
  if (!pols) return pols.error().with_context("policy");
  core::LoadRequest req;
  req.name = kProgramName;
  size_t sz = 0;
  const auto* b = static_cast<const uint8_t*>(policy_bpf__elf_bytes(&sz));
  req.source.bytes.assign(b, b + sz);
  req.source.label = "builtin:policy";
  req.builtin = true;
  for (const auto& i : cfg->interfaces)
    for (const char* dir : {"ingress", "egress"}) {
      auto ap = core::AttachPoint::parse(fmt::format("tc:{}:{}@pol_tc_{}#{}", i, dir, dir, kTcOrder));
      if (!ap) return ap.error().with_context("policy");
      req.attach.push_back(*ap);
    }
  bool xdp_resolved = false;
  for (const auto& it : ctx.features.items) xdp_resolved = xdp_resolved || it.need.feature == "xdp";
  if (!cfg->edge_interfaces.empty() && xdp_resolved && !ctx.features.available("xdp"))
    return make_error("policy.edge_interfaces: this kernel has no XDP, so there is no edge deny-list; "
                      "remove edge_interfaces (the TC policy does not need it)");
  // pol_xdp is chain-aware (bpf/lib/xdp_chain.h) and a chain's slot is per
  // interface: the first edge interface rides on this load, every other one
  // takes a load of its own that shares this one's maps (as obs does).
  std::vector<core::LoadRequest> extra;
  for (size_t i = 0; i < cfg->edge_interfaces.size(); ++i) {
    auto ap = core::AttachPoint::parse(fmt::format("xdp:{}@pol_xdp", cfg->edge_interfaces[i]));
    if (!ap) return ap.error().with_context("policy");
    if (i == 0) {
      req.attach.push_back(*ap);
      continue;
    }
    core::LoadRequest x;
    x.name = fmt::format("{}-xdp-{}", kProgramName, i + 1);
    x.source = req.source;
    x.builtin = true;
    x.attach = {*ap};
    x.share_maps_with = kProgramName;
    extra.push_back(std::move(x));
  }
  // Conntrack and counters may start over when the layout changes; the
  // policy tables are rewritten by configure() anyway.
  for (const char* m : {POL_MAP_CT, POL_MAP_STATS, POL_MAP_IDH, POL_MAP_LENS, POL_MAP_LOCAL, POL_MAP_ALLOW,
                        POL_MAP_DENY, POL_MAP_CFG, POL_MAP_EDGE4, POL_MAP_EDGE6, POL_MAP_GTP, POL_MAP_MOD,
                        POL_MAP_MOD_STATS})
    req.migrations.push_back({m, core::MapMigration::Rule::Reset});
  for (auto& x : extra) x.migrations = req.migrations;
  ctx_ = ctx;
  cfg_ = std::move(*cfg);
  workloads_ = std::move(*wl);
  policies_ = std::move(*pols);
  std::vector<core::LoadRequest> out{std::move(req)};
  for (auto& x : extra) out.push_back(std::move(x));
  return out;
}

Result<void> PolicyModule::configure(const core::ProgramManager& pm) {
  std::vector<Workload> wl = workloads_;
  for (auto& w : wl) {
    if (w.netns.empty()) continue;
    auto addrs = netns_addresses(w.netns);
    if (!addrs) return addrs.error().with_context(fmt::format("policy: workload {}/{}", w.ns, w.name));
    for (const auto& a : *addrs)
      if (std::find(w.addresses.begin(), w.addresses.end(), a) == w.addresses.end()) w.addresses.push_back(a);
  }
  std::unique_lock lock(mu_);
  auto c = compile(wl, policies_, cfg_.namespaces, ids_);
  if (!c) return c.error().with_context("policy (the policy in force stays)");
  lock.unlock();
  std::vector<Fd> fds;
  auto a = write_policy(
      [&](const std::string& m) -> Result<int> {
        auto fd = pm.map_fd(kProgramName, m);
        if (!fd) return fd.error();
        fds.push_back(std::move(*fd));
        return fds.back().get();
      },
      *c, cfg_.sample_rate, cfg_.sample_burst);
  if (!a) return a.error().with_context("policy (the policy in force stays)");
  lock.lock();
  a->policies = policies_.size();
  applied_ = *a;
  identity_names_ = c->identity_names;
  if (ctx_.log)
    ctx_.log->info("policy generation {} in force: {} policies, {} identities, {} allow and {} deny entries",
                   a->generation, a->policies, a->identities, a->allow, a->deny);
  return ok();
}

std::vector<core::EventSource> PolicyModule::event_sources() const {
  core::EventSource s;
  s.program = kProgramName;
  s.ring_map = POL_MAP_EVENTS;
  s.drops_map = POL_MAP_DROPS;
  s.decode = [this](std::span<const uint8_t> rec) -> Result<nlohmann::json> {
    if (rec.size() < sizeof(pol_flow_event)) return make_error("policy: short flow record ({} bytes)", rec.size());
    pol_flow_event e;
    std::memcpy(&e, rec.data(), sizeof e);
    if (e.hdr.kind != POL_EVENT_FLOW) return make_error("policy: unknown record kind {}", e.hdr.kind);
    auto addr = [&](const uint8_t* a) {
      char buf[INET6_ADDRSTRLEN] = {};
      if (e.family == 4) inet_ntop(AF_INET, a + 12, buf, sizeof buf);
      else inet_ntop(AF_INET6, a, buf, sizeof buf);
      return std::string(buf);
    };
    std::lock_guard lock(mu_);
    auto ident = [&](uint32_t id) {
      auto it = identity_names_.find(id);
      return it == identity_names_.end() ? std::string("world") : it->second;
    };
    const bool egress = e.dir == POL_DIR_EGRESS;
    char ifname[IF_NAMESIZE] = {};
    if (!if_indextoname(e.ifindex, ifname)) ifname[0] = 0;
    return nlohmann::json{{"type", "flow"},
                          {"verdict", e.verdict == POL_V_DROP ? "drop" : "allow"},
                          {"reason", reason_name(static_cast<uint8_t>(e.reason))},
                          {"rule", ids_.name(e.rule)},
                          {"direction", egress ? "egress" : "ingress"},
                          {"source", {{"ip", addr(e.saddr)}, {"port", e.sport}, {"workload", ident(egress ? e.local_id : e.peer_id)}}},
                          {"destination", {{"ip", addr(e.daddr)}, {"port", e.dport}, {"workload", ident(egress ? e.peer_id : e.local_id)}}},
                          {"protocol", e.proto},
                          {"interface", std::string(ifname)},
                          {"generation", e.generation}};
  };
  return {s};
}

namespace {

Result<std::vector<StatRow>> read_stats(const core::ProgramManager& pm) {
  auto fd = pm.map_fd(kProgramName, POL_MAP_STATS);
  if (!fd) return fd.error();
  auto v = bpf::MapView<pol_stat_key, pol_stat_val>::open(fd->get(), POL_MAP_STATS);
  if (!v) return v.error();
  std::vector<StatRow> rows;
  KAGAMI_TRY(v->for_each_summed([&](const pol_stat_key& k, const pol_stat_val& s) {
    rows.push_back({k.rule, k.reason, k.verdict, k.dir, s.packets, s.bytes});
  }));
  return rows;
}

}  // namespace

std::vector<core::MetricFamily> build_metrics(const std::vector<StatRow>& rows, const RuleIds& ids,
                                              const Applied& a, const std::string& node) {
  core::MetricFamily pk{"kagami_policy_packets_total",
                        "Packets judged by the policy datapath, by rule, reason, verdict and direction.", "counter", {}};
  core::MetricFamily by{"kagami_policy_bytes_total",
                        "Bytes judged by the policy datapath, by rule, reason, verdict and direction.", "counter", {}};
  for (const auto& r : rows) {
    std::map<std::string, std::string> l = {{"node", node},
                                            {"rule", r.rule ? ids.name(r.rule) : "none"},
                                            {"reason", reason_name(r.reason)},
                                            {"verdict", r.verdict == POL_V_DROP ? "drop" : "allow"},
                                            {"direction", r.dir == POL_DIR_EGRESS ? "egress" : "ingress"}};
    pk.samples.push_back({l, double(r.packets), ""});
    by.samples.push_back({l, double(r.bytes), ""});
  }
  core::MetricFamily gen{"kagami_policy_generation", "Generation of the policy in force (0: none loaded).", "gauge", {}};
  gen.samples.push_back({{{"node", node}}, double(a.generation), ""});
  core::MetricFamily sz{"kagami_policy_entries", "Entries of the policy in force, by table.", "gauge", {}};
  for (auto [t, v] : std::initializer_list<std::pair<const char*, size_t>>{
           {"prefixes", a.prefixes}, {"identities", a.identities}, {"allow", a.allow}, {"deny", a.deny},
           {"locals", a.locals}, {"policies", a.policies}, {"edge", a.edge}, {"gtpu", a.gtp}, {"modify", a.mods}})
    sz.samples.push_back({{{"node", node}, {"table", t}}, double(v), ""});
  return {pk, by, gen, sz};
}

const char* mod_action_name(uint32_t a) {
  switch (a) {
    case POL_MOD_A_DSCP: return "dscp";
    case POL_MOD_A_TTL: return "ttl";
    case POL_MOD_A_REDIRECT: return "redirect";
    case POL_MOD_A_FAILED: return "failed";
    default: return "unknown";
  }
}

Result<std::vector<ModStatRow>> read_mod_stats(const core::ProgramManager& pm) {
  auto fd = pm.map_fd(kProgramName, POL_MAP_MOD_STATS);
  if (!fd) return fd.error();
  auto v = bpf::MapView<pol_mod_stat_key, uint64_t>::open(fd->get(), POL_MAP_MOD_STATS);
  if (!v) return v.error();
  std::vector<ModStatRow> rows;
  KAGAMI_TRY(v->for_each_summed([&](const pol_mod_stat_key& k, const uint64_t& n) { rows.push_back({k.rule, k.action, n}); }));
  return rows;
}

Result<std::vector<core::MetricFamily>> PolicyModule::collect(const core::ProgramManager& pm) {
  auto rows = read_stats(pm);
  if (!rows) return rows.error().with_context("policy");
  auto mrows = read_mod_stats(pm);
  if (!mrows) return mrows.error().with_context("policy");
  std::lock_guard lock(mu_);
  const std::string node = ctx_.node.empty() ? "unknown" : ctx_.node;
  auto out = build_metrics(*rows, ids_, applied_, node);
  core::MetricFamily md{"kagami_policy_modified_total",
                        "Packets modified by a rule's Modify actions, by rule and action (failed: dropped).", "counter", {}};
  for (const auto& r : *mrows)
    md.samples.push_back({{{"node", node}, {"rule", ids_.name(r.rule)}, {"action", mod_action_name(r.action)}}, double(r.packets), ""});
  out.push_back(std::move(md));
  return out;
}

Result<nlohmann::json> PolicyModule::snapshot(const core::ProgramManager& pm) {
  auto rows = read_stats(pm);
  if (!rows) return rows.error().with_context("policy");
  std::lock_guard lock(mu_);
  nlohmann::json verdicts = nlohmann::json::array();
  for (const auto& r : *rows)
    verdicts.push_back({{"rule", r.rule ? ids_.name(r.rule) : "none"},
                        {"reason", reason_name(r.reason)},
                        {"verdict", r.verdict == POL_V_DROP ? "drop" : "allow"},
                        {"direction", r.dir == POL_DIR_EGRESS ? "egress" : "ingress"},
                        {"packets", r.packets},
                        {"bytes", r.bytes}});
  nlohmann::json modified = nlohmann::json::array();
  if (auto m = read_mod_stats(pm))
    for (const auto& r : *m)
      modified.push_back({{"rule", ids_.name(r.rule)}, {"action", mod_action_name(r.action)}, {"packets", r.packets}});
  nlohmann::json wl = nlohmann::json::array();
  for (const auto& w : workloads_) wl.push_back({{"name", w.name}, {"namespace", w.ns}, {"labels", w.labels}});
  nlohmann::json pols = nlohmann::json::array();
  for (const auto& p : policies_) pols.push_back({{"kind", p.kind}, {"name", p.name}, {"namespace", p.ns}, {"file", p.file}});
  return nlohmann::json{{"generation", applied_.generation},
                        {"slot", applied_.slot},
                        {"hooks", {{"tc_order", kTcOrder}, {"interfaces", cfg_.interfaces}, {"xdp_edge_interfaces", cfg_.edge_interfaces}}},
                        {"entries", {{"prefixes", applied_.prefixes}, {"identities", applied_.identities},
                                     {"allow", applied_.allow}, {"deny", applied_.deny}, {"locals", applied_.locals}, {"edge", applied_.edge}, {"gtpu", applied_.gtp}, {"modify", applied_.mods}}},
                        {"workloads", wl},
                        {"policies", pols},
                        {"verdicts", verdicts},
                        {"modified", modified}};
}

}  // namespace kagami::policy

KAGAMI_REGISTER_MODULE(policy, ::kagami::policy::PolicyModule)
