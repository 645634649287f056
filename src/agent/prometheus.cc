#include "agent/prometheus.h"

#include <cmath>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

namespace kagami::agent {
namespace {

bool name_char(char c, bool first, bool allow_colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (allow_colon && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

std::string sanitize(const std::string& name, bool allow_colon) {
  if (name.empty()) return "_";
  std::string out = name;
  for (size_t i = 0; i < out.size(); ++i)
    if (!name_char(out[i], i == 0, allow_colon)) out[i] = '_';
  return out;
}

std::string label_set(const std::map<std::string, std::string>& labels, const char* extra_name = nullptr,
                      const std::string& extra_value = {}) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (extra_name && k == extra_name) continue;
    out += out.empty() ? "{" : ",";
    out += sanitize(k, false) + "=\"" + escape_label_value(v) + "\"";
  }
  if (extra_name) {
    out += out.empty() ? "{" : ",";
    out += std::string(extra_name) + "=\"" + escape_label_value(extra_value) + "\"";
  }
  if (!out.empty()) out += "}";
  return out;
}

bool is_valid_type(const std::string& t) {
  return t == "counter" || t == "gauge" || t == "histogram" || t == "summary" || t == "untyped";
}

// Canonical form of an "le" value, so "1", "1.0" and "+Inf" compare equal.
std::string canonical_le(const std::string& le) {
  if (le == "+Inf" || le == "Inf" || le == "inf" || le == "+inf") return "+Inf";
  char* end = nullptr;
  double d = std::strtod(le.c_str(), &end);
  if (end && *end == '\0' && !le.empty()) return format_value(d);
  return le;
}

}  // namespace

std::string escape_label_value(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string escape_help(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string sanitize_metric_name(const std::string& name) { return sanitize(name, true); }

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Integral values (the common case for counters) print without exponent up
  // to 2^53, where doubles stop being exact integers.
  if (std::fabs(v) < 9007199254740992.0 && v == std::floor(v))
    return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

RenderResult render_prometheus(const std::vector<core::MetricFamily>& families) {
  RenderResult r;
  // Merge families by (sanitized) name, keeping first-seen order.
  std::vector<core::MetricFamily> merged;
  std::map<std::string, size_t> index;
  for (const auto& f : families) {
    core::MetricFamily g = f;
    g.name = sanitize_metric_name(f.name);
    if (g.name != f.name) r.warnings.push_back(fmt::format("metric name '{}' repaired to '{}'", f.name, g.name));
    if (!is_valid_type(g.type)) {
      r.warnings.push_back(fmt::format("{}: unknown type '{}', exposed as untyped", g.name, g.type));
      g.type = "untyped";
    }
    auto it = index.find(g.name);
    if (it == index.end()) {
      index[g.name] = merged.size();
      merged.push_back(std::move(g));
    } else if (merged[it->second].type == g.type) {
      auto& dst = merged[it->second].samples;
      dst.insert(dst.end(), g.samples.begin(), g.samples.end());
    } else {
      r.warnings.push_back(fmt::format("{}: dropped a second family of type {} (first was {})", g.name,
                                       g.type, merged[it->second].type));
    }
  }

  std::string& out = r.text;
  for (const auto& f : merged) {
    out += fmt::format("# HELP {} {}\n", f.name, escape_help(f.help.empty() ? f.name : f.help));
    out += fmt::format("# TYPE {} {}\n", f.name, f.type);
    std::set<std::string> seen;  // series already written: duplicates are dropped
    auto emit = [&](const std::string& series, double value) {
      if (!seen.insert(series).second) {
        r.warnings.push_back(fmt::format("duplicate series {} dropped", series));
        return;
      }
      out += series + " " + format_value(value) + "\n";
    };
    if (f.type != "histogram") {
      for (const auto& s : f.samples) {
        if (!s.suffix.empty() && f.type != "summary") {
          r.warnings.push_back(fmt::format("{}: sample suffix '{}' ignored outside histograms", f.name, s.suffix));
        }
        emit(f.name + (f.type == "summary" ? s.suffix : "") + label_set(s.labels), s.value);
      }
      continue;
    }
    // Histogram: group by label set (minus "le"); every group gets a +Inf
    // bucket (Prometheus requires it), taken from _count when missing.
    struct Group {
      std::vector<std::pair<std::string, double>> buckets;  // le, value
      bool has_inf = false;
      std::optional<double> sum, count;
      std::map<std::string, std::string> labels;
    };
    std::vector<std::string> order;
    std::map<std::string, Group> groups;
    for (const auto& s : f.samples) {
      std::map<std::string, std::string> base = s.labels;
      base.erase("le");
      const std::string key = label_set(base);
      auto [it, fresh] = groups.try_emplace(key);
      if (fresh) {
        order.push_back(key);
        it->second.labels = base;
      }
      Group& g = it->second;
      if (s.suffix == "_bucket") {
        auto le = s.labels.find("le");
        if (le == s.labels.end()) {
          r.warnings.push_back(fmt::format("{}: bucket without 'le' dropped", f.name));
          continue;
        }
        const std::string cle = canonical_le(le->second);
        g.has_inf = g.has_inf || cle == "+Inf";
        g.buckets.emplace_back(cle, s.value);
      } else if (s.suffix == "_sum") {
        g.sum = s.value;
      } else if (s.suffix == "_count") {
        g.count = s.value;
      } else {
        r.warnings.push_back(fmt::format("{}: histogram sample without _bucket/_sum/_count dropped", f.name));
      }
    }
    for (const auto& key : order) {
      Group& g = groups[key];
      if (!g.has_inf && g.count) g.buckets.emplace_back("+Inf", *g.count);
      if (!g.count && g.has_inf)
        for (const auto& [le, v] : g.buckets)
          if (le == "+Inf") g.count = v;
      for (const auto& [le, v] : g.buckets) emit(f.name + "_bucket" + label_set(g.labels, "le", le), v);
      emit(f.name + "_sum" + label_set(g.labels), g.sum.value_or(0));
      emit(f.name + "_count" + label_set(g.labels), g.count.value_or(0));
    }
  }
  return r;
}

std::vector<core::MetricFamily> program_families(const std::vector<ProgramRow>& programs) {
  core::MetricFamily info{"kagami_program_info",
                          "A BPF program set managed by Kagami (value 1); labels describe it.",
                          "gauge",
                          {}};
  core::MetricFamily gen{"kagami_program_generation",
                         "1 + number of successful atomic replaces of the program set.", "gauge", {}};
  core::MetricFamily runs{"kagami_program_run_count_total",
                          "Times the kernel ran the BPF program (kernel BPF stats).", "counter", {}};
  core::MetricFamily time{"kagami_program_run_time_seconds_total",
                          "Total time the kernel spent running the BPF program (kernel BPF stats).",
                          "counter", {}};
  core::MetricFamily att{"kagami_program_attach_info",
                         "One attachment of a managed program (value 1).", "gauge", {}};
  core::MetricFamily count{"kagami_agent_programs", "Program sets managed by the agent, by origin.",
                           "gauge", {}};
  std::map<std::string, double> per_origin = {{"config", 0}, {"cli", 0}};
  for (const auto& row : programs) {
    const auto& p = row.info;
    per_origin[row.origin] += 1;
    info.samples.push_back({{{"program", p.name},
                             {"origin", row.origin},
                             {"source", p.label},
                             {"sha256", p.sha256},
                             {"builtin", p.builtin ? "true" : "false"},
                             {"adopted", p.adopted ? "true" : "false"}},
                            1,
                            ""});
    gen.samples.push_back({{{"program", p.name}}, static_cast<double>(p.generation), ""});
    for (const auto& pr : p.progs) {
      std::map<std::string, std::string> l = {
          {"program", p.name}, {"prog", pr.name}, {"id", std::to_string(pr.id)}, {"type", pr.type}};
      runs.samples.push_back({l, static_cast<double>(pr.run_cnt), ""});
      time.samples.push_back({l, static_cast<double>(pr.run_time_ns) / 1e9, ""});
    }
    for (const auto& a : p.attachments)
      att.samples.push_back({{{"program", p.name},
                              {"prog", a.program},
                              {"point", a.point.to_string()},
                              {"mechanism", a.mechanism}},
                             1,
                             ""});
  }
  for (const auto& [o, n] : per_origin) count.samples.push_back({{{"origin", o}}, n, ""});
  return {info, gen, runs, time, att, count};
}

std::vector<core::MetricFamily> agent_families(const AgentFacts& f) {
  return {
      {"kagami_agent_build_info", "Kagami agent build (value 1).", "gauge",
       {{{{"version", f.version}, {"node", f.node}}, 1, ""}}},
      {"kagami_agent_start_time_seconds", "Unix time the agent process started.", "gauge",
       {{{}, f.start_time_seconds, ""}}},
      {"kagami_agent_uptime_seconds", "Seconds since the agent started.", "gauge",
       {{{}, f.uptime_seconds, ""}}},
      {"kagami_agent_resident_memory_bytes", "Resident set size of the agent process.", "gauge",
       {{{}, f.rss_bytes, ""}}},
      {"kagami_agent_cpu_seconds_total", "User plus system CPU time of the agent process.", "counter",
       {{{}, f.cpu_seconds, ""}}},
      {"kagami_agent_config_applies_total", "Config applies (start-up, SIGHUP, kagami apply) by result.",
       "counter",
       {{{{"result", "ok"}}, static_cast<double>(f.applies_ok), ""},
        {{{"result", "error"}}, static_cast<double>(f.applies_failed), ""}}},
      {"kagami_agent_config_last_apply_success", "1 if the last config apply succeeded, else 0.", "gauge",
       {{{}, f.last_apply_ok ? 1.0 : 0.0, ""}}},
      {"kagami_agent_module_collect_errors_total", "Module collect() calls that failed.", "counter",
       {{{}, static_cast<double>(f.collect_errors), ""}}},
  };
}

}  // namespace kagami::agent
