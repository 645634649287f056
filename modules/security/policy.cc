#include "modules/security/policy.h"

#include <arpa/inet.h>
#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace kagami::modules::security {
namespace {

const char* const kKindNames[SEC_KIND_MAX] = {
    "unknown", "exec",   "fork",   "exit",  "open",    "connect", "accept",      "bind",
    "listen",  "socket", "setuid", "setgid", "setresuid", "capset", "ptrace",    "mount",
    "umount",  "setns",  "unshare", "init_module", "finit_module", "bpf"};

// "<origin>:L:C: <field>: <message>" with 1-based line and column.
Error at(const std::string& origin, const YAML::Mark& m, const std::string& field, const std::string& msg) {
  if (m.is_null()) return make_error("{}: {}: {}", origin, field, msg);
  return make_error("{}:{}:{}: {}: {}", origin, m.line + 1, m.column + 1, field, msg);
}

struct Ctx {
  const std::string& origin;
  Error err(const YAML::Node& n, const std::string& field, const std::string& msg) const {
    return at(origin, n.Mark(), field, msg);
  }
};

Result<void> known_keys(const Ctx& c, const YAML::Node& n, const std::string& field,
                        std::initializer_list<const char*> keys) {
  if (!n.IsMap()) return c.err(n, field, "must be a mapping");
  for (const auto& kv : n) {
    const std::string k = kv.first.as<std::string>();
    if (std::none_of(keys.begin(), keys.end(), [&](const char* x) { return k == x; })) {
      std::string list;
      for (const char* x : keys) list += (list.empty() ? "" : ", ") + std::string(x);
      return c.err(kv.first, field + "." + k, "unknown key (known: " + list + ")");
    }
  }
  return ok();
}

Result<std::string> scalar(const Ctx& c, const YAML::Node& n, const std::string& field) {
  if (!n.IsScalar()) return c.err(n, field, "must be a string");
  return n.Scalar();
}

// A scalar or a list of scalars, each non-empty.
Result<std::vector<std::string>> strings(const Ctx& c, const YAML::Node& n, const std::string& field) {
  std::vector<std::string> out;
  if (n.IsScalar()) {
    if (n.Scalar().empty()) return c.err(n, field, "must not be empty");
    out.push_back(n.Scalar());
    return out;
  }
  if (!n.IsSequence()) return c.err(n, field, "must be a string or a list of strings");
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string f = fmt::format("{}[{}]", field, i);
    if (!n[i].IsScalar() || n[i].Scalar().empty()) return c.err(n[i], f, "must be a non-empty string");
    out.push_back(n[i].Scalar());
  }
  return out;
}

Result<uint64_t> number(const Ctx& c, const YAML::Node& n, const std::string& field, uint64_t max) {
  if (!n.IsScalar()) return c.err(n, field, "must be an integer");
  const std::string& s = n.Scalar();
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 0);
  if (s.empty() || s[0] == '-' || errno || !end || *end || v > max)
    return c.err(n, field, fmt::format("must be an integer in 0..{}, got '{}'", max, s));
  return static_cast<uint64_t>(v);
}

bool is_hex(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) { return std::isxdigit((unsigned char)ch); });
}

Result<void> parse_selector(const Ctx& c, const YAML::Node& n, const std::string& field, Selector& s) {
  if (!n || n.IsNull()) return ok();
  KAGAMI_TRY(known_keys(c, n, field,
                        {"container", "pod_uid", "cgroup", "binary", "in_container", "namespace", "pod_labels",
                         "pod_label_expressions"}));
  for (const auto& kv : n) {
    const std::string k = kv.first.as<std::string>(), f = field + "." + k;
    if (k == "pod_labels") {
      if (!kv.second.IsMap()) return c.err(kv.second, f, "must be a mapping of label to value (Kubernetes matchLabels)");
      for (const auto& lv : kv.second) {
        const std::string lk = lv.first.as<std::string>();
        if (lk.empty() || !lv.second.IsScalar())
          return c.err(lv.second, f + "." + lk, "label values are strings");
        s.pod_labels.match_labels[lk] = lv.second.Scalar();
      }
      continue;
    }
    if (k == "pod_label_expressions") {
      // Kubernetes matchExpressions: [{key, operator, values}]
      if (!kv.second.IsSequence()) return c.err(kv.second, f, "must be a list of {key, operator, values}");
      for (size_t i = 0; i < kv.second.size(); ++i) {
        const YAML::Node& x = kv.second[i];
        const std::string fi = fmt::format("{}[{}]", f, i);
        KAGAMI_TRY(known_keys(c, x, fi, {"key", "operator", "values"}));
        if (!x["key"] || !x["key"].IsScalar() || x["key"].Scalar().empty()) return c.err(x, fi + ".key", "needs a key");
        if (!x["operator"] || !x["operator"].IsScalar()) return c.err(x, fi + ".operator", "needs an operator");
        auto op = identity::label_op(x["operator"].Scalar());
        if (!op) return c.err(x["operator"], fi + ".operator", op.error().message);
        identity::LabelRequirement r;
        r.key = x["key"].Scalar();
        r.op = *op;
        if (x["values"]) {
          auto v = strings(c, x["values"], fi + ".values");
          if (!v) return v.error();
          r.values = *v;
        }
        const bool set_op = r.op == identity::LabelRequirement::Op::In || r.op == identity::LabelRequirement::Op::NotIn;
        if (set_op && r.values.empty()) return c.err(x, fi + ".values", "In and NotIn need values");
        if (!set_op && !r.values.empty()) return c.err(x["values"], fi + ".values", "Exists and DoesNotExist take no values");
        s.pod_labels.exprs.push_back(std::move(r));
      }
      continue;
    }
    if (k == "in_container") {
      if (!kv.second.IsScalar() || (kv.second.Scalar() != "true" && kv.second.Scalar() != "false"))
        return c.err(kv.second, f, "must be true or false");
      s.in_container = kv.second.Scalar() == "true";
      continue;
    }
    auto v = strings(c, kv.second, f);
    if (!v) return v.error();
    for (size_t i = 0; i < v->size(); ++i) {
      std::string& x = (*v)[i];
      const YAML::Node& at_node = kv.second.IsSequence() ? kv.second[i] : kv.second;
      if (k == "container") {
        if (!is_hex(x) || x.size() < 6 || x.size() > 64)
          return c.err(at_node, f, fmt::format("'{}' is not a container id (6 to 64 hex digits)", x));
        std::transform(x.begin(), x.end(), x.begin(), ::tolower);
      } else if (k == "cgroup") {
        if (x[0] != '/') return c.err(at_node, f, fmt::format("'{}' must start with '/' (relative to the cgroup v2 root)", x));
      } else if (k == "binary") {
        // The kernel sees the task's comm: the base name, 15 bytes.
        if (auto p = x.rfind('/'); p != std::string::npos) x = x.substr(p + 1);
        if (x.empty()) return c.err(at_node, f, "a binary needs a name");
        if (x.size() > SEC_COMM_LEN - 1) x.resize(SEC_COMM_LEN - 1);
      }
    }
    (k == "container"  ? s.containers
     : k == "pod_uid"  ? s.pod_uids
     : k == "cgroup"   ? s.cgroups
     : k == "namespace" ? s.namespaces
                        : s.binaries) = *v;
  }
  return ok();
}

Result<void> parse_cidr(const Ctx& c, const YAML::Node& n, const std::string& f, const std::string& text) {
  auto slash = text.find('/');
  const std::string ip = text.substr(0, slash);
  unsigned char buf[16];
  const bool v6 = ip.find(':') != std::string::npos;
  if (inet_pton(v6 ? AF_INET6 : AF_INET, ip.c_str(), buf) != 1)
    return c.err(n, f, fmt::format("'{}' is not an address or CIDR", text));
  if (slash != std::string::npos) {
    const std::string len = text.substr(slash + 1);
    char* end = nullptr;
    const long l = std::strtol(len.c_str(), &end, 10);
    if (len.empty() || !end || *end || l < 0 || l > (v6 ? 128 : 32))
      return c.err(n, f, fmt::format("'{}': prefix length must be 0..{}", text, v6 ? 128 : 32));
  }
  return ok();
}

Result<void> parse_match(const Ctx& c, const YAML::Node& n, const std::string& field, Rule& r) {
  if (!n || n.IsNull()) return ok();
  KAGAMI_TRY(known_keys(c, n, field,
                        {"path", "path_prefix", "open", "flags", "cidr", "not_cidr", "port", "arg", "args", "uid", "uid_not"}));
  for (const auto& kv : n) {
    const std::string k = kv.first.as<std::string>(), f = field + "." + k;
    const YAML::Node& v = kv.second;
    if (k == "path" || k == "path_prefix") {
      auto s = strings(c, v, f);
      if (!s) return s.error();
      for (const auto& p : *s) {
        if (p[0] != '/') return c.err(v, f, fmt::format("'{}' must be absolute", p));
        // The trie's key holds SEC_PREFIX_LEN bytes; an exact path also
        // needs its NUL there (abi.h).
        const size_t max = k == "path" ? SEC_PREFIX_LEN - 1 : SEC_PREFIX_LEN;
        if (p.size() > max)
          return c.err(v, f, fmt::format("'{}' is longer than the {} bytes the kernel compares", p, max));
      }
      (k == "path" ? r.paths : r.prefixes) = *s;
    } else if (k == "open") {
      auto s = scalar(c, v, f);
      if (!s) return s.error();
      if (*s != "read" && *s != "write") return c.err(v, f, fmt::format("must be read or write, got '{}'", *s));
      r.open = *s;
    } else if (k == "flags") {
      auto s = strings(c, v, f);
      if (!s) return s.error();
      static const std::map<std::string, uint32_t> kFlags = {
          {"O_WRONLY", O_WRONLY}, {"O_RDWR", O_RDWR},   {"O_CREAT", O_CREAT},   {"O_TRUNC", O_TRUNC},
          {"O_APPEND", O_APPEND}, {"O_EXCL", O_EXCL},   {"O_PATH", O_PATH},     {"O_DIRECTORY", O_DIRECTORY},
          {"O_NOFOLLOW", O_NOFOLLOW}, {"O_TMPFILE", O_TMPFILE}};
      for (const auto& x : *s) {
        auto it = kFlags.find(x);
        if (it == kFlags.end()) return c.err(v, f, fmt::format("unknown open flag '{}'", x));
        r.flags_all |= it->second;
      }
    } else if (k == "cidr" || k == "not_cidr") {
      auto s = scalar(c, v, f);
      if (!s) return s.error();
      KAGAMI_TRY(parse_cidr(c, v, f, *s));
      (k == "cidr" ? r.cidr : r.not_cidr) = *s;
    } else if (k == "port") {
      auto p = number(c, v, f, 65535);
      if (!p) return p.error();
      r.port = static_cast<uint16_t>(*p);
    } else if (k == "uid" || k == "uid_not") {
      auto u = number(c, v, f, 0xffffffffULL);
      if (!u) return u.error();
      (k == "uid" ? r.uid : r.uid_not) = static_cast<uint32_t>(*u);
    } else if (k == "args") {
      // One pattern or a list; each {index?, equals?, prefix?, contains?}.
      const bool list = v.IsSequence();
      if (!list && !v.IsMap()) return c.err(v, f, "must be a pattern {index, equals, prefix, contains} or a list of them");
      for (size_t i = 0; i < (list ? v.size() : 1); ++i) {
        const YAML::Node x = list ? v[i] : v;
        const std::string fi = list ? fmt::format("{}[{}]", f, i) : f;
        KAGAMI_TRY(known_keys(c, x, fi, {"index", "equals", "prefix", "contains"}));
        ArgPattern ap;
        for (const auto& kv2 : x) {
          const std::string k2 = kv2.first.as<std::string>();
          if (k2 == "index") {
            auto n = number(c, kv2.second, fi + ".index", 4095);
            if (!n) return n.error();
            ap.index = static_cast<uint32_t>(*n);
            continue;
          }
          if (!kv2.second.IsScalar()) return c.err(kv2.second, fi + "." + k2, "must be a string");
          const std::string t = kv2.second.Scalar();
          if (t.size() > SEC_ARGV_LEN) return c.err(kv2.second, fi + "." + k2, fmt::format("longer than the {} bytes of arguments an exec record carries", SEC_ARGV_LEN));
          if (k2 != "equals" && t.empty()) return c.err(kv2.second, fi + "." + k2, "must not be empty");
          (k2 == "equals" ? ap.equals : k2 == "prefix" ? ap.prefix : ap.contains) = t;
        }
        if (!ap.equals && !ap.prefix && !ap.contains) return c.err(x, fi, "needs equals, prefix or contains");
        r.args.push_back(std::move(ap));
      }
    } else if (k == "arg") {
      KAGAMI_TRY(known_keys(c, v, f, {"index", "equals", "mask"}));
      if (!v["index"] || !v["equals"]) return c.err(v, f, "needs index and equals");
      auto i = number(c, v["index"], f + ".index", 5);
      if (!i) return i.error();
      auto e = number(c, v["equals"], f + ".equals", ~0ULL);
      if (!e) return e.error();
      r.arg_index = static_cast<uint32_t>(*i);
      r.arg_mask = ~0ULL;
      if (v["mask"]) {
        auto m = number(c, v["mask"], f + ".mask", ~0ULL);
        if (!m) return m.error();
        r.arg_mask = *m;
      }
      r.arg_value = *e & r.arg_mask;
    }
  }
  if (r.uid && r.uid_not) return c.err(n, field, "uid and uid_not exclude each other");
  if (r.cidr && r.not_cidr) return c.err(n, field, "cidr and not_cidr exclude each other");
  return ok();
}

// The kinds a field makes sense for.
Result<void> check_fields(const Ctx& c, const YAML::Node& n, const std::string& field, const Rule& r) {
  auto only = [&](bool present, const char* what, std::initializer_list<uint32_t> ok_kinds) -> Result<void> {
    if (!present) return ok();
    for (uint32_t k : r.kinds)
      if (std::find(ok_kinds.begin(), ok_kinds.end(), k) == ok_kinds.end())
        return c.err(n, field, fmt::format("{} does not apply to event kind {}", what, kind_name(k)));
    return ok();
  };
  KAGAMI_TRY(only(!r.paths.empty() || !r.prefixes.empty(), "path",
                  {SEC_KIND_OPEN, SEC_KIND_EXEC, SEC_KIND_MOUNT, SEC_KIND_UMOUNT}));
  KAGAMI_TRY(only(!r.open.empty() || r.flags_all, "open/flags", {SEC_KIND_OPEN}));
  KAGAMI_TRY(only(r.cidr || r.not_cidr || r.port, "cidr/port", {SEC_KIND_CONNECT, SEC_KIND_BIND, SEC_KIND_ACCEPT}));
  KAGAMI_TRY(only(!r.args.empty(), "args (exec argument patterns)", {SEC_KIND_EXEC}));
  return ok();
}

}  // namespace

const char* kind_name(uint32_t kind) { return kind < SEC_KIND_MAX ? kKindNames[kind] : "unknown"; }

bool ArgPattern::matches(const std::vector<std::string>& args) const {
  auto one = [&](const std::string& a) {
    return (!equals || a == *equals) && (!prefix || a.rfind(*prefix, 0) == 0) &&
           (!contains || a.find(*contains) != std::string::npos);
  };
  if (index) return *index < args.size() && one(args[*index]);
  return std::any_of(args.begin(), args.end(), one);
}

std::optional<uint32_t> kind_from_name(const std::string& s) {
  for (uint32_t k = 1; k < SEC_KIND_MAX; ++k)
    if (s == kKindNames[k]) return k;
  return std::nullopt;
}

const std::vector<std::string>& severities() {
  static const std::vector<std::string> v = {"emergency", "alert", "critical", "error",
                                             "warning",   "notice", "informational", "debug"};
  return v;
}

Result<Policy> parse_policy(const std::string& text, const std::string& origin) {
  Ctx c{origin};
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return at(origin, e.mark, "yaml", e.msg);
  }
  Policy p;
  p.origin = origin;
  try {
    if (!root || root.IsNull()) return make_error("{}: empty policy (no rules)", origin);
    KAGAMI_TRY(known_keys(c, root, "policy", {"version", "rules"}));
    if (root["version"]) {
      auto v = number(c, root["version"], "version", 1000);
      if (!v) return v.error();
      if (*v != 1) return c.err(root["version"], "version", fmt::format("unsupported version {} (this agent reads 1)", *v));
    }
    const YAML::Node rules = root["rules"];
    if (!rules || !rules.IsSequence()) return c.err(rules ? rules : root, "rules", "must be a list of rules");
    if (rules.size() > SEC_MAX_RULES)
      return c.err(rules, "rules", fmt::format("{} rules, at most {} (one bit each in the kernel's masks)",
                                               rules.size(), SEC_MAX_RULES));
    std::set<std::string> names;
    for (size_t i = 0; i < rules.size(); ++i) {
      const YAML::Node& n = rules[i];
      const std::string f = fmt::format("rules[{}]", i);
      KAGAMI_TRY(known_keys(c, n, f,
                            {"name", "description", "severity", "event", "selector", "except", "match", "actions"}));
      Rule r;
      r.line = n.Mark().line + 1;
      r.column = n.Mark().column + 1;
      if (!n["name"]) return c.err(n, f + ".name", "missing");
      auto name = scalar(c, n["name"], f + ".name");
      if (!name) return name.error();
      if (name->empty() || name->size() > 64 ||
          !std::all_of(name->begin(), name->end(), [](char ch) { return std::isalnum((unsigned char)ch) || ch == '-' || ch == '_' || ch == '.'; }))
        return c.err(n["name"], f + ".name", fmt::format("'{}': 1 to 64 of [A-Za-z0-9._-]", *name));
      if (!names.insert(*name).second) return c.err(n["name"], f + ".name", fmt::format("'{}' is used twice", *name));
      r.name = *name;
      if (n["description"]) {
        auto d = scalar(c, n["description"], f + ".description");
        if (!d) return d.error();
        r.description = *d;
      }
      if (n["severity"]) {
        auto s = scalar(c, n["severity"], f + ".severity");
        if (!s) return s.error();
        const auto& sv = severities();
        if (std::find(sv.begin(), sv.end(), *s) == sv.end())
          return c.err(n["severity"], f + ".severity",
                       fmt::format("'{}': one of emergency, alert, critical, error, warning, notice, informational, debug", *s));
        r.severity = *s;
      }
      if (!n["event"]) return c.err(n, f + ".event", "missing (the event kind(s) the rule matches)");
      auto ev = strings(c, n["event"], f + ".event");
      if (!ev) return ev.error();
      for (const auto& e : *ev) {
        auto k = kind_from_name(e);
        if (!k) return c.err(n["event"], f + ".event", fmt::format("unknown event kind '{}'", e));
        if (std::find(r.kinds.begin(), r.kinds.end(), *k) == r.kinds.end()) r.kinds.push_back(*k);
      }
      KAGAMI_TRY(parse_selector(c, n["selector"], f + ".selector", r.selector));
      KAGAMI_TRY(parse_selector(c, n["except"], f + ".except", r.except));
      if (r.except.in_container) return c.err(n["except"], f + ".except.in_container", "not an exclusion");
      KAGAMI_TRY(parse_match(c, n["match"], f + ".match", r));
      KAGAMI_TRY(check_fields(c, n["match"] ? n["match"] : n, f + ".match", r));
      if (n["actions"]) {
        auto a = strings(c, n["actions"], f + ".actions");
        if (!a) return a.error();
        r.actions = 0;
        for (const auto& x : *a) {
          if (x == "alert") r.actions |= SEC_ACT_ALERT;
          else if (x == "kill") r.actions |= SEC_ACT_KILL;
          else if (x == "deny") r.actions |= SEC_ACT_DENY;
          else return c.err(n["actions"], f + ".actions", fmt::format("unknown action '{}' (alert, kill, deny)", x));
        }
        if ((r.actions & SEC_ACT_KILL) && (r.actions & SEC_ACT_DENY))
          return c.err(n["actions"], f + ".actions", "kill and deny exclude each other: deny refuses the call, kill stops the process");
      }
      // Argument patterns are matched in userspace, after the record left
      // the kernel: too late to stop the process.
      if (!r.args.empty() && (r.actions & ~SEC_ACT_ALERT))
        return c.err(n["actions"] ? n["actions"] : n, f + ".actions",
                     "match.args is checked in userspace, after the exec: only alert is possible; to kill, select "
                     "by binary (and container) instead");
      p.rules.push_back(std::move(r));
    }
  } catch (const YAML::Exception& e) {
    return at(origin, e.mark, "policy", e.msg);
  }
  return p;
}

Result<Policy> load_policy_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return errno_error(errno ? errno : ENOENT, "security.policy: cannot read {}", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_policy(ss.str(), path);
}

Result<void> check_enforceable(const Policy& p, bool lsm_available) {
  for (const auto& r : p.rules) {
    if (!(r.actions & SEC_ACT_DENY)) continue;
    for (uint32_t k : r.kinds) {
      const bool cg = k == SEC_KIND_CONNECT || k == SEC_KIND_BIND || k == SEC_KIND_SOCKET;
      if (cg) {
        // sock_create sees AF_INET/AF_INET6 sockets only.
        if (k == SEC_KIND_SOCKET && r.arg_index && *r.arg_index == 0 && r.arg_value != AF_INET &&
            r.arg_value != AF_INET6)
          return make_error(
              "{}:{}:{}: rules '{}': deny of socket family {} is not possible on this node: the cgroup hook "
              "sock_create sees only AF_INET/AF_INET6 sockets and BPF LSM is not available; use actions: [kill]",
              p.origin, r.line, r.column, r.name, r.arg_value);
        continue;
      }
      return make_error(
          "{}:{}:{}: rules '{}': deny of {} is not possible on this node: no hook can refuse it ({}; cgroup "
          "hooks deny only connect, bind and socket); use actions: [kill] to stop the process before it "
          "returns to user space",
          p.origin, r.line, r.column, r.name, kind_name(k),
          lsm_available ? "this agent has no BPF LSM program yet" : "BPF LSM is not available");
    }
  }
  return ok();
}

namespace {

// The cgroup part (container, pod_uid, cgroup, in_container: any of them)
// and the Kubernetes part (namespace and labels of a workload the cgroup
// belongs to: both) must each hold where given.
bool sel_cgroup_hit(const Selector& s, const std::string& rel, const identity::Workload& w,
                    const std::vector<const identity::DeclaredWorkload*>& ws) {
  if (s.path_part()) {
    bool hit = s.in_container && w.is_container();
    for (const auto& c : s.containers)
      hit = hit || (!w.container_id.empty() && w.container_id.rfind(c, 0) == 0);
    for (const auto& u : s.pod_uids) hit = hit || w.pod_uid == u;
    for (const auto& p : s.cgroups) hit = hit || rel.rfind(p, 0) == 0;
    if (!hit) return false;
  }
  if (s.k8s_part()) {
    return std::any_of(ws.begin(), ws.end(), [&](const identity::DeclaredWorkload* d) {
      return (s.namespaces.empty() || std::find(s.namespaces.begin(), s.namespaces.end(), d->ns) != s.namespaces.end()) &&
             s.pod_labels.matches(d->labels);
    });
  }
  return true;
}

void fill_addr(sec_rule& out, const std::string& text) {
  auto slash = text.find('/');
  const std::string ip = text.substr(0, slash);
  const bool v6 = ip.find(':') != std::string::npos;
  inet_pton(v6 ? AF_INET6 : AF_INET, ip.c_str(), out.addr);
  const int bits = slash == std::string::npos ? (v6 ? 128 : 32) : std::atoi(text.c_str() + slash + 1);
  out.family = v6 ? AF_INET6 : AF_INET;
  out.prefixlen = static_cast<__u8>(bits);
  for (int b = 0; b < 16; ++b) {
    const int left = bits - b * 8;
    out.mask[b] = left >= 8 ? 0xff : left <= 0 ? 0 : static_cast<__u8>(0xff << (8 - left));
    out.addr[b] &= out.mask[b];
  }
}

}  // namespace

Result<Compiled> compile_policy(const Policy& p) {
  Compiled c;
  if (p.rules.size() > SEC_MAX_RULES) return make_error("{}: more than {} rules", p.origin, SEC_MAX_RULES);
  c.rules.resize(p.rules.size());
  for (size_t i = 0; i < p.rules.size(); ++i) {
    const Rule& r = p.rules[i];
    const __u64 bit = 1ULL << i;
    c.rule_names.push_back(r.name);
    c.rule_severity.push_back(r.severity);
    c.rule_actions.push_back(r.actions);
    sec_rule& k = c.rules[i];
    k = sec_rule{};
    k.kind = r.kinds.empty() ? 0 : r.kinds[0];
    k.actions = r.actions;
    // Deny rules live on the cgroup side only (the hook that can refuse),
    // so their event is reported once.
    const int side = (r.actions & SEC_ACT_DENY) ? SEC_SIDE_CG : SEC_SIDE_TP;
    for (uint32_t kind : r.kinds) c.kinds[side][kind] |= bit;
    if (r.actions & SEC_ACT_ALERT) c.gen.alert |= bit;
    if (r.actions & SEC_ACT_KILL) c.gen.kill |= bit;
    if (r.actions & SEC_ACT_DENY) c.gen.deny |= bit;
    if (r.uid) {
      k.need |= SEC_NEED_UID;
      k.uid = *r.uid;
    }
    if (r.uid_not) {
      k.need |= SEC_NEED_NOT_UID;
      k.uid = *r.uid_not;
    }
    if (r.open == "write") {
      k.need |= SEC_NEED_FLAGS;
      k.flags_any = SEC_OPEN_WRITE_FLAGS;
      c.gen.open_write |= bit;  // decided before the path is read
    } else if (r.open == "read") {
      k.need |= SEC_NEED_RDONLY;
      c.gen.open_rdonly |= bit;
    }
    if (r.flags_all) {
      k.need |= SEC_NEED_FLAGS;
      k.flags_all = r.flags_all;
    }
    if (r.cidr) {
      k.need |= SEC_NEED_ADDR;
      fill_addr(k, *r.cidr);
    }
    if (r.not_cidr) {
      k.need |= SEC_NEED_NOT_ADDR;
      fill_addr(k, *r.not_cidr);
    }
    if (r.port) {
      k.need |= SEC_NEED_PORT;
      k.port = *r.port;
    }
    if (r.arg_index) {
      k.need |= SEC_NEED_ARG;
      k.arg_index = *r.arg_index;
      k.arg_value = r.arg_value;
      k.arg_mask = r.arg_mask;
    }
    if (!r.paths.empty() || !r.prefixes.empty()) c.gen.need_path |= bit;
    for (const auto& x : r.paths) c.exact[x] |= bit;
    for (const auto& x : r.prefixes) c.prefix[x] |= bit;
    if (!r.selector.binaries.empty()) c.gen.need_bin |= bit;
    for (const auto& b : r.selector.binaries) c.bins[b].match |= bit;
    if (!r.except.binaries.empty()) c.gen.except_bin |= bit;
    for (const auto& b : r.except.binaries) c.bins[b].except |= bit;
    if (!r.selector.empty_cgroup_part()) c.gen.need_cgroup |= bit;
    if (!r.except.empty_cgroup_part()) c.gen.except_cgroup |= bit;
    c.k8s = c.k8s || r.selector.k8s_part() || r.except.k8s_part();
    if (!r.args.empty()) c.args_rules |= bit;
  }
  // The trie returns the longest prefix only: fold every shorter prefix's
  // rules into it.
  for (auto& [pre, mask] : c.prefix)
    for (const auto& [other, om] : c.prefix)
      if (other.size() < pre.size() && pre.rfind(other, 0) == 0) mask |= om;
  // Exact paths share the trie (NUL-terminated keys): an exact path's entry
  // is the longest match for that path, so it carries its prefixes' rules.
  for (auto& [path, mask] : c.exact)
    for (const auto& [pre, pm] : c.prefix)
      if (path.rfind(pre, 0) == 0) mask |= pm;
  static_assert(SEC_OPEN_WRITE_FLAGS == (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND),
                "abi.h's SEC_OPEN_WRITE_FLAGS must be open(2)'s write flags");
  if (c.exact.size() + c.prefix.size() > SEC_PREFIX_MAX_ENTRIES / 2 || c.bins.size() > SEC_BIN_MAX_ENTRIES / 2)
    return make_error("{}: too many paths or binaries (at most {} paths and {} binaries per policy)", p.origin,
                      SEC_PREFIX_MAX_ENTRIES / 2, SEC_BIN_MAX_ENTRIES / 2);
  c.source = p.rules;
  return c;
}

SelVal cgroup_masks(const Compiled& c, const std::string& rel, const std::vector<const identity::DeclaredWorkload*>& ws) {
  SelVal v;
  const identity::Workload w = identity::parse_cgroup_path(rel);
  for (size_t i = 0; i < c.source.size(); ++i) {
    const Rule& r = c.source[i];
    if (!r.selector.empty_cgroup_part() && sel_cgroup_hit(r.selector, rel, w, ws)) v.match |= 1ULL << i;
    if (!r.except.empty_cgroup_part() && sel_cgroup_hit(r.except, rel, w, ws)) v.except |= 1ULL << i;
  }
  return v;
}

}  // namespace kagami::modules::security
