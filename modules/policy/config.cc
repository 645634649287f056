// The agent config's `workloads:` list and `policy:` section (handed to the
// module as modules.policy.workloads and modules.policy.*; docs/config.md).
#include <net/if.h>

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "core/config_section.h"
#include "modules/policy/model.h"

namespace kagami::policy {
namespace {

bool valid_name(const std::string& s) {
  return !s.empty() && s.size() <= 253 &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_'; });
}

Result<Labels> json_labels(const nlohmann::json& j, const std::string& path) {
  Labels l;
  if (j.is_null()) return l;
  if (!j.is_object()) return make_error("{}: must be a mapping of label to value", path);
  for (const auto& [k, v] : j.items()) {
    if (!v.is_string()) return make_error("{}.{}: label values are strings (quote numbers and booleans)", path, k);
    l[k] = v.get<std::string>();
  }
  return l;
}

}  // namespace

Result<std::vector<Workload>> parse_workloads(const nlohmann::json& list) {
  std::vector<Workload> out;
  if (list.is_null()) return out;
  if (!list.is_array()) return make_error("workloads: must be a list");
  std::set<std::pair<std::string, std::string>> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string p = fmt::format("workloads[{}]", i);
    const auto& e = list[i];
    if (!e.is_object()) return make_error("{}: must be a mapping", p);
    Workload w;
    for (const auto& [k, v] : e.items()) {
      const std::string f = p + "." + k;
      if (k == "name" || k == "namespace" || k == "netns" || k == "cgroup") {
        if (!v.is_string() || v.get<std::string>().empty()) return make_error("{}: must be a non-empty string", f);
        const std::string s = v.get<std::string>();
        if (k == "name") w.name = s;
        if (k == "namespace") w.ns = s;
        if (k == "netns") w.netns = s;
        if (k == "cgroup") {
          if (s[0] != '/') return make_error("{}: must be an absolute path (got '{}')", f, s);
          w.cgroup = s;
        }
      } else if (k == "labels") {
        auto l = json_labels(v, f);
        if (!l) return l.error();
        w.labels = std::move(*l);
      } else if (k == "ips") {
        if (!v.is_array()) return make_error("{}: must be a list of addresses", f);
        for (size_t j = 0; j < v.size(); ++j) {
          if (!v[j].is_string()) return make_error("{}[{}]: must be an address", f, j);
          auto c = parse_cidr(v[j].get<std::string>());
          if (!c) return make_error("{}[{}]: {}", f, j, c.error().message);
          if (c->len != (c->family == 4 ? 32 : 128)) return make_error("{}[{}]: a workload address is one host, not {}", f, j, c->str());
          w.addresses.push_back(*c);
        }
      } else {
        return make_error("{}: unknown key '{}' (known: name, namespace, labels, netns, cgroup, ips)", p, k);
      }
    }
    if (w.name.empty()) return make_error("{}: missing 'name'", p);
    if (!valid_name(w.name) || !valid_name(w.ns)) return make_error("{}: name and namespace use [A-Za-z0-9._-]", p);
    if (w.netns.empty() == w.cgroup.empty()) return make_error("{}: give exactly one of netns and cgroup", p);
    if (!w.netns.empty() && w.netns[0] != '/' && !valid_name(w.netns)) return make_error("{}.netns: '{}' is neither a name under /run/netns nor an absolute path", p, w.netns);
    if (!w.cgroup.empty() && w.addresses.empty()) return make_error("{}: a cgroup workload needs ips (its addresses)", p);
    if (!names.insert({w.ns, w.name}).second) return make_error("{}: workload {}/{} declared twice", p, w.ns, w.name);
    out.push_back(std::move(w));
  }
  return out;
}

Result<PolicyConfig> parse_policy_config(const nlohmann::json& section) {
  PolicyConfig cfg;
  core::ConfigSection s("policy", section);
  KAGAMI_TRY(s.allow({"files", "interfaces", "edge_interfaces", "namespaces", "workloads", "sample_rate", "sample_burst"}));
  KAGAMI_TRY(s.strings("files", cfg.files));
  KAGAMI_TRY(s.strings("interfaces", cfg.interfaces, core::Need::Optional, 1024));
  for (const auto& n : cfg.interfaces)
    if (n.size() >= IFNAMSIZ || n.find_first_of(":@#/ ") != std::string::npos)
      return s.error("interfaces", fmt::format("'{}' is not a valid interface name", n));
  KAGAMI_TRY(s.strings("edge_interfaces", cfg.edge_interfaces, core::Need::Optional, 64));
  for (const auto& n : cfg.edge_interfaces)
    if (n.size() >= IFNAMSIZ || n.find_first_of(":@#/ ") != std::string::npos)
      return s.error("edge_interfaces", fmt::format("'{}' is not a valid interface name", n));
  if (cfg.interfaces.empty() && cfg.edge_interfaces.empty())
    return s.error("interfaces", "give interfaces (TC policy) or edge_interfaces (XDP deny-list), or both");
  KAGAMI_TRY(s.integer("sample_rate", cfg.sample_rate, 0, 1000000));
  KAGAMI_TRY(s.integer("sample_burst", cfg.sample_burst, 1, 1000000));
  const auto& nss = s.raw("namespaces");
  if (!nss.is_null()) {
    if (!nss.is_object()) return s.error("namespaces", "must be a mapping of namespace name to its labels");
    for (const auto& [name, l] : nss.items()) {
      auto labels = json_labels(l, "policy.namespaces." + name);
      if (!labels) return labels.error();
      cfg.namespaces[name] = std::move(*labels);
    }
  }
  return cfg;
}

}  // namespace kagami::policy
