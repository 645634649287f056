#include "modules/policy/model.h"

#include <arpa/inet.h>
#include <net/if.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "common/file.h"

namespace kagami::policy {
namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxPolicyBytes = 4u << 20;   // per file, as the agent config
constexpr size_t kMaxDocuments = 10000;        // per file
constexpr size_t kMaxListItems = 100000;       // peers, ports, except: the 100 000-rule benchmark fits

// Errors carry file:line:col and the field path.
class Ctx {
 public:
  explicit Ctx(std::string file) : file_(std::move(file)) {}
  Error err(const YAML::Node& n, const std::string& path, const std::string& msg) const {
    const YAML::Mark m = n.Mark();
    if (m.is_null()) return make_error("{}: {}: {}", file_, path, msg);
    return make_error("{}:{}:{}: {}: {}", file_, m.line + 1 + line_offset, m.column + 1, path, msg);
  }
  const std::string& file() const { return file_; }
  int line_offset = 0;  // the document's first line in the file (documents are parsed one by one)

 private:
  std::string file_;
};

const char* kind_of(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Null: return "null";
    default: return "nothing";
  }
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

Result<void> only_keys(const Ctx& c, const YAML::Node& n, const std::string& path,
                       const std::vector<std::string>& known) {
  if (!n.IsMap()) return c.err(n, path, fmt::format("must be a mapping, got {}", kind_of(n)));
  std::set<std::string> seen;
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) return c.err(kv.first, path, "keys must be scalars");
    const std::string k = kv.first.Scalar();
    if (std::find(known.begin(), known.end(), k) == known.end())
      return c.err(kv.first, path, fmt::format("unknown key '{}' (known: {})", k, join(known)));
    if (!seen.insert(k).second) return c.err(kv.first, path, fmt::format("duplicate key '{}'", k));
  }
  return ok();
}

Result<std::string> scalar(const Ctx& c, const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar()) return c.err(n, path, fmt::format("must be a string, got {}", kind_of(n)));
  return n.Scalar();
}

Result<int64_t> integer(const Ctx& c, const YAML::Node& n, const std::string& path, int64_t lo, int64_t hi) {
  if (!n.IsScalar() || n.Tag() == "!") return c.err(n, path, "must be an integer");
  const std::string& s = n.Scalar();
  size_t pos = 0;
  int64_t v = 0;
  try {
    v = std::stoll(s, &pos, 10);
  } catch (...) {
    pos = 0;
  }
  if (pos == 0 || pos != s.size())
    return c.err(n, path, fmt::format("must be an integer in {}..{} (got '{}')", lo, hi, s));
  if (v < lo || v > hi) return c.err(n, path, fmt::format("must be in {}..{} (got {})", lo, hi, v));
  return v;
}

Result<Labels> labels(const Ctx& c, const YAML::Node& n, const std::string& path) {
  Labels out;
  if (n.IsNull()) return out;
  if (!n.IsMap()) return c.err(n, path, fmt::format("must be a mapping of label to value, got {}", kind_of(n)));
  for (const auto& kv : n) {
    auto k = scalar(c, kv.first, path);
    if (!k) return k.error();
    auto v = scalar(c, kv.second, path + "." + *k);
    if (!v) return v.error();
    if (k->empty() || k->size() > 317) return c.err(kv.first, path, "a label key has 1 to 317 characters");
    if (!out.emplace(*k, *v).second) return c.err(kv.first, path, fmt::format("duplicate label '{}'", *k));
  }
  return out;
}

Result<Selector> selector(const Ctx& c, const YAML::Node& n, const std::string& path) {
  Selector s;
  if (n.IsNull()) return s;  // {} or null: every pod / namespace
  KAGAMI_TRY(only_keys(c, n, path, {"matchLabels", "matchExpressions"}));
  if (n["matchLabels"]) {
    auto l = labels(c, n["matchLabels"], path + ".matchLabels");
    if (!l) return l.error();
    s.match_labels = std::move(*l);
  }
  if (const auto& ex = n["matchExpressions"]; ex && !ex.IsNull()) {
    if (!ex.IsSequence()) return c.err(ex, path + ".matchExpressions", "must be a list");
    for (size_t i = 0; i < ex.size(); ++i) {
      const std::string p = fmt::format("{}.matchExpressions[{}]", path, i);
      const YAML::Node e = ex[i];
      KAGAMI_TRY(only_keys(c, e, p, {"key", "operator", "values"}));
      Requirement r;
      if (!e["key"]) return c.err(e, p, "missing 'key'");
      auto k = scalar(c, e["key"], p + ".key");
      if (!k) return k.error();
      r.key = *k;
      if (!e["operator"]) return c.err(e, p, "missing 'operator'");
      auto op = scalar(c, e["operator"], p + ".operator");
      if (!op) return op.error();
      if (*op == "In") r.op = Requirement::Op::In;
      else if (*op == "NotIn") r.op = Requirement::Op::NotIn;
      else if (*op == "Exists") r.op = Requirement::Op::Exists;
      else if (*op == "DoesNotExist") r.op = Requirement::Op::DoesNotExist;
      else return c.err(e["operator"], p + ".operator", fmt::format("unknown operator '{}' (In, NotIn, Exists, DoesNotExist)", *op));
      if (const auto& vs = e["values"]; vs && !vs.IsNull()) {
        if (!vs.IsSequence()) return c.err(vs, p + ".values", "must be a list");
        for (size_t j = 0; j < vs.size(); ++j) {
          auto v = scalar(c, vs[j], fmt::format("{}.values[{}]", p, j));
          if (!v) return v.error();
          r.values.push_back(*v);
        }
      }
      const bool set_op = r.op == Requirement::Op::In || r.op == Requirement::Op::NotIn;
      if (set_op && r.values.empty()) return c.err(e, p, fmt::format("operator {} needs non-empty values", *op));
      if (!set_op && !r.values.empty()) return c.err(e["values"], p + ".values", fmt::format("operator {} takes no values", *op));
      s.exprs.push_back(std::move(r));
    }
  }
  return s;
}

Result<Cidr> cidr_at(const Ctx& c, const YAML::Node& n, const std::string& path) {
  auto s = scalar(c, n, path);
  if (!s) return s.error();
  auto r = parse_cidr(*s);
  if (!r) return c.err(n, path, r.error().message);
  return r;
}

Result<Peer> peer(const Ctx& c, const YAML::Node& n, const std::string& path) {
  Peer p;
  KAGAMI_TRY(only_keys(c, n, path, {"podSelector", "namespaceSelector", "ipBlock"}));
  if (n["ipBlock"]) {
    if (n["podSelector"] || n["namespaceSelector"])
      return c.err(n, path, "ipBlock cannot be combined with podSelector or namespaceSelector");
    const YAML::Node b = n["ipBlock"];
    const std::string bp = path + ".ipBlock";
    KAGAMI_TRY(only_keys(c, b, bp, {"cidr", "except"}));
    if (!b["cidr"]) return c.err(b, bp, "missing 'cidr'");
    IpBlock ib;
    auto cd = cidr_at(c, b["cidr"], bp + ".cidr");
    if (!cd) return cd.error();
    ib.cidr = *cd;
    if (const auto& ex = b["except"]; ex && !ex.IsNull()) {
      if (!ex.IsSequence()) return c.err(ex, bp + ".except", "must be a list");
      if (ex.size() > kMaxListItems) return c.err(ex, bp + ".except", "too many entries");
      for (size_t i = 0; i < ex.size(); ++i) {
        const std::string ep = fmt::format("{}.except[{}]", bp, i);
        auto e = cidr_at(c, ex[i], ep);
        if (!e) return e.error();
        if (!ib.cidr.contains(*e) || e->len == ib.cidr.len)
          return c.err(ex[i], ep, fmt::format("{} is not strictly inside cidr {}", e->str(), ib.cidr.str()));
        ib.except.push_back(*e);
      }
    }
    p.ip_block = std::move(ib);
    return p;
  }
  if (!n["podSelector"] && !n["namespaceSelector"])
    return c.err(n, path, "a peer needs podSelector, namespaceSelector or ipBlock");
  if (n["podSelector"]) {
    auto s = selector(c, n["podSelector"], path + ".podSelector");
    if (!s) return s.error();
    p.pod = std::move(*s);
  }
  if (n["namespaceSelector"]) {
    auto s = selector(c, n["namespaceSelector"], path + ".namespaceSelector");
    if (!s) return s.error();
    p.ns = std::move(*s);
  }
  return p;
}

Result<uint8_t> protocol(const Ctx& c, const YAML::Node& n, const std::string& path, bool kagami) {
  auto s = scalar(c, n, path);
  if (!s) return s.error();
  if (*s == "TCP") return uint8_t{6};
  if (*s == "UDP") return uint8_t{17};
  if (*s == "SCTP") return uint8_t{132};
  if (kagami && *s == "ICMP") return uint8_t{1};
  if (kagami && *s == "ICMPv6") return uint8_t{58};
  return c.err(n, path, fmt::format("unknown protocol '{}' (one of: TCP, UDP, SCTP{})", *s,
                                    kagami ? ", ICMP, ICMPv6" : "; ICMP needs kind KagamiNetworkPolicy"));
}

Result<PortRange> port(const Ctx& c, const YAML::Node& n, const std::string& path, bool kagami) {
  PortRange r;
  if (kagami) KAGAMI_TRY(only_keys(c, n, path, {"protocol", "port", "endPort", "icmpType"}));
  else KAGAMI_TRY(only_keys(c, n, path, {"protocol", "port", "endPort"}));
  if (n["protocol"]) {
    auto pr = protocol(c, n["protocol"], path + ".protocol", kagami);
    if (!pr) return pr.error();
    r.proto = *pr;
  }
  const bool icmp = r.proto == 1 || r.proto == 58;
  if (icmp) {
    if (n["port"] || n["endPort"]) return c.err(n, path, "ICMP has no ports; use icmpType");
    if (n["icmpType"]) {
      auto t = integer(c, n["icmpType"], path + ".icmpType", 0, 255);
      if (!t) return t.error();
      r.any_port = false;
      r.first = r.last = static_cast<uint16_t>(*t);
    }
    return r;
  }
  if (n["icmpType"]) return c.err(n["icmpType"], path + ".icmpType", "icmpType needs protocol ICMP or ICMPv6");
  if (n["port"]) {
    const YAML::Node pn = n["port"];
    if (pn.IsScalar() && !pn.Scalar().empty() && !std::isdigit(static_cast<unsigned char>(pn.Scalar()[0])))
      return c.err(pn, path + ".port",
                   fmt::format("named port '{}' is not supported: workloads declared in the config have no "
                               "container port names; use the number", pn.Scalar()));
    auto v = integer(c, pn, path + ".port", 1, 65535);
    if (!v) return v.error();
    r.any_port = false;
    r.first = r.last = static_cast<uint16_t>(*v);
  }
  if (n["endPort"]) {
    if (r.any_port) return c.err(n["endPort"], path + ".endPort", "endPort needs port");
    auto v = integer(c, n["endPort"], path + ".endPort", 1, 65535);
    if (!v) return v.error();
    if (*v < r.first)
      return c.err(n["endPort"], path + ".endPort", fmt::format("must be >= port (got {} < {})", *v, r.first));
    r.last = static_cast<uint16_t>(*v);
  }
  return r;
}

// modify: {dscp, dscpFromQfi, ttl, redirect}; at least one.
Result<Modify> modify(const Ctx& c, const YAML::Node& n, const std::string& path, bool gtpu) {
  Modify m;
  KAGAMI_TRY(only_keys(c, n, path, {"dscp", "dscpFromQfi", "ttl", "redirect"}));
  if (n.size() == 0) return c.err(n, path, "needs at least one of dscp, dscpFromQfi, ttl, redirect");
  if (n["dscp"] && n["dscpFromQfi"]) return c.err(n["dscpFromQfi"], path + ".dscpFromQfi", "give dscp or dscpFromQfi, not both");
  if (n["dscp"]) {
    auto v = integer(c, n["dscp"], path + ".dscp", 0, 63);
    if (!v) return v.error();
    m.dscp = static_cast<uint8_t>(*v);
  }
  if (const auto& q = n["dscpFromQfi"]) {
    if (!gtpu) return c.err(q, path + ".dscpFromQfi", "needs a gtpu rule (only GTP-U packets carry a QFI)");
    if (!q.IsMap() || q.size() == 0) return c.err(q, path + ".dscpFromQfi", "must be a non-empty mapping of QFI (0..63) to DSCP (0..63)");
    for (const auto& kv : q) {
      auto qfi = integer(c, kv.first, path + ".dscpFromQfi", 0, 63);
      if (!qfi) return qfi.error();
      auto d = integer(c, kv.second, fmt::format("{}.dscpFromQfi.{}", path, *qfi), 0, 63);
      if (!d) return d.error();
      if (!m.qfi_dscp.emplace(static_cast<uint8_t>(*qfi), static_cast<uint8_t>(*d)).second)
        return c.err(kv.first, path + ".dscpFromQfi", fmt::format("QFI {} given twice", *qfi));
    }
  }
  if (n["ttl"]) {
    auto v = integer(c, n["ttl"], path + ".ttl", 1, 255);
    if (!v) return v.error();
    m.ttl = static_cast<uint8_t>(*v);
  }
  if (n["redirect"]) {
    auto v = scalar(c, n["redirect"], path + ".redirect");
    if (!v) return v.error();
    if (v->empty() || v->size() >= IF_NAMESIZE || v->find('/') != std::string::npos)
      return c.err(n["redirect"], path + ".redirect", fmt::format("'{}' is not an interface name", *v));
    m.redirect = *v;
  }
  return m;
}

// gtpu: {teid, qfi, src, dst, ports}; every field optional.
Result<GtpMatch> gtp_match(const Ctx& c, const YAML::Node& n, const std::string& path) {
  GtpMatch g;
  if (n.IsNull()) return g;  // gtpu: {} matches every T-PDU
  KAGAMI_TRY(only_keys(c, n, path, {"teid", "qfi", "src", "dst", "ports"}));
  if (n["teid"]) {
    const YAML::Node t = n["teid"];
    if (!t.IsScalar()) return c.err(t, path + ".teid", "must be an integer (decimal or 0x hex)");
    const std::string& s = t.Scalar();
    size_t pos = 0;
    unsigned long long v = 0;
    try {
      v = std::stoull(s, &pos, 0);
    } catch (...) {
      pos = 0;
    }
    if (pos == 0 || pos != s.size() || s[0] == '-' || v > 0xffffffffull)
      return c.err(t, path + ".teid", fmt::format("must be an integer in 0..0xffffffff (got '{}')", s));
    g.teid = static_cast<uint32_t>(v);
  }
  if (n["qfi"]) {
    auto q = integer(c, n["qfi"], path + ".qfi", 0, 63);
    if (!q) return q.error();
    g.qfi = static_cast<uint8_t>(*q);
  }
  for (const char* k : {"src", "dst"})
    if (n[k]) {
      auto cd = cidr_at(c, n[k], path + "." + k);
      if (!cd) return cd.error();
      (std::string(k) == "src" ? g.src : g.dst) = *cd;
    }
  if (g.src && g.dst && g.src->family != g.dst->family)
    return c.err(n["dst"], path + ".dst",
                 fmt::format("inner src {} and dst {} are of different families", g.src->str(), g.dst->str()));
  if (const auto& ps = n["ports"]; ps && !ps.IsNull()) {
    if (!ps.IsSequence()) return c.err(ps, path + ".ports", "must be a list");
    if (ps.size() > 64) return c.err(ps, path + ".ports", "at most 64 inner ports per gtpu rule");
    for (size_t i = 0; i < ps.size(); ++i) {
      auto p = port(c, ps[i], fmt::format("{}.ports[{}]", path, i), true);
      if (!p) return p.error();
      g.ports.push_back(*p);
    }
    g.any_port = g.ports.empty();
  }
  return g;
}

Result<Rule> rule(const Ctx& c, const YAML::Node& n, const std::string& path, bool ingress, bool kagami) {
  Rule r;
  const std::string peers_key = ingress ? "from" : "to";
  if (n.IsNull()) return r;  // "- {}": every peer, every port
  if (kagami) KAGAMI_TRY(only_keys(c, n, path, {peers_key, "ports", "action", "gtpu", "modify"}));
  else KAGAMI_TRY(only_keys(c, n, path, {peers_key, "ports"}));
  if (n["action"]) {
    auto a = scalar(c, n["action"], path + ".action");
    if (!a) return a.error();
    if (*a == "deny") r.deny = true;
    else if (*a != "allow") return c.err(n["action"], path + ".action", fmt::format("unknown action '{}' (allow, deny)", *a));
  }
  if (const auto& ps = n[peers_key]; ps && !ps.IsNull()) {
    if (!ps.IsSequence()) return c.err(ps, path + "." + peers_key, "must be a list");
    if (ps.size() > kMaxListItems) return c.err(ps, path + "." + peers_key, "too many peers");
    for (size_t i = 0; i < ps.size(); ++i) {
      auto p = peer(c, ps[i], fmt::format("{}.{}[{}]", path, peers_key, i));
      if (!p) return p.error();
      r.peers.push_back(std::move(*p));
    }
    r.any_peer = r.peers.empty();
  }
  if (n["modify"]) {
    if (r.deny) return c.err(n["modify"], path + ".modify", "modify needs action allow (a denied packet is dropped)");
    auto m = modify(c, n["modify"], path + ".modify", n["gtpu"].IsDefined());
    if (!m) return m.error();
    r.modify = std::move(*m);
  }
  if (n["gtpu"]) {
    if (n[peers_key] || n["ports"])
      return c.err(n["gtpu"], path + ".gtpu",
                   fmt::format("a gtpu rule judges the tunnel's inner flows and takes no '{}' or 'ports' (the outer "
                               "UDP 2152 is judged by the other rules); write those in a rule of their own", peers_key));
    auto g = gtp_match(c, n["gtpu"], path + ".gtpu");
    if (!g) return g.error();
    r.gtpu = std::move(*g);
    return r;
  }
  if (const auto& ps = n["ports"]; ps && !ps.IsNull()) {
    if (!ps.IsSequence()) return c.err(ps, path + ".ports", "must be a list");
    if (ps.size() > kMaxListItems) return c.err(ps, path + ".ports", "too many ports");
    for (size_t i = 0; i < ps.size(); ++i) {
      auto p = port(c, ps[i], fmt::format("{}.ports[{}]", path, i), kagami);
      if (!p) return p.error();
      r.ports.push_back(*p);
    }
    r.any_port = r.ports.empty();
  }
  return r;
}

Result<Policy> document(const Ctx& c, const YAML::Node& doc) {
  Policy p;
  p.file = c.file();
  p.line = (doc.Mark().is_null() ? 0 : doc.Mark().line + 1) + c.line_offset;
  KAGAMI_TRY(only_keys(c, doc, "(document)", {"apiVersion", "kind", "metadata", "spec"}));
  for (const char* k : {"apiVersion", "kind", "metadata", "spec"})
    if (!doc[k]) return c.err(doc, "(document)", fmt::format("missing '{}'", k));
  auto api = scalar(c, doc["apiVersion"], "apiVersion");
  if (!api) return api.error();
  auto kind = scalar(c, doc["kind"], "kind");
  if (!kind) return kind.error();
  bool kagami = false;
  if (*kind == "NetworkPolicy") {
    if (*api != "networking.k8s.io/v1")
      return c.err(doc["apiVersion"], "apiVersion", fmt::format("NetworkPolicy needs networking.k8s.io/v1 (got '{}')", *api));
  } else if (*kind == "KagamiEdgePolicy") {
    if (*api != "kagami.io/v1alpha1")
      return c.err(doc["apiVersion"], "apiVersion", fmt::format("KagamiEdgePolicy needs kagami.io/v1alpha1 (got '{}')", *api));
    p.kind = *kind;
    const YAML::Node md = doc["metadata"];
    KAGAMI_TRY(only_keys(c, md, "metadata", {"name", "namespace", "labels", "annotations"}));
    if (!md["name"]) return c.err(md, "metadata", "missing 'name'");
    auto nm = scalar(c, md["name"], "metadata.name");
    if (!nm) return nm.error();
    p.name = *nm;
    if (md["namespace"]) {
      auto ns = scalar(c, md["namespace"], "metadata.namespace");
      if (!ns) return ns.error();
      p.ns = *ns;
    }
    const YAML::Node spec = doc["spec"];
    KAGAMI_TRY(only_keys(c, spec, "spec", {"deny"}));
    const YAML::Node d = spec["deny"];
    if (!d || !d.IsSequence() || d.size() == 0) return c.err(d ? d : spec, "spec.deny", "must be a non-empty list of CIDRs");
    if (d.size() > kMaxListItems) return c.err(d, "spec.deny", "too many entries");
    for (size_t i = 0; i < d.size(); ++i) {
      auto cd = cidr_at(c, d[i], fmt::format("spec.deny[{}]", i));
      if (!cd) return cd.error();
      p.edge_deny.push_back(*cd);
    }
    return p;
  } else if (*kind == "KagamiNetworkPolicy") {
    if (*api != "kagami.io/v1alpha1")
      return c.err(doc["apiVersion"], "apiVersion", fmt::format("KagamiNetworkPolicy needs kagami.io/v1alpha1 (got '{}')", *api));
    kagami = true;
  } else {
    return c.err(doc["kind"], "kind", fmt::format("unknown kind '{}' (NetworkPolicy, KagamiNetworkPolicy, KagamiEdgePolicy)", *kind));
  }
  p.kind = *kind;
  const YAML::Node md = doc["metadata"];
  if (!md.IsMap()) return c.err(md, "metadata", "must be a mapping");
  for (const auto& kv : md) {
    const std::string k = kv.first.Scalar();
    if (k == "name" || k == "namespace") {
      auto v = scalar(c, kv.second, "metadata." + k);
      if (!v) return v.error();
      if (v->empty() || v->size() > 253) return c.err(kv.second, "metadata." + k, "must have 1 to 253 characters");
      (k == "name" ? p.name : p.ns) = *v;
    }  // labels, annotations, uid, ...: Kubernetes metadata we do not need
  }
  if (p.name.empty()) return c.err(md, "metadata", "missing 'name'");
  const YAML::Node spec = doc["spec"];
  KAGAMI_TRY(only_keys(c, spec, "spec", {"podSelector", "policyTypes", "ingress", "egress"}));
  if (!spec["podSelector"]) return c.err(spec, "spec", "missing 'podSelector' ({} selects every pod of the namespace)");
  auto sel = selector(c, spec["podSelector"], "spec.podSelector");
  if (!sel) return sel.error();
  p.pod_selector = std::move(*sel);
  for (const bool ingress : {true, false}) {
    const std::string key = ingress ? "ingress" : "egress";
    const YAML::Node rs = spec[key];
    if (!rs || rs.IsNull()) continue;
    if (!rs.IsSequence()) return c.err(rs, "spec." + key, "must be a list");
    for (size_t i = 0; i < rs.size(); ++i) {
      const std::string rp = fmt::format("spec.{}[{}]", key, i);
      auto r = rule(c, rs[i], rp, ingress, kagami);
      if (!r) return r.error();
      r->name = fmt::format("{}/{}:{}[{}]", p.ns, p.name, key, i);
      (ingress ? p.ingress : p.egress).push_back(std::move(*r));
    }
  }
  auto has_allow = [](const std::vector<Rule>& rs) {
    // gtpu rules isolate the tunnel layer only (docs/policy.md).
    return std::any_of(rs.begin(), rs.end(), [](const Rule& r) { return !r.deny && !r.gtpu; });
  };
  if (const auto& pt = spec["policyTypes"]; pt && !pt.IsNull()) {
    if (!pt.IsSequence()) return c.err(pt, "spec.policyTypes", "must be a list");
    for (size_t i = 0; i < pt.size(); ++i) {
      auto t = scalar(c, pt[i], fmt::format("spec.policyTypes[{}]", i));
      if (!t) return t.error();
      if (*t == "Ingress") p.isolates_ingress = true;
      else if (*t == "Egress") p.isolates_egress = true;
      else return c.err(pt[i], fmt::format("spec.policyTypes[{}]", i), fmt::format("unknown policy type '{}' (Ingress, Egress)", *t));
    }
    auto outer = [](const std::vector<Rule>& rs) {
      return std::any_of(rs.begin(), rs.end(), [](const Rule& r) { return !r.gtpu; });
    };
    if (!p.isolates_egress && outer(p.egress))
      return c.err(spec["egress"], "spec.egress", "egress rules but policyTypes has no Egress (they would never apply)");
    if (!p.isolates_ingress && outer(p.ingress))
      return c.err(spec["ingress"], "spec.ingress", "ingress rules but policyTypes has no Ingress (they would never apply)");
  } else if (!kagami) {
    // Kubernetes default: Ingress always, Egress when there are egress rules.
    p.isolates_ingress = true;
    p.isolates_egress = spec["egress"].IsDefined() && !spec["egress"].IsNull();
  } else {
    // The Kagami kind isolates a direction only where it has allow rules:
    // a policy of deny rules alone takes nothing else away.
    p.isolates_ingress = has_allow(p.ingress);
    p.isolates_egress = has_allow(p.egress);
  }
  return p;
}

}  // namespace

bool Cidr::contains(const Cidr& o) const {
  if (o.family != family || o.len < len) return false;
  for (int bit = 0; bit < len; ++bit) {
    const uint8_t m = static_cast<uint8_t>(0x80 >> (bit % 8));
    if ((addr[bit / 8] & m) != (o.addr[bit / 8] & m)) return false;
  }
  return true;
}

std::string Cidr::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == 4 ? AF_INET : AF_INET6, addr.data(), buf, sizeof buf);
  return fmt::format("{}/{}", buf, len);
}

Result<Cidr> parse_cidr(std::string_view s) {
  Cidr c;
  const std::string text(s);
  const auto slash = text.find('/');
  const std::string host = text.substr(0, slash);
  if (inet_pton(AF_INET, host.c_str(), c.addr.data()) == 1) {
    c.family = 4;
  } else if (inet_pton(AF_INET6, host.c_str(), c.addr.data()) == 1) {
    c.family = 6;
  } else {
    return make_error("'{}' is not an IPv4 or IPv6 address or CIDR", text);
  }
  const int max = c.family == 4 ? 32 : 128;
  c.len = static_cast<uint8_t>(max);
  if (slash != std::string::npos) {
    const std::string l = text.substr(slash + 1);
    if (l.empty() || l.size() > 3 || !std::all_of(l.begin(), l.end(), ::isdigit) || std::stoi(l) > max)
      return make_error("'{}': prefix length must be 0..{}", text, max);
    c.len = static_cast<uint8_t>(std::stoi(l));
  }
  for (int bit = c.len; bit < max; ++bit)
    if (c.addr[bit / 8] & (0x80 >> (bit % 8)))
      return make_error("'{}': host bits set beyond /{} (did you mean {}?)", text, int(c.len),
                        [&] { Cidr m = c; for (int b = c.len; b < max; ++b) m.addr[b / 8] &= ~(0x80 >> (b % 8)); return m.str(); }());
  return c;
}

bool Selector::matches(const Labels& l) const {
  for (const auto& [k, v] : match_labels) {
    auto it = l.find(k);
    if (it == l.end() || it->second != v) return false;
  }
  for (const auto& r : exprs) {
    auto it = l.find(r.key);
    const bool has = it != l.end();
    const bool in = has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    switch (r.op) {
      case Requirement::Op::In: if (!in) return false; break;
      case Requirement::Op::NotIn: if (in) return false; break;  // absent key: NotIn holds (Kubernetes)
      case Requirement::Op::Exists: if (!has) return false; break;
      case Requirement::Op::DoesNotExist: if (has) return false; break;
    }
  }
  return true;
}

Labels namespace_labels(const Namespaces& nss, const std::string& ns) {
  Labels l;
  if (auto it = nss.find(ns); it != nss.end()) l = it->second;
  l["kubernetes.io/metadata.name"] = ns;
  return l;
}

Result<std::vector<Policy>> parse_policies(std::string_view text, const std::string& file) {
  Ctx c(file);
  if (text.size() > kMaxPolicyBytes) return make_error("{}: too large ({} bytes, max {})", file, text.size(), kMaxPolicyBytes);
  if (text.find('\0') != std::string_view::npos) return make_error("{}: contains a NUL byte", file);
  std::vector<Policy> out;
  // Split on document markers ourselves and parse each document with
  // YAML::Load: YAML::LoadAll can loop forever on some inputs (docs/config.md,
  // found by the agent config fuzzer). A marker is "---" at column 0.
  std::vector<std::pair<std::string, int>> docs;  // text, first line (0-based)
  {
    std::string cur;
    int line = 0, start = 0;
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string_view::npos) nl = text.size();
      const std::string_view l = text.substr(pos, nl - pos);
      if (l.substr(0, 3) == "---" && (l.size() == 3 || l[3] == ' ' || l[3] == '\r' || l[3] == '\t')) {
        docs.emplace_back(std::move(cur), start);
        cur.clear();
        start = line;
        cur.append(l.substr(3));  // "--- {a: b}" keeps its content, on the same line
        cur.push_back('\n');
      } else {
        cur.append(l);
        cur.push_back('\n');
      }
      ++line;
      pos = nl + 1;
      if (docs.size() > kMaxDocuments) return make_error("{}: more than {} documents", file, kMaxDocuments);
    }
    docs.emplace_back(std::move(cur), start);
  }
  for (const auto& [t, first] : docs) {
    c.line_offset = first;
    try {
      const YAML::Node doc = YAML::Load(t);
      if (doc.IsNull()) continue;  // an empty document (a leading ---, comments only)
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
    if (!names.insert({p.ns, p.kind + "/" + p.name}).second)
      return make_error("{}:{}: {} {}/{} defined twice", file, p.line, p.kind, p.ns, p.name);
  return out;
}

Result<std::vector<Policy>> load_policy_files(const std::vector<std::string>& paths) {
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
  std::vector<Policy> out;
  std::set<std::pair<std::string, std::string>> names;
  for (const auto& f : files) {
    auto text = read_regular_file(f, kMaxPolicyBytes, "policy file");
    if (!text) return text.error();
    auto ps = parse_policies(*text, f);
    if (!ps) return ps.error();
    for (auto& p : *ps) {
      if (!names.insert({p.ns, p.kind + "/" + p.name}).second)
        return make_error("{}:{}: {} {}/{} is also defined in another file", f, p.line, p.kind, p.ns, p.name);
      out.push_back(std::move(p));
    }
  }
  return out;
}

}  // namespace kagami::policy
