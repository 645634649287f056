#include <algorithm>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "replay/replay.h"
#include "replay/table.h"

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

}  // namespace

// The summary from replay's own keys, then every module section in the
// report's order, each through the generic table renderer (table.h): the
// renderer knows JSON shapes, not modules.
std::string render_text(const json& r) {
  if (!r.is_object()) return "not a replay report: " + scalar(r) + "\n";
  std::string out;
  auto get = [&](const char* k) { return r.contains(k) ? scalar(r[k]) : std::string("-"); };
  out += fmt::format("capture {} ({})\n", get("capture"), get("link_type"));
  out += fmt::format("frames: {} total, {} replayed, {} snapped by the capture, {} cut to the test-run limit\n",
                     get("total_frames"), get("replayed_frames"), get("snapped_frames"), get("cut_frames"));
  if (r.contains("skipped")) {
    std::string skipped = render_section(r["skipped"]);
    if (!skipped.empty()) out += "skipped:\n" + skipped;
  }
  out += fmt::format("time: {} ms ({} ns/frame, {} ns/frame in the kernel)\n", get("duration_ms"),
                     get("ns_per_frame"), get("kernel_ns_per_frame"));
  for (auto it = r.begin(); it != r.end(); ++it) {
    if (is_replay_key(it.key())) continue;
    const json& v = *it;
    if (!v.is_structured()) {
      out += fmt::format("\n{}: {}\n", it.key(), scalar(v));
      continue;
    }
    std::string body = render_section(v);
    out += fmt::format("\n[{}]\n", it.key());
    out += body.empty() ? "  (all zero)\n" : body;
  }
  out += "\n(zero counters omitted; --json prints every key)\n";
  return out;
}

}  // namespace kagami::replay
