#include "agent/config.h"

#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/anchor.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "common/file.h"
#include "common/names.h"

namespace kagami::agent {
namespace {

namespace fs = std::filesystem;

// YAML anchors/aliases share nodes, so a tiny document can describe an
// exponentially large tree ("billion laughs"). Module sections are expanded
// into JSON, so cap the number of nodes we are willing to expand.
constexpr size_t kMaxSectionNodes = 100000;
// A config is a few KiB; anything this large is a mistake (or an attack on
// the parser) and is refused before yaml-cpp sees it.
constexpr size_t kMaxConfigBytes = 4 << 20;
// A real config nests about 6 levels (modules.obs.interfaces[0].x); module
// sections get some room on top.
constexpr size_t kMaxYamlDepth = 64;

// Receives parser events without building nodes; remembers where the second
// document starts, for the error message, and refuses nesting deeper than
// kMaxYamlDepth before any node tree exists: yaml-cpp builds and destroys
// node trees recursively, and its own guard (2000 levels, "bad file") comes
// too late to name the problem.
struct EventSink : YAML::EventHandler {
  bool first_doc_done = false;
  YAML::Mark second_doc_mark = YAML::Mark::null_mark();
  size_t depth = 0;
  void note(const YAML::Mark& m) {
    if (first_doc_done && second_doc_mark.is_null()) second_doc_mark = m;
  }
  void open(const YAML::Mark& m) {
    note(m);
    if (++depth > kMaxYamlDepth)
      throw YAML::ParserException(m, fmt::format("nested too deep (more than {} levels)", kMaxYamlDepth));
  }
  void close() {
    if (depth > 0) --depth;
  }
  void OnDocumentStart(const YAML::Mark& m) override {
    note(m);
    depth = 0;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { note(m); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { note(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t, const std::string&) override { note(m); }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    open(m);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    open(m);
  }
  void OnMapEnd() override { close(); }
};

int line_of(const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  return m.is_null() ? 0 : m.line + 1;
}

Error field_error(const std::string& path, const YAML::Node& n, const std::string& msg) {
  const int line = line_of(n);
  if (line > 0) return make_error("{}: {} (line {})", path, msg, line);
  return make_error("{}: {}", path, msg);
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

std::string child_path(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

const char* kind_name(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Null: return "empty";
    default: return "undefined";
  }
}

// Iterates a mapping, rejecting non-scalar keys, duplicate keys and keys
// outside `allowed` (when non-empty). Calls f(key, value).
template <typename F>
Result<void> for_each_key(const YAML::Node& map, const std::string& path,
                          const std::vector<std::string>& allowed, F&& f) {
  if (!map.IsMap()) return field_error(path, map, fmt::format("must be a mapping, got {}", kind_name(map)));
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar())
      return field_error(path, kv.first, "keys must be plain strings");
    const std::string key = kv.first.Scalar();
    const std::string p = child_path(path, key);
    if (!seen.insert(key).second) return field_error(p, kv.first, "duplicate key");
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      return field_error(path.empty() ? key : path, kv.first,
                         fmt::format("unknown key '{}' (known: {})", key, join(allowed)));
    KAGAMI_TRY(f(key, kv.second, p));
  }
  return ok();
}

Result<std::string> get_string(const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar()) return field_error(path, n, fmt::format("must be a string, got {}", kind_name(n)));
  return n.Scalar();
}

Result<bool> get_bool(const YAML::Node& n, const std::string& path) {
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (s == "true" || s == "True" || s == "TRUE" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "False" || s == "FALSE" || s == "no" || s == "off") return false;
  }
  return field_error(path, n, "must be true or false");
}

Result<std::vector<std::string>> get_string_list(const YAML::Node& n, const std::string& path) {
  std::vector<std::string> out;
  if (n.IsNull()) return out;
  if (!n.IsSequence()) return field_error(path, n, fmt::format("must be a list, got {}", kind_name(n)));
  for (size_t i = 0; i < n.size(); ++i) {
    auto s = get_string(n[i], fmt::format("{}[{}]", path, i));
    if (!s) return s.error();
    out.push_back(std::move(*s));
  }
  return out;
}

// YAML -> JSON for module sections. Plain scalars get YAML 1.2 core-schema
// typing (null, bool, int, float); quoted scalars stay strings.
Result<nlohmann::json> to_json(const YAML::Node& n, const std::string& path, size_t& budget, size_t depth = 0) {
  if (budget == 0) return field_error(path, n, "section too large (aliases expand past 100000 nodes)");
  // The event pass bounds nesting as written; an alias can still nest a node
  // in itself (`&a {x: *a}`), which expands without end.
  if (depth > kMaxYamlDepth)
    return field_error(path, n, fmt::format("nested too deep (more than {} levels, aliases expanded)", kMaxYamlDepth));
  --budget;
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nlohmann::json(nullptr);
    case YAML::NodeType::Sequence: {
      nlohmann::json arr = nlohmann::json::array();
      for (size_t i = 0; i < n.size(); ++i) {
        auto v = to_json(n[i], fmt::format("{}[{}]", path, i), budget, depth + 1);
        if (!v) return v.error();
        arr.push_back(std::move(*v));
      }
      return arr;
    }
    case YAML::NodeType::Map: {
      nlohmann::json obj = nlohmann::json::object();
      auto r = for_each_key(n, path, {}, [&](const std::string& k, const YAML::Node& v,
                                             const std::string& p) -> Result<void> {
        auto j = to_json(v, p, budget, depth + 1);
        if (!j) return j.error();
        obj[k] = std::move(*j);
        return ok();
      });
      if (!r) return r.error();
      return obj;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") return nlohmann::json(s);  // quoted: always a string
      if (s == "~" || s == "null" || s == "Null" || s == "NULL") return nlohmann::json(nullptr);
      if (s == "true" || s == "True" || s == "TRUE") return nlohmann::json(true);
      if (s == "false" || s == "False" || s == "FALSE") return nlohmann::json(false);
      if (!s.empty()) {
        char* end = nullptr;
        errno = 0;
        long long ll = std::strtoll(s.c_str(), &end, 10);
        if (errno == 0 && end && *end == '\0') return nlohmann::json(ll);
        errno = 0;
        double d = std::strtod(s.c_str(), &end);
        const bool numeric_start = std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' ||
                                   s[0] == '+' || s[0] == '.';
        if (errno == 0 && end && *end == '\0' && numeric_start && std::isfinite(d))
          return nlohmann::json(d);
      }
      return nlohmann::json(s);
    }
  }
  return nlohmann::json(nullptr);
}

bool is_hex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c));
         });
}

std::vector<std::string> libbpf_prog_type_names() {
  std::vector<std::string> out;
  // libbpf's table is dense from 0 (unspec) to the newest type it knows;
  // 256 is far above the ~32 program types of any kernel so far.
  for (int t = 1; t < 256; ++t) {
    const char* s = libbpf_bpf_prog_type_str(static_cast<enum bpf_prog_type>(t));
    if (!s) break;
    out.emplace_back(s);
  }
  return out;
}

// [events] agent.events (docs/events.md, docs/config.md).
Result<void> parse_events(const YAML::Node& n, const std::string& path, EventsSettings& e) {
  if (n.IsNull()) return ok();
  return for_each_key(
      n, path, {"history", "stdout", "file", "subscriber_queue", "format", "rule_rate", "rule_burst"},
      [&](const std::string& k, const YAML::Node& v, const std::string& p) -> Result<void> {
        if (k == "format") {  // [events] sink shape
          auto f = get_string(v, p);
          if (!f) return f.error();
          if (*f != "json" && *f != "falco") return field_error(p, v, fmt::format("must be json or falco, got '{}'", *f));
          e.format = *f;
          return ok();
        }
        if (k == "stdout") {
          auto b = get_bool(v, p);
          if (!b) return b.error();
          e.to_stdout = *b;
          return ok();
        }
        auto s = get_string(v, p);
        if (!s) return s.error();
        if (k == "file") {
          if (s->empty() || (*s)[0] != '/') return field_error(p, v, "must be an absolute path");
          e.file = *s;
          return ok();
        }
        char* end = nullptr;
        errno = 0;
        const unsigned long long x = std::strtoull(s->c_str(), &end, 10);
        const unsigned long long max = 1000000ULL;
        const unsigned long long min = (k == "history" || k == "rule_rate") ? 0ULL : 1ULL;
        if (s->empty() || !std::isdigit(static_cast<unsigned char>((*s)[0])) || errno || !end || *end ||
            x < min || x > max)
          return field_error(p, v, fmt::format("must be an integer in {}..{}, got '{}'", min, max, *s));
        if (k == "rule_rate" || k == "rule_burst") {
          (k == "rule_rate" ? e.rule_rate : e.rule_burst) = x;
          return ok();
        }
        (k == "history" ? e.history : e.subscriber_queue) = static_cast<size_t>(x);
        return ok();
      });
}

Result<void> parse_agent(const YAML::Node& n, AgentSettings& a) {
  return for_each_key(
      n, "agent", {"http", "socket", "pin_root", "state_file", "node", "log", "bpf_stats", "events"},
      [&](const std::string& k, const YAML::Node& v, const std::string& p) -> Result<void> {
        if (k == "events") return parse_events(v, p, a.events);  // [events]
        if (k == "log") {
          return for_each_key(v, p, {"level", "json"},
                              [&](const std::string& lk, const YAML::Node& lv,
                                  const std::string& lp) -> Result<void> {
                                if (lk == "json") {
                                  auto b = get_bool(lv, lp);
                                  if (!b) return b.error();
                                  a.log.json = *b;
                                  return ok();
                                }
                                auto s = get_string(lv, lp);
                                if (!s) return s.error();
                                static const std::vector<std::string> levels = {
                                    "trace", "debug", "info", "warn", "error"};
                                if (std::find(levels.begin(), levels.end(), *s) == levels.end())
                                  return field_error(lp, lv,
                                                     fmt::format("unknown level '{}' (one of: {})",
                                                                 *s, join(levels)));
                                a.log.level = *s;
                                return ok();
                              });
        }
        auto s = get_string(v, p);
        if (!s) return s.error();
        if (k == "http") {
          auto hp = parse_host_port(*s);
          if (!hp) return field_error(p, v, hp.error().message);
          a.http = *s;
        } else if (k == "socket" || k == "state_file") {
          if (s->empty() || (*s)[0] != '/') return field_error(p, v, "must be an absolute path");
          if (k == "socket" && s->size() >= 108)
            return field_error(p, v, "too long for a unix socket path (max 107 bytes)");
          (k == "socket" ? a.socket : a.state_file) = *s;
        } else if (k == "pin_root") {
          const std::string norm = fs::path(*s).lexically_normal().string();
          if (norm.rfind("/sys/fs/bpf/", 0) != 0 || norm.size() <= std::strlen("/sys/fs/bpf/"))
            return field_error(p, v, fmt::format("'{}' must be a directory under /sys/fs/bpf/", *s));
          a.pin_root = norm;
        } else if (k == "node") {
          if (s->empty()) return field_error(p, v, "must not be empty");
          a.node = *s;
        } else if (k == "bpf_stats") {
          if (*s == "on_demand") a.bpf_stats = core::StatsMode::OnDemand;
          else if (*s == "always") a.bpf_stats = core::StatsMode::Always;
          else return field_error(p, v, fmt::format("unknown value '{}' (one of: on_demand, always)", *s));
        }
        return ok();
      });
}

Result<void> parse_trust(const YAML::Node& n, core::TrustPolicy& t) {
  return for_each_key(
      n, "trust", {"allowed_sha256", "custom_program_types"},
      [&](const std::string& k, const YAML::Node& v, const std::string& p) -> Result<void> {
        auto list = get_string_list(v, p);
        if (!list) return list.error();
        if (k == "allowed_sha256") {
          for (size_t i = 0; i < list->size(); ++i) {
            std::string h = (*list)[i];
            if (!is_hex64(h))
              return field_error(fmt::format("{}[{}]", p, i), v[i],
                                 fmt::format("'{}' is not a sha256 (64 hex digits)", h));
            std::transform(h.begin(), h.end(), h.begin(), [](char c) { return std::tolower(c); });
            t.allowed_sha256.insert(h);
          }
        } else {
          static const std::vector<std::string> known = libbpf_prog_type_names();
          for (size_t i = 0; i < list->size(); ++i) {
            const std::string& ty = (*list)[i];
            if (std::find(known.begin(), known.end(), ty) == known.end())
              return field_error(fmt::format("{}[{}]", p, i), v[i],
                                 fmt::format("unknown program type '{}' (e.g. xdp, sched_cls, "
                                             "tracepoint, cgroup_sock_addr)",
                                             ty));
            t.allowed_prog_types.insert(ty);
          }
        }
        return ok();
      });
}

Result<void> parse_modules(const YAML::Node& n, const ParseOptions& opts,
                           std::map<std::string, ModuleSpec>& out) {
  if (n.IsNull()) return ok();
  return for_each_key(
      n, "modules", {},
      [&](const std::string& name, const YAML::Node& v, const std::string& p) -> Result<void> {
        if (opts.known_modules) {
          const auto& known = *opts.known_modules;
          if (std::find(known.begin(), known.end(), name) == known.end())
            return field_error(p, v, fmt::format("unknown module '{}' (built-in: {})", name,
                                                 known.empty() ? "none" : join(known)));
        }
        ModuleSpec m;
        m.name = name;
        m.line = line_of(v);
        if (!v.IsNull()) {
          if (!v.IsMap())
            return field_error(p, v, fmt::format("must be a mapping, got {}", kind_name(v)));
          size_t budget = kMaxSectionNodes;
          auto j = to_json(v, p, budget);
          if (!j) return j.error();
          if (j->contains("enabled")) {
            auto b = get_bool(v["enabled"], p + ".enabled");
            if (!b) return b.error();
            m.enabled = *b;
            j->erase("enabled");
          }
          m.section = std::move(*j);
        }
        out.emplace(name, std::move(m));
        return ok();
      });
}

Result<void> parse_program(const YAML::Node& n, const std::string& path, const ParseOptions& opts,
                           ProgramSpec& spec) {
  spec.line = line_of(n);
  bool has_name = false, has_object = false;
  KAGAMI_TRY(for_each_key(
      n, path, {"name", "object", "attach", "migrations"},
      [&](const std::string& k, const YAML::Node& v, const std::string& p) -> Result<void> {
        if (k == "name") {
          auto s = get_string(v, p);
          if (!s) return s.error();
          if (!names::valid_program_name(*s))
            return field_error(p, v, fmt::format("invalid name '{}' (use [a-z0-9_-], 1 to 32 characters)", *s));
          spec.name = *s;
          has_name = true;
        } else if (k == "object") {
          auto s = get_string(v, p);
          if (!s) return s.error();
          if (s->empty()) return field_error(p, v, "must not be empty");
          fs::path obj(*s);
          if (obj.is_relative()) obj = fs::path(opts.base_dir) / obj;
          spec.object = obj.lexically_normal().string();
          if (opts.check_objects) {
            std::error_code ec;
            if (!fs::is_regular_file(spec.object, ec) || ::access(spec.object.c_str(), R_OK) != 0) {
              struct stat st{};
              const std::string why =
                  ::stat(spec.object.c_str(), &st) != 0 ? std::string("no such file")
                  : !S_ISREG(st.st_mode) ? fmt::format("is a {}, not a regular file", file_type_name(st.st_mode))
                                         : std::string("not readable");
              return field_error(p, v, fmt::format("object '{}': {}", spec.object, why));
            }
          }
          has_object = true;
        } else if (k == "attach") {
          if (!v.IsSequence())
            return field_error(p, v, fmt::format("must be a list of attach specs, got {}", kind_name(v)));
          for (size_t i = 0; i < v.size(); ++i) {
            const std::string ip = fmt::format("{}[{}]", p, i);
            auto s = get_string(v[i], ip);
            if (!s) return s.error();
            auto ap = core::AttachPoint::parse(*s);
            if (!ap) return field_error(ip, v[i], ap.error().message);
            if (std::find(spec.attach.begin(), spec.attach.end(), *ap) != spec.attach.end())
              return field_error(ip, v[i], fmt::format("duplicate attach point '{}'", *s));
            spec.attach.push_back(std::move(*ap));
          }
        } else if (k == "migrations") {
          if (!v.IsSequence()) return field_error(p, v, fmt::format("must be a list, got {}", kind_name(v)));
          for (size_t i = 0; i < v.size(); ++i) {
            const std::string mp = fmt::format("{}[{}]", p, i);
            core::MapMigration m;
            bool has_map = false, has_rule = false;
            KAGAMI_TRY(for_each_key(v[i], mp, {"map", "rule"},
                                    [&](const std::string& mk, const YAML::Node& mv,
                                        const std::string& mpp) -> Result<void> {
                                      auto s = get_string(mv, mpp);
                                      if (!s) return s.error();
                                      if (mk == "map") {
                                        if (s->empty()) return field_error(mpp, mv, "must not be empty");
                                        m.map = *s;
                                        has_map = true;
                                      } else {
                                        auto r = parse_migration_rule(*s);
                                        if (!r) return field_error(mpp, mv, r.error().message);
                                        m.rule = *r;
                                        has_rule = true;
                                      }
                                      return ok();
                                    }));
            if (!has_map) return field_error(mp, v[i], "missing required key 'map'");
            if (!has_rule) return field_error(mp, v[i], "missing required key 'rule'");
            for (const auto& prev : spec.migrations)
              if (prev.map == m.map)
                return field_error(mp, v[i], fmt::format("map '{}' listed twice", m.map));
            spec.migrations.push_back(std::move(m));
          }
        }
        return ok();
      }));
  if (!has_name) return field_error(path, n, "missing required key 'name'");
  if (!has_object) return field_error(path, n, "missing required key 'object'");
  return ok();
}

Result<void> parse_programs(const YAML::Node& n, const ParseOptions& opts,
                            std::vector<ProgramSpec>& out) {
  if (n.IsNull()) return ok();
  if (!n.IsSequence()) return field_error("programs", n, fmt::format("must be a list, got {}", kind_name(n)));
  std::map<std::string, int> names;  // name -> index
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string path = fmt::format("programs[{}]", i);
    ProgramSpec spec;
    KAGAMI_TRY(parse_program(n[i], path, opts, spec));
    auto [it, fresh] = names.emplace(spec.name, static_cast<int>(i));
    if (!fresh)
      return field_error(path + ".name", n[i]["name"],
                         fmt::format("duplicate program name '{}' (also programs[{}])", spec.name,
                                     it->second));
    out.push_back(std::move(spec));
  }
  return ok();
}

// Top-level `workloads:` and `policy:` (docs/config.md, docs/policy.md)
// belong to the policy module: they become modules.policy.workloads and
// the rest of modules.policy (enabling the module when it is not listed),
// with policy.files resolved against the config file's directory. The
// module checks them in full at apply; here: their shape, with lines.
Result<void> fold_policy(const YAML::Node* workloads_in, const YAML::Node* policy_in, const ParseOptions& opts,
                         Config& cfg) {
  if (!workloads_in && !policy_in) return ok();
  // A default YAML::Node is a defined null node, so presence travels as a pointer.
  const YAML::Node workloads = workloads_in ? *workloads_in : YAML::Node(YAML::NodeType::Undefined);
  const YAML::Node policy = policy_in ? *policy_in : YAML::Node(YAML::NodeType::Undefined);
  auto& m = cfg.modules["policy"];
  if (m.name.empty()) {
    m.name = "policy";
    m.line = line_of(policy_in ? policy : workloads);
  }
  if (opts.known_modules) {
    const auto& known = *opts.known_modules;
    if (std::find(known.begin(), known.end(), "policy") == known.end())
      return field_error(policy_in ? "policy" : "workloads", policy_in ? policy : workloads,
                         "this agent has no policy module");
  }
  if (workloads_in && !workloads.IsNull()) {
    if (!workloads.IsSequence())
      return field_error("workloads", workloads, fmt::format("must be a list, got {}", kind_name(workloads)));
    if (m.section.contains("workloads"))
      return field_error("workloads", workloads, "also given as modules.policy.workloads; keep one");
    size_t budget = kMaxSectionNodes;
    auto j = to_json(workloads, "workloads", budget);
    if (!j) return j.error();
    for (size_t i = 0; i < workloads.size(); ++i)
      if (!workloads[i].IsMap())
        return field_error(fmt::format("workloads[{}]", i), workloads[i], "must be a mapping (name, namespace, labels, netns or cgroup)");
    // The security module selects by namespace and pod labels against the
    // same list (docs/security-policy.md): it gets a copy.
    if (auto sec = cfg.modules.find("security"); sec != cfg.modules.end() && !sec->second.section.contains("workloads"))
      sec->second.section["workloads"] = *j;
    m.section["workloads"] = std::move(*j);
  }
  if (policy_in && !policy.IsNull()) {
    if (!policy.IsMap()) return field_error("policy", policy, fmt::format("must be a mapping, got {}", kind_name(policy)));
    size_t budget = kMaxSectionNodes;
    auto j = to_json(policy, "policy", budget);
    if (!j) return j.error();
    for (auto& [k, v] : j->items()) {
      if (m.section.contains(k))
        return field_error("policy." + k, static_cast<const YAML::Node&>(policy)[k], fmt::format("also given as modules.policy.{}; keep one", k));
      if (k == "files" && v.is_array())
        for (auto& f : v)
          if (f.is_string() && !f.get<std::string>().empty() && f.get<std::string>()[0] != '/')
            f = (fs::path(opts.base_dir) / f.get<std::string>()).lexically_normal().string();
      m.section[k] = v;
    }
  }
  return ok();
}

Result<Config> parse_document(const YAML::Node& root, const ParseOptions& opts) {
  Config cfg = default_config();
  if (root.IsNull()) return cfg;  // an empty file is the default configuration
  std::optional<YAML::Node> workloads, policy;
  KAGAMI_TRY(for_each_key(
      root, "", {"agent", "trust", "modules", "programs", "workloads", "policy"},
      [&](const std::string& k, const YAML::Node& v, const std::string&) -> Result<void> {
        if (k == "agent") return v.IsNull() ? ok() : parse_agent(v, cfg.agent);
        if (k == "trust") return v.IsNull() ? ok() : parse_trust(v, cfg.trust);
        if (k == "modules") return parse_modules(v, opts, cfg.modules);
        if (k == "workloads") return (workloads.emplace(v), ok());
        if (k == "policy") return (policy.emplace(v), ok());
        return parse_programs(v, opts, cfg.programs);
      }));
  KAGAMI_TRY(fold_policy(workloads ? &*workloads : nullptr, policy ? &*policy : nullptr, opts, cfg));
  return cfg;
}

}  // namespace

Config default_config() { return Config{}; }

Result<Config> parse_config(std::string_view yaml, const ParseOptions& opts) {
  if (yaml.size() > kMaxConfigBytes)
    return make_error("config too large ({} bytes, max {})", yaml.size(), kMaxConfigBytes);
  try {
    // yaml-cpp reads until NUL in some paths; a NUL byte is never valid YAML text.
    if (yaml.find('\0') != std::string_view::npos) return make_error("bad YAML: contains a NUL byte");
    const std::string text(yaml);
    // Count documents with a parser that builds nothing, and stop at two.
    // Never YAML::LoadAll: yaml-cpp 0.7 leaves a stray top-level ',' unconsumed
    // and LoadAll then yields empty documents forever (found by the fuzzer;
    // input "," grows memory without bound).
    {
      std::istringstream in(text);
      YAML::Parser parser(in);
      EventSink sink;
      int docs = 0;
      while (docs < 2 && parser.HandleNextDocument(sink)) {
        ++docs;
        if (docs == 1) sink.first_doc_done = true;
      }
      if (docs > 1) {
        const int line = sink.second_doc_mark.is_null() ? 0 : sink.second_doc_mark.line + 1;
        return make_error("bad YAML: expected one document, found more (stray ',' or '---'?) (line {})",
                          line);
      }
    }
    return parse_document(YAML::Load(text), opts);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own guard ("bad file"); our event pass should fire first.
    return make_error("bad YAML: nested too deep (more than {} levels) (line {})", kMaxYamlDepth,
                      e.mark.is_null() ? 0 : e.mark.line + 1);
  } catch (const YAML::Exception& e) {
    // e.msg is the bare reason; e.mark says where.
    if (!e.mark.is_null()) return make_error("bad YAML: {} (line {})", e.msg, e.mark.line + 1);
    return make_error("bad YAML: {}", e.msg);
  } catch (const std::exception& e) {
    return make_error("bad YAML: {}", e.what());
  }
}

Result<Config> load_config(const std::string& path,
                           std::optional<std::vector<std::string>> known_modules) {
  // Never blocks (a FIFO without writer), never reads past the limit
  // (/dev/zero, a sparse 2 GB file), and a directory is not an empty config.
  auto text = read_regular_file(path, kMaxConfigBytes, "config");
  if (!text) return text.error();
  ParseOptions opts;
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  opts.base_dir = abs.parent_path().string();
  opts.known_modules = std::move(known_modules);
  auto cfg = parse_config(*text, opts);
  if (!cfg) return cfg.error().with_context(path);
  cfg->path = abs.lexically_normal().string();
  return cfg;
}

std::string state_file_path(const AgentSettings& s) {
  if (!s.state_file.empty()) return s.state_file;
  return (fs::path(s.socket).parent_path() / "agent-state.json").string();
}

Result<std::pair<std::string, int>> parse_host_port(std::string_view addr) {
  std::string host;
  std::string_view port;
  if (!addr.empty() && addr.front() == '[') {
    auto close = addr.find(']');
    if (close == std::string_view::npos || close + 1 >= addr.size() || addr[close + 1] != ':')
      return make_error("'{}' is not host:port (IPv6 as [addr]:port)", addr);
    host = std::string(addr.substr(1, close - 1));
    port = addr.substr(close + 2);
  } else {
    auto colon = addr.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      return make_error("'{}' is not host:port", addr);
    host = std::string(addr.substr(0, colon));
    if (host.find(':') != std::string::npos)
      return make_error("'{}': write IPv6 addresses as [addr]:port", addr);
    port = addr.substr(colon + 1);
  }
  if (host.empty()) return make_error("'{}': empty host", addr);
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return make_error("'{}': port must be a number 0-65535", addr);
  const int p = std::stoi(std::string(port));
  if (p > 65535) return make_error("'{}': port must be a number 0-65535", addr);
  return std::make_pair(host, p);
}

const char* bpf_stats_name(core::StatsMode m) {
  return m == core::StatsMode::Always ? "always" : "on_demand";
}


const char* migration_rule_name(core::MapMigration::Rule r) {
  switch (r) {
    case core::MapMigration::Rule::Reset: return "reset";
    case core::MapMigration::Rule::Extend: return "extend";
    case core::MapMigration::Rule::Refuse: return "refuse";
  }
  return "refuse";
}

Result<core::MapMigration::Rule> parse_migration_rule(std::string_view s) {
  if (s == "reset") return core::MapMigration::Rule::Reset;
  if (s == "extend") return core::MapMigration::Rule::Extend;
  if (s == "refuse") return core::MapMigration::Rule::Refuse;
  return make_error("unknown migration rule '{}' (one of: reset, extend, refuse)", s);
}

}  // namespace kagami::agent
