#include "modules/policy/compile.h"

#include <linux/types.h>

#include <algorithm>
#include <set>
#include <unordered_map>

#include <fmt/format.h>

#include "modules/policy/abi.h"

namespace kagami::policy {

uint32_t RuleIds::id(const std::string& name) {
  auto [it, fresh] = ids_.emplace(name, static_cast<uint32_t>(names_.size()));
  if (fresh) names_.push_back(name);
  return it->second;
}

const std::string& RuleIds::name(uint32_t id) const {
  static const std::string unknown = "unknown";
  return id < names_.size() ? names_[id] : unknown;
}

std::vector<std::pair<uint16_t, uint8_t>> port_prefixes(uint16_t first, uint16_t last) {
  std::vector<std::pair<uint16_t, uint8_t>> out;
  uint32_t lo = first;
  const uint32_t hi = last;
  // At most 2 x 16 prefixes: each step takes the largest aligned block.
  while (lo <= hi) {
    uint32_t size = lo == 0 ? 65536 : (lo & (~lo + 1));
    while (lo + size - 1 > hi) size >>= 1;
    uint8_t bits = 16;
    for (uint32_t s = size; s > 1; s >>= 1) --bits;
    out.emplace_back(static_cast<uint16_t>(lo), bits);
    lo += size;
  }
  return out;
}

namespace {

Cidr masked(const Cidr& c, uint8_t len) {
  Cidr m = c;
  m.len = len;
  const int max = c.family == 4 ? 32 : 128;
  for (int b = len; b < max; ++b) m.addr[b / 8] &= static_cast<uint8_t>(~(0x80 >> (b % 8)));
  return m;
}

struct CidrHash {
  size_t operator()(const Cidr& c) const {
    size_t h = c.family * 131 + c.len;
    for (uint8_t b : c.addr) h = h * 1099511628211ull ^ b;
    return h;
  }
};

struct PrefixInfo {
  int workload = -1;
  std::vector<uint32_t> cidr_of;    // peers whose ipBlock.cidr is this prefix
  std::vector<uint32_t> except_of;  // peers whose ipBlock.except holds it
};

struct PeerRef {
  const Policy* policy;
  const Peer* peer;
  uint32_t rule;  // index of the rule the peer belongs to (every peer is in exactly one)
};

}  // namespace

Result<Compiled> compile(const std::vector<Workload>& workloads, const std::vector<Policy>& policies,
                         const Namespaces& namespaces, RuleIds& ids, const CompileLimits& lim) {
  Compiled out;
  // 1. Peers: every from/to entry of every rule, numbered.
  std::vector<PeerRef> peers;
  std::map<const Rule*, uint32_t> rule_index;
  for (const auto& p : policies)
    for (const auto* rules : {&p.ingress, &p.egress})
      for (const auto& r : *rules) {
        const uint32_t ri = static_cast<uint32_t>(rule_index.size());
        rule_index[&r] = ri;
        for (const auto& pe : r.peers) peers.push_back({&p, &pe, ri});
      }

  // 2. Per workload: the policies that select it and the selector peers it satisfies.
  std::vector<std::vector<uint32_t>> selected_by(workloads.size()), wl_peers(workloads.size());
  for (size_t w = 0; w < workloads.size(); ++w) {
    const auto& wl = workloads[w];
    const Labels nsl = namespace_labels(namespaces, wl.ns);
    for (size_t p = 0; p < policies.size(); ++p)
      if (policies[p].ns == wl.ns && policies[p].pod_selector.matches(wl.labels))
        selected_by[w].push_back(static_cast<uint32_t>(p));
    for (uint32_t i = 0; i < peers.size(); ++i) {
      const Peer& pe = *peers[i].peer;
      if (pe.ip_block) continue;
      const bool ns_ok = pe.ns ? pe.ns->matches(nsl) : wl.ns == peers[i].policy->ns;
      const bool pod_ok = !pe.pod || pe.pod->matches(wl.labels);
      if (ns_ok && pod_ok) wl_peers[w].push_back(i);
    }
  }

  // 3. The prefixes: workload addresses, ipBlock cidrs and excepts.
  std::unordered_map<Cidr, PrefixInfo, CidrHash> prefixes;
  for (size_t w = 0; w < workloads.size(); ++w)
    for (const auto& a : workloads[w].addresses) {
      auto& pi = prefixes[a];
      if (pi.workload >= 0)
        return make_error("workloads: address {} belongs to both {}/{} and {}/{}", a.str(), workloads[pi.workload].ns,
                          workloads[pi.workload].name, workloads[w].ns, workloads[w].name);
      pi.workload = static_cast<int>(w);
    }
  for (uint32_t i = 0; i < peers.size(); ++i)
    if (const auto& b = peers[i].peer->ip_block) {
      prefixes[b->cidr].cidr_of.push_back(i);
      for (const auto& e : b->except) prefixes[e].except_of.push_back(i);
    }
  size_t v4 = 0, v6 = 0;
  for (const auto& [c, _] : prefixes) (c.family == 4 ? v4 : v6)++;
  if (v4 > lim.max_prefixes || v6 > lim.max_prefixes)
    return make_error("policy needs {} IPv4 and {} IPv6 prefixes; the datapath holds {} of each", v4, v6, lim.max_prefixes);

  // 4. Each prefix's identity.
  std::map<std::pair<std::vector<uint32_t>, std::vector<uint32_t>>, uint32_t> ident_of;
  std::vector<std::vector<uint32_t>> ident_peers{{}}, ident_policies{{}};  // index = id; 0 = world
  std::vector<std::string> ident_name{"world"};
  std::map<uint32_t, size_t> extra_cidrs;  // identity -> prefixes of no workload
  std::vector<const Cidr*> order;
  order.reserve(prefixes.size());
  for (const auto& [c, _] : prefixes) order.push_back(&c);
  std::sort(order.begin(), order.end(), [](const Cidr* a, const Cidr* b) { return *a < *b; });  // deterministic ids
  for (const Cidr* c : order) {
    const PrefixInfo& pi = prefixes.at(*c);
    std::set<uint32_t> cidr_peers, except_peers;
    // Every shorter prefix of c that is in the trie: at most 33 / 129 probes.
    for (int len = c->len; len >= 0; --len) {
      auto it = prefixes.find(masked(*c, static_cast<uint8_t>(len)));
      if (it == prefixes.end()) continue;
      cidr_peers.insert(it->second.cidr_of.begin(), it->second.cidr_of.end());
      except_peers.insert(it->second.except_of.begin(), it->second.except_of.end());
    }
    // What tells identities apart is the set of *rules* whose peers the
    // prefix satisfies, not the peers themselves: two ipBlocks of one rule
    // allow the same things, so 100,000 blocks of one rule are one identity
    // and one rule entry, not 100,000 (the rule tables stay as small as the
    // rules, whatever the number of CIDRs).
    std::vector<uint32_t> pset;
    for (uint32_t x : cidr_peers)
      if (!except_peers.count(x)) pset.push_back(peers[x].rule);
    std::vector<uint32_t> pols;
    if (pi.workload >= 0) {
      for (uint32_t x : wl_peers[pi.workload]) pset.push_back(peers[x].rule);
      pols = selected_by[pi.workload];
    }
    std::sort(pset.begin(), pset.end());
    pset.erase(std::unique(pset.begin(), pset.end()), pset.end());
    auto [it, fresh] = ident_of.emplace(std::make_pair(pols, pset), static_cast<uint32_t>(ident_peers.size()));
    if (fresh) {
      ident_peers.push_back(pset);
      ident_policies.push_back(pols);
      ident_name.push_back(pi.workload >= 0 ? workloads[pi.workload].ns + "/" + workloads[pi.workload].name : c->str());
    } else if (pi.workload >= 0 && ident_name[it->second].find('/') != std::string::npos &&
               ident_name[it->second].find(':') == std::string::npos && ident_name[it->second].find('.') == std::string::npos) {
      // Several workloads share the identity: keep the first name.
    }
    out.prefixes.emplace_back(*c, it->second);
    if (pi.workload < 0) ++extra_cidrs[it->second];
  }
  out.identities = ident_peers.size() - 1;
  for (uint32_t id = 1; id < ident_name.size(); ++id) {
    // CIDRs that share an identity (ipBlocks of the same rules): the events
    // name the first and say there are more.
    const size_t n = extra_cidrs.count(id) ? extra_cidrs[id] : 0;
    out.identity_names[id] = n > 1 ? fmt::format("{} (+{} prefixes)", ident_name[id], n - 1) : ident_name[id];
  }

  // 5. rule -> the identities satisfying one of its peers.
  std::vector<std::vector<uint32_t>> rule_idents(rule_index.size());
  for (uint32_t id = 1; id < ident_peers.size(); ++id)
    for (uint32_t ri : ident_peers[id]) rule_idents[ri].push_back(id);

  // The XDP deny-list: every KagamiEdgePolicy's prefixes (the first policy
  // naming a prefix keeps it).
  {
    std::set<Cidr> edge_seen;
    for (const auto& p : policies)
      for (size_t i = 0; i < p.edge_deny.size(); ++i)
        if (edge_seen.insert(p.edge_deny[i]).second)
          out.edge.emplace_back(p.edge_deny[i], ids.id(fmt::format("{}/{}:deny[{}]", p.ns, p.name, i)));
    if (out.edge.size() > lim.max_rules)
      return make_error("the edge deny-list has {} prefixes; the datapath holds {}", out.edge.size(), lim.max_rules);
  }

  // 6. Local flags and rule entries.
  struct Key {
    bool deny; uint8_t dir, proto; uint32_t local, peer; uint16_t port; uint8_t bits;
    auto operator<=>(const Key&) const = default;
  };
  std::set<Key> seen;
  size_t n_allow = 0, n_deny = 0;
  // One Modify entry per rule that has one, whatever the identities it
  // selects; UINT32_MAX: over the limit.
  std::map<const Rule*, uint32_t> mod_index;
  auto mod_of = [&](const Rule& r) -> uint32_t {
    if (!r.modify) return 0;
    auto it = mod_index.find(&r);
    if (it != mod_index.end()) return it->second;
    if (out.mods.size() >= lim.max_mods) return UINT32_MAX;
    out.mods.push_back({ids.id(r.name), r.name, *r.modify});
    return mod_index[&r] = static_cast<uint32_t>(out.mods.size());
  };
  for (uint32_t id = 1; id < ident_policies.size(); ++id) {
    uint32_t flags = 0;
    for (uint32_t pi : ident_policies[id]) {
      const Policy& p = policies[pi];
      if (p.isolates_ingress) flags |= POL_LOCAL_ISO_INGRESS;
      if (p.isolates_egress) flags |= POL_LOCAL_ISO_EGRESS;
      for (const uint8_t dir : {uint8_t(POL_DIR_INGRESS), uint8_t(POL_DIR_EGRESS)}) {
        const auto& rules = dir == POL_DIR_INGRESS ? p.ingress : p.egress;
        for (const auto& r : rules) {
          if (r.gtpu) {
            const bool in = dir == POL_DIR_INGRESS;
            flags |= in ? POL_LOCAL_GTP_INGRESS : POL_LOCAL_GTP_EGRESS;
            if (!r.deny) flags |= in ? POL_LOCAL_GTP_ISO_INGRESS : POL_LOCAL_GTP_ISO_EGRESS;
            GtpEntry e{dir, r.deny, id, ids.id(r.name), r.gtpu->teid, r.gtpu->qfi, r.gtpu->src, r.gtpu->dst};
            e.mod = mod_of(r);
            if (e.mod == UINT32_MAX)
              return make_error("policy has more than {} rules with modify (rule {}); the datapath holds {}",
                                lim.max_mods, r.name, lim.max_mods);
            std::vector<GtpEntry> es;
            if (r.gtpu->any_port) {
              es.push_back(e);
            } else {
              for (const auto& pr : r.gtpu->ports) {
                GtpEntry x = e;
                x.any_proto = false;
                x.proto = pr.proto;
                if (!pr.any_port) x.port_lo = pr.first, x.port_hi = pr.last;
                es.push_back(x);
              }
            }
            for (auto& x : es) {
              if (out.gtp.size() >= lim.max_gtp)
                return make_error("policy needs more than {} GTP-U rule entries (one per selected identity, rule and "
                                  "inner port; rule {}); the datapath holds {}", lim.max_gtp, r.name, lim.max_gtp);
              out.gtp.push_back(std::move(x));
            }
            continue;
          }
          if (r.deny) flags |= dir == POL_DIR_INGRESS ? POL_LOCAL_DENY_INGRESS : POL_LOCAL_DENY_EGRESS;
          const uint32_t rid = ids.id(r.name);
          const uint32_t mod = mod_of(r);
          if (mod == UINT32_MAX)
            return make_error("policy has more than {} rules with modify (rule {}); the datapath holds {}",
                              lim.max_mods, r.name, lim.max_mods);
          std::vector<uint32_t> rpeers;
          if (r.any_peer) {
            rpeers.push_back(POL_ID_ANY);
          } else {
            rpeers = rule_idents[rule_index.at(&r)];
          }
          std::vector<std::tuple<uint8_t, uint16_t, uint8_t>> rports;  // proto, port, bits
          if (r.any_port) {
            rports.emplace_back(POL_PROTO_ANY, 0, 0);
          } else {
            for (const auto& pr : r.ports) {
              if (pr.any_port) rports.emplace_back(pr.proto, 0, 0);
              else
                for (auto [v, bits] : port_prefixes(pr.first, pr.last)) rports.emplace_back(pr.proto, v, bits);
            }
          }
          for (uint32_t peer : rpeers)
            for (auto [proto, port, bits] : rports) {
              if (!seen.insert({r.deny, dir, proto, id, peer, port, bits}).second) continue;  // first rule wins
              (r.deny ? n_deny : n_allow)++;
              if (n_allow > lim.max_rules || n_deny > lim.max_rules)
                return make_error("policy needs more than {} rule entries in one table (rule {}); the datapath holds {}",
                                  lim.max_rules, r.name, lim.max_rules);
              out.rules.push_back({r.deny, dir, proto, id, peer, port, bits, rid, mod});
            }
        }
      }
    }
    if (flags) out.local_flags[id] = flags;
  }
  return out;
}

}  // namespace kagami::policy
