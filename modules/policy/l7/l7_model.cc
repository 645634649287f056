#include "modules/policy/l7/l7_model.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "common/file.h"
#include "modules/policy/l7/abi.h"

namespace kagami::policy::l7 {
namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxBytes = 4u << 20;  // per file, as the policy module
constexpr size_t kMaxDocuments = 10000;
constexpr size_t kMaxItems = 4096;      // per list: rules are at most L7_MAX_RULES anyway
constexpr const char* kNsLabel = "io.kubernetes.pod.namespace";

struct Ctx {
  std::string file;
  int line_offset = 0;
  Error err(const YAML::Node& n, const std::string& path, const std::string& msg) const {
    const YAML::Mark m = n.Mark();
    if (m.is_null()) return make_error("{}: {}: {}", file, path, msg);
    return make_error("{}:{}:{}: {}: {}", file, m.line + 1 + line_offset, m.column + 1, path, msg);
  }
};

Result<void> only_keys(const Ctx& c, const YAML::Node& n, const std::string& path,
                       std::initializer_list<const char*> known, std::initializer_list<const char*> unsupported = {}) {
  if (!n.IsMap()) return c.err(n, path, "must be a mapping");
  std::set<std::string> seen;
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) return c.err(kv.first, path, "keys must be scalars");
    const std::string k = kv.first.Scalar();
    if (std::find_if(unsupported.begin(), unsupported.end(), [&](const char* u) { return k == u; }) != unsupported.end())
      return c.err(kv.first, path + "." + k, "is not supported by Kagami's L7 policy (docs/policy-l7.md, \"Limits\")");
    if (std::find_if(known.begin(), known.end(), [&](const char* u) { return k == u; }) == known.end()) {
      std::string list;
      for (const char* s : known) list += (list.empty() ? "" : ", ") + std::string(s);
      return c.err(kv.first, path, fmt::format("unknown key '{}' (known: {})", k, list));
    }
    if (!seen.insert(k).second) return c.err(kv.first, path, fmt::format("duplicate key '{}'", k));
  }
  return ok();
}

Result<std::string> scalar(const Ctx& c, const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar()) return c.err(n, path, "must be a string");
  return n.Scalar();
}

Result<const YAML::Node> list(const Ctx& c, const YAML::Node& n, const std::string& path) {
  if (!n.IsSequence()) return c.err(n, path, "must be a list");
  if (n.size() > kMaxItems) return c.err(n, path, fmt::format("more than {} entries", kMaxItems));
  return n;
}

// Cilium label keys may carry a source prefix ("k8s:app", "any:app").
std::string strip_source(const std::string& k) {
  for (const char* p : {"k8s:", "any:"})
    if (k.rfind(p, 0) == 0) return k.substr(std::strlen(p));
  return k;
}

// An EndpointSelector: matchLabels and matchExpressions, as Kubernetes.
// The namespace label io.kubernetes.pod.namespace is pulled out into `ns`.
Result<Selector> selector(const Ctx& c, const YAML::Node& n, const std::string& path, std::string* ns) {
  Selector s;
  if (n.IsNull()) return s;
  KAGAMI_TRY(only_keys(c, n, path, {"matchLabels", "matchExpressions"}));
  if (const auto& ml = n["matchLabels"]; ml && !ml.IsNull()) {
    if (!ml.IsMap()) return c.err(ml, path + ".matchLabels", "must be a mapping of label to value");
    for (const auto& kv : ml) {
      auto k = scalar(c, kv.first, path + ".matchLabels");
      if (!k) return k.error();
      auto v = scalar(c, kv.second, path + ".matchLabels." + *k);
      if (!v) return v.error();
      const std::string key = strip_source(*k);
      if (key == kNsLabel && ns) *ns = *v;
      else s.match_labels[key] = *v;
    }
  }
  if (const auto& ex = n["matchExpressions"]; ex && !ex.IsNull()) {
    auto l = list(c, ex, path + ".matchExpressions");
    if (!l) return l.error();
    for (size_t i = 0; i < ex.size(); ++i) {
      const std::string p = fmt::format("{}.matchExpressions[{}]", path, i);
      KAGAMI_TRY(only_keys(c, ex[i], p, {"key", "operator", "values"}));
      Requirement r;
      if (!ex[i]["key"] || !ex[i]["operator"]) return c.err(ex[i], p, "needs key and operator");
      auto k = scalar(c, ex[i]["key"], p + ".key");
      if (!k) return k.error();
      r.key = strip_source(*k);
      auto op = scalar(c, ex[i]["operator"], p + ".operator");
      if (!op) return op.error();
      if (*op == "In") r.op = Requirement::Op::In;
      else if (*op == "NotIn") r.op = Requirement::Op::NotIn;
      else if (*op == "Exists") r.op = Requirement::Op::Exists;
      else if (*op == "DoesNotExist") r.op = Requirement::Op::DoesNotExist;
      else return c.err(ex[i]["operator"], p + ".operator", fmt::format("unknown operator '{}' (In, NotIn, Exists, DoesNotExist)", *op));
      if (const auto& vs = ex[i]["values"]; vs && !vs.IsNull()) {
        auto lv = list(c, vs, p + ".values");
        if (!lv) return lv.error();
        for (size_t j = 0; j < vs.size(); ++j) {
          auto v = scalar(c, vs[j], fmt::format("{}.values[{}]", p, j));
          if (!v) return v.error();
          r.values.push_back(*v);
        }
      }
      const bool set_op = r.op == Requirement::Op::In || r.op == Requirement::Op::NotIn;
      if (set_op == r.values.empty())
        return c.err(ex[i], p, set_op ? "In/NotIn need values" : "Exists/DoesNotExist take no values");
      if (r.key == kNsLabel) return c.err(ex[i]["key"], p + ".key", "the namespace label is supported in matchLabels only");
      s.exprs.push_back(std::move(r));
    }
  }
  return s;
}

bool is_meta(char ch) { return std::string_view(".[](){}*+?|^$\\").find(ch) != std::string_view::npos; }

Result<uint16_t> port_of(const Ctx& c, const YAML::Node& n, const std::string& path) {
  auto s = scalar(c, n, path);
  if (!s) return s.error();
  if (s->empty() || s->size() > 5 || !std::all_of(s->begin(), s->end(), ::isdigit))
    return c.err(n, path, fmt::format("must be a port number 1..65535 (got '{}'; named ports are not supported)", *s));
  const int v = std::stoi(*s);
  if (v < 1 || v > 65535) return c.err(n, path, fmt::format("must be in 1..65535 (got {})", v));
  return static_cast<uint16_t>(v);
}

Result<L7Policy> document(const Ctx& c, const YAML::Node& doc) {
  L7Policy p;
  p.file = c.file;
  p.line = (doc.Mark().is_null() ? 0 : doc.Mark().line + 1) + c.line_offset;
  KAGAMI_TRY(only_keys(c, doc, "(document)", {"apiVersion", "kind", "metadata", "spec"}, {"specs"}));
  auto api = scalar(c, doc["apiVersion"], "apiVersion");
  if (!api) return api.error();
  if (*api != "cilium.io/v2")
    return c.err(doc["apiVersion"], "apiVersion", fmt::format("CiliumNetworkPolicy needs cilium.io/v2 (got '{}')", *api));
  const YAML::Node md = doc["metadata"];
  if (!md) return c.err(doc, "metadata", "missing");
  KAGAMI_TRY(only_keys(c, md, "metadata", {"name", "namespace", "labels", "annotations"}));
  if (!md["name"]) return c.err(md, "metadata", "missing 'name'");
  auto name = scalar(c, md["name"], "metadata.name");
  if (!name) return name.error();
  p.name = *name;
  if (md["namespace"]) {
    auto ns = scalar(c, md["namespace"], "metadata.namespace");
    if (!ns) return ns.error();
    p.ns = *ns;
  }
  const YAML::Node spec = doc["spec"];
  if (!spec) return c.err(doc, "spec", "missing");
  KAGAMI_TRY(only_keys(c, spec, "spec", {"endpointSelector", "ingress", "description"},
                       {"egress", "ingressDeny", "egressDeny", "nodeSelector", "labels"}));
  if (!spec["endpointSelector"]) return c.err(spec, "spec", "missing 'endpointSelector'");
  auto es = selector(c, spec["endpointSelector"], "spec.endpointSelector", nullptr);
  if (!es) return es.error();
  p.endpoint = std::move(*es);
  const YAML::Node ing = spec["ingress"];
  if (!ing || ing.IsNull()) return p;
  auto il = list(c, ing, "spec.ingress");
  if (!il) return il.error();
  for (size_t i = 0; i < ing.size(); ++i) {
    const std::string ip = fmt::format("spec.ingress[{}]", i);
    KAGAMI_TRY(only_keys(c, ing[i], ip, {"fromEndpoints", "toPorts"},
                         {"fromCIDR", "fromCIDRSet", "fromEntities", "fromRequires", "fromGroups", "fromNodes",
                          "icmps", "authentication"}));
    IngressRule r;
    if (const auto& fe = ing[i]["fromEndpoints"]; fe && !fe.IsNull()) {
      auto fl = list(c, fe, ip + ".fromEndpoints");
      if (!fl) return fl.error();
      for (size_t j = 0; j < fe.size(); ++j) {
        std::string ns = p.ns;  // Cilium: a selector without the namespace label means the policy's namespace
        auto s = selector(c, fe[j], fmt::format("{}.fromEndpoints[{}]", ip, j), &ns);
        if (!s) return s.error();
        r.from.push_back(std::move(*s));
        r.from_ns.push_back(ns);
      }
      r.any_source = fe.size() == 0;
    }
    const YAML::Node tp = ing[i]["toPorts"];
    if (!tp || tp.IsNull())
      return c.err(ing[i], ip, "needs toPorts with rules.http (L3/L4-only rules belong in a NetworkPolicy)");
    auto tl = list(c, tp, ip + ".toPorts");
    if (!tl) return tl.error();
    for (size_t j = 0; j < tp.size(); ++j) {
      const std::string pp = fmt::format("{}.toPorts[{}]", ip, j);
      KAGAMI_TRY(only_keys(c, tp[j], pp, {"ports", "rules"},
                           {"terminatingTLS", "originatingTLS", "serverNames", "listener"}));
      PortRules pr;
      if (!tp[j]["ports"]) return c.err(tp[j], pp, "missing 'ports'");
      auto pl = list(c, tp[j]["ports"], pp + ".ports");
      if (!pl) return pl.error();
      for (size_t k = 0; k < tp[j]["ports"].size(); ++k) {
        const YAML::Node pn = tp[j]["ports"][k];
        const std::string kp = fmt::format("{}.ports[{}]", pp, k);
        KAGAMI_TRY(only_keys(c, pn, kp, {"port", "protocol"}, {"endPort"}));
        if (!pn["port"]) return c.err(pn, kp, "missing 'port'");
        if (pn["protocol"]) {
          auto pr2 = scalar(c, pn["protocol"], kp + ".protocol");
          if (!pr2) return pr2.error();
          if (*pr2 != "TCP" && *pr2 != "ANY")
            return c.err(pn["protocol"], kp + ".protocol", fmt::format("HTTP rules need TCP (got '{}')", *pr2));
        }
        auto port = port_of(c, pn["port"], kp + ".port");
        if (!port) return port.error();
        pr.ports.push_back(*port);
      }
      const YAML::Node rules = tp[j]["rules"];
      if (!rules || rules.IsNull())
        return c.err(tp[j], pp, "needs rules.http (L3/L4-only rules belong in a NetworkPolicy)");
      KAGAMI_TRY(only_keys(c, rules, pp + ".rules", {"http"}, {"kafka", "dns", "l7proto", "l7"}));
      if (!rules["http"]) return c.err(rules, pp + ".rules", "missing 'http'");
      const YAML::Node http = rules["http"];
      if (!http.IsNull()) {
        auto hl = list(c, http, pp + ".rules.http");
        if (!hl) return hl.error();
        for (size_t k = 0; k < http.size(); ++k) {
          const std::string hp = fmt::format("{}.rules.http[{}]", pp, k);
          const YAML::Node h = http[k];
          KAGAMI_TRY(only_keys(c, h, hp, {"method", "path"}, {"host", "headers", "headerMatches"}));
          HttpRule hr;
          hr.name = fmt::format("{}/{}:ingress[{}].toPorts[{}].http[{}]", p.ns, p.name, i, j, k);
          hr.line = h.Mark().is_null() ? 0 : h.Mark().line + 1 + c.line_offset;
          hr.col = h.Mark().is_null() ? 0 : h.Mark().column + 1;
          if (h["method"]) {
            auto m = scalar(c, h["method"], hp + ".method");
            if (!m) return m.error();
            auto ms = parse_method_regex(*m);
            if (!ms) return c.err(h["method"], hp + ".method", ms.error().message);
            hr.methods = std::move(*ms);
          }
          if (h["path"]) {
            auto s = scalar(c, h["path"], hp + ".path");
            if (!s) return s.error();
            auto pt = parse_path_regex(*s);
            if (!pt) return c.err(h["path"], hp + ".path", pt.error().message);
            hr.path = std::move(*pt);
          }
          pr.http.push_back(std::move(hr));
        }
      }
      r.to_ports.push_back(std::move(pr));
    }
    p.ingress.push_back(std::move(r));
  }
  return p;
}

}  // namespace

Result<PathPattern> parse_path_regex(std::string_view re) {
  PathPattern out;
  std::string_view s = re;
  if (!s.empty() && s.front() == '^') s.remove_prefix(1);
  if (!s.empty() && s.back() == '$' && (s.size() < 2 || s[s.size() - 2] != '\\')) s.remove_suffix(1);
  if (s.empty() || s == ".*") return out;  // any path
  bool prefix = false;
  if (s.size() >= 2 && s.substr(s.size() - 2) == ".*" && (s.size() < 3 || s[s.size() - 3] != '\\')) {
    prefix = true;
    s.remove_suffix(2);
  }
  std::string lit;
  for (size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    if (ch == '\\') {
      if (i + 1 < s.size() && std::string_view("./-_~?+*()[]{}|^$\\").find(s[i + 1]) != std::string_view::npos) {
        lit.push_back(s[++i]);
        continue;
      }
      return make_error("regex '{}': escape '\\{}' at offset {} is not supported (only escaped punctuation)", re,
                        i + 1 < s.size() ? std::string(1, s[i + 1]) : std::string(), i);
    }
    if (is_meta(ch))
      return make_error(
          "regex '{}': '{}' at offset {} is not supported: the kernel decides '.*', a literal path (escape dots: "
          "'\\.'), and a literal followed by '.*' (a prefix); docs/policy-l7.md",
          re, ch, i + (re.front() == '^' ? 1 : 0));
    if (static_cast<unsigned char>(ch) <= ' ' || static_cast<unsigned char>(ch) >= 0x7f)
      return make_error("regex '{}': a path has no spaces or control characters", re);
    lit.push_back(ch);
  }
  if (lit.size() > L7_MAX_PATH)
    return make_error("regex '{}': the literal part is {} bytes, more than the kernel's {}", re, lit.size(), L7_MAX_PATH);
  if (!prefix && lit.empty()) return out;
  out.kind = prefix ? PathKind::Prefix : PathKind::Exact;
  out.literal = std::move(lit);
  if (out.kind == PathKind::Prefix && out.literal.empty()) out.kind = PathKind::Any;
  return out;
}

Result<std::vector<std::string>> parse_method_regex(std::string_view re) {
  std::vector<std::string> out;
  std::string_view s = re;
  if (!s.empty() && s.front() == '^') s.remove_prefix(1);
  if (!s.empty() && s.back() == '$') s.remove_suffix(1);
  if (s.size() >= 2 && s.front() == '(' && s.back() == ')') s = s.substr(1, s.size() - 2);
  if (s.empty() || s == ".*") return out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t bar = s.find('|', pos);
    if (bar == std::string_view::npos) bar = s.size();
    const std::string_view tok = s.substr(pos, bar - pos);
    if (tok.empty() || tok.size() > L7_MAX_METHOD ||
        !std::all_of(tok.begin(), tok.end(), [](char ch) { return (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_'; }))
      return make_error("method regex '{}': '{}' is not supported: the kernel decides upper-case methods of up to {} "
                        "characters, alone or joined by '|' (GET|HEAD), or '.*'",
                        re, tok, L7_MAX_METHOD);
    if (std::find(out.begin(), out.end(), std::string(tok)) == out.end()) out.emplace_back(tok);
    pos = bar + 1;
  }
  return out;
}

Result<std::vector<L7Policy>> parse_l7_policies(std::string_view text, const std::string& file) {
  if (text.size() > kMaxBytes) return make_error("{}: too large ({} bytes, max {})", file, text.size(), kMaxBytes);
  if (text.find('\0') != std::string_view::npos) return make_error("{}: contains a NUL byte", file);
  // Documents split on "---" at column 0 and parsed one by one (as the
  // policy module does: YAML::LoadAll can loop forever on some inputs).
  std::vector<std::pair<std::string, int>> docs;
  std::string cur;
  int line = 0, start = 0;
  for (size_t pos = 0; pos <= text.size();) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view l = text.substr(pos, nl - pos);
    if (l.substr(0, 3) == "---" && (l.size() == 3 || l[3] == ' ' || l[3] == '\r' || l[3] == '\t')) {
      docs.emplace_back(std::move(cur), start);
      cur.clear();
      start = line;
      cur.append(l.substr(3));
    } else {
      cur.append(l);
    }
    cur.push_back('\n');
    ++line;
    pos = nl + 1;
    if (docs.size() > kMaxDocuments) return make_error("{}: more than {} documents", file, kMaxDocuments);
  }
  docs.emplace_back(std::move(cur), start);
  std::vector<L7Policy> out;
  Ctx c{file};
  for (const auto& [t, first] : docs) {
    c.line_offset = first;
    try {
      const YAML::Node doc = YAML::Load(t);
      if (doc.IsNull()) continue;
      if (!doc.IsMap()) return c.err(doc, "(document)", "must be a mapping");
      const YAML::Node kind = doc["kind"];
      if (!kind || !kind.IsScalar()) return c.err(doc, "kind", "missing");
      if (kind.Scalar() == "CiliumClusterwideNetworkPolicy")
        return c.err(kind, "kind", "CiliumClusterwideNetworkPolicy is not supported (use CiliumNetworkPolicy)");
      if (kind.Scalar() != "CiliumNetworkPolicy") continue;  // the policy module's kinds
      auto p = document(c, doc);
      if (!p) return p.error();
      out.push_back(std::move(*p));
    } catch (const YAML::Exception& e) {
      if (!e.mark.is_null())
        return make_error("{}:{}:{}: bad YAML: {}", file, e.mark.line + 1 + first, e.mark.column + 1, e.msg);
      return make_error("{}: bad YAML: {}", file, e.msg);
    }
  }
  std::set<std::pair<std::string, std::string>> names;
  for (const auto& p : out)
    if (!names.insert({p.ns, p.name}).second)
      return make_error("{}:{}: CiliumNetworkPolicy {}/{} defined twice", file, p.line, p.ns, p.name);
  return out;
}

Result<std::vector<L7Policy>> load_l7_policy_files(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> in;
      for (const auto& e : fs::directory_iterator(p, ec)) {
        const auto ext = e.path().extension().string();
        if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml")) in.push_back(e.path().string());
      }
      if (ec) return make_error("{}: cannot list: {}", p, ec.message());
      std::sort(in.begin(), in.end());
      files.insert(files.end(), in.begin(), in.end());
    } else {
      files.push_back(p);
    }
  }
  std::vector<L7Policy> out;
  std::set<std::pair<std::string, std::string>> names;
  for (const auto& f : files) {
    auto text = read_regular_file(f, kMaxBytes, "policy file");
    if (!text) return text.error();
    auto ps = parse_l7_policies(*text, f);
    if (!ps) return ps.error();
    for (auto& p : *ps) {
      if (!names.insert({p.ns, p.name}).second)
        return make_error("{}:{}: CiliumNetworkPolicy {}/{} is also defined in another file", f, p.line, p.ns, p.name);
      out.push_back(std::move(p));
    }
  }
  return out;
}

Result<Compiled> compile_l7(const std::vector<Workload>& workloads, const std::vector<L7Policy>& policies) {
  Compiled c;
  c.rule_names.push_back("none");
  for (size_t i = 0; i < workloads.size(); ++i) {
    const uint32_t id = static_cast<uint32_t>(i + 1);
    c.identity_names[id] = workloads[i].ns + "/" + workloads[i].name;
    for (const auto& a : workloads[i].addresses) {
      if (a.family != 4) continue;  // IPv4 only (docs/policy-l7.md, Limits)
      uint32_t ip;
      std::memcpy(&ip, a.addr.data(), 4);
      c.peers[ip] = id;
    }
  }
  std::set<std::string> cgroups;
  std::set<uint16_t> ports;
  for (const auto& p : policies) {
    bool selects = false;
    for (const auto& w : workloads)
      if (w.ns == p.ns && p.endpoint.matches(w.labels)) {
        selects = true;
        if (!w.cgroup.empty()) cgroups.insert(w.cgroup);
      }
    if (!selects) continue;  // selects no declared workload: nothing to enforce
    for (const auto& ing : p.ingress) {
      // Source identities: 0 (any) or every workload a selector picks.
      std::vector<uint32_t> srcs;
      if (ing.any_source) {
        srcs.push_back(0);
      } else {
        for (size_t s = 0; s < ing.from.size(); ++s)
          for (size_t i = 0; i < workloads.size(); ++i)
            if ((ing.from_ns[s].empty() || workloads[i].ns == ing.from_ns[s]) && ing.from[s].matches(workloads[i].labels))
              srcs.push_back(static_cast<uint32_t>(i + 1));
      }
      for (const auto& tp : ing.to_ports) {
        for (uint16_t port : tp.ports) ports.insert(port);
        std::vector<HttpRule> http = tp.http;
        if (http.empty()) {  // rules.http: [] -> every request on the port
          HttpRule any;
          any.name = fmt::format("{}/{}:ingress:any", p.ns, p.name);
          http.push_back(any);
        }
        for (const auto& h : http) {
          c.rule_names.push_back(h.name);
          const uint32_t rid = static_cast<uint32_t>(c.rule_names.size() - 1);
          std::vector<std::string> methods = h.methods.empty() ? std::vector<std::string>{""} : h.methods;
          for (uint16_t port : tp.ports)
            for (uint32_t src : srcs)
              for (const auto& m : methods) c.rules.push_back({rid, src, port, m, h.path});
        }
      }
    }
  }
  if (c.rules.size() > L7_MAX_RULES)
    return make_error("L7 policy: {} kernel rules (ports x sources x methods x paths), more than {}", c.rules.size(),
                      L7_MAX_RULES);
  c.ports.assign(ports.begin(), ports.end());
  c.cgroups.assign(cgroups.begin(), cgroups.end());
  return c;
}

}  // namespace kagami::policy::l7
