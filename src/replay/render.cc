#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "replay/replay.h"

namespace kagami::replay {

using nlohmann::json;

bool is_replay_key(std::string_view k) {
  static constexpr std::string_view kKeys[] = {
      "capture",    "file",         "link_type",           "total_frames", "replayed_frames",
      "snapped_frames", "cut_frames", "skipped",           "verdicts", "test_runs", "duration_ms",
      "ns_per_frame", "kernel_ns_per_frame", "modules"};
  return std::find(std::begin(kKeys), std::end(kKeys), k) != std::end(kKeys);
}

namespace {

std::string scalar(const json& v) {
  if (v.is_number_float()) return fmt::format("{:.3f}", v.get<double>());
  if (v.is_string()) return v.get<std::string>();
  // replace: a string from a damaged map key must not throw mid-report.
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Beyond this nesting a value prints as compact JSON on one row; the
// counters nest 4 levels deep (gtpu.by_teid.<teid>.by_message_type), and the
// bound keeps the recursion finite on hostile input (fuzzed).
constexpr int kMaxDepth = 16;

// Flattens nested objects into dotted keys; arrays of scalars print inline.
void flatten(const json& v, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& rows,
             int depth = 0) {
  if (depth >= kMaxDepth && v.is_structured()) {
    rows.emplace_back(prefix, scalar(v));
    return;
  }
  if (v.is_object()) {
    // {"name": ..., "count": n} (the truth files' shape for coded values)
    // reads best as one row: "by_msg_type.50   20  PFCP Session ...".
    if (v.size() == 2 && v.contains("count") && v.contains("name") && v["count"].is_number()) {
      rows.emplace_back(prefix, scalar(v["count"]) + "  " + scalar(v["name"]));
      return;
    }
    if (v.empty()) rows.emplace_back(prefix, "{}");
    for (auto it = v.begin(); it != v.end(); ++it)
      flatten(*it, prefix.empty() ? it.key() : prefix + "." + it.key(), rows, depth + 1);
    return;
  }
  if (v.is_array()) {
    bool scalars = std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_primitive(); });
    if (scalars) {
      std::string s;
      for (const auto& e : v) s += (s.empty() ? "" : ", ") + scalar(e);
      rows.emplace_back(prefix, "[" + s + "]");
    } else {
      for (size_t i = 0; i < v.size(); i++) flatten(v[i], prefix + "[" + std::to_string(i) + "]", rows, depth + 1);
    }
    return;
  }
  rows.emplace_back(prefix, scalar(v));
}

void table(std::string& out, const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t w = 0;
  for (const auto& r : rows) w = std::max(w, r.first.size());
  for (const auto& r : rows) {
    // Numbers right-aligned in a column; a trailing name or a string value
    // runs on to the right of it.
    auto sp = r.second.find("  ");
    std::string num = sp == std::string::npos ? r.second : r.second.substr(0, sp);
    std::string rest = sp == std::string::npos ? "" : r.second.substr(sp);
    out += fmt::format("  {:<{}}  {:>12}{}\n", r.first, w, num, rest);
  }
}

}  // namespace

std::string render_text(const json& r) {
  if (!r.is_object()) return "not a replay report: " + scalar(r) + "\n";
  std::string out;
  auto get = [&](const char* k) { return r.contains(k) ? scalar(r[k]) : std::string("-"); };
  out += fmt::format("capture {} ({})\n", get("capture"), get("link_type"));
  out += fmt::format("frames: {} total, {} replayed, {} snapped by the capture, {} cut to the test-run limit\n",
                     get("total_frames"), get("replayed_frames"), get("snapped_frames"), get("cut_frames"));
  if (r.contains("skipped") && r["skipped"].is_object() && !r["skipped"].empty()) {
    std::vector<std::pair<std::string, std::string>> rows;
    flatten(r["skipped"], "", rows);
    out += "skipped:\n";
    table(out, rows);
  }
  out += fmt::format("time: {} ms ({} ns/frame, {} ns/frame in the kernel)\n", get("duration_ms"),
                     get("ns_per_frame"), get("kernel_ns_per_frame"));
  // Sections in the order an operator reads them: the 5G protocols first,
  // then transport and errors, then anything else, the raw ABI counters last.
  static const char* const kOrder[] = {"gtpu", "pfcp", "ngap", "nas_5gs", "sbi", "http2", "sctp", "transport",
                                       "malformed", "malformed_total"};
  std::vector<std::string> keys;
  for (const char* k : kOrder)
    if (r.contains(k)) keys.emplace_back(k);
  for (auto it = r.begin(); it != r.end(); ++it) {
    if (is_replay_key(it.key()) || it.key() == "counters") continue;
    if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) keys.push_back(it.key());
  }
  if (r.contains("counters")) keys.emplace_back("counters");
  for (const auto& k : keys) {
    const json& v = r[k];
    if (!v.is_structured()) {
      out += fmt::format("\n{}: {}\n", k, scalar(v));
      continue;
    }
    std::vector<std::pair<std::string, std::string>> rows, nonzero;
    flatten(v, "", rows);
    // Zero counters are noise in a table; --json keeps every key.
    for (auto& row : rows)
      if (row.second != "0" && row.second.rfind("0  ", 0) != 0 && row.second != "{}" && row.second != "[]") nonzero.push_back(std::move(row));
    out += fmt::format("\n[{}]\n", k);
    if (nonzero.empty()) out += "  (all zero)\n";
    table(out, nonzero);
  }
  out += "\n(zero counters omitted; --json prints every key)\n";
  return out;
}

}  // namespace kagami::replay
