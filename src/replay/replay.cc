#include "replay/replay.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <span>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/module.h"
#include "core/session_directory.h"
#include "replay/driver.h"

namespace kagami::replay {
namespace {

using nlohmann::json;

// Every built-in module that has a replay program, in registry order.
std::vector<std::string> modules_with_replay() {
  std::vector<std::string> out;
  for (const auto& n : core::builtin_module_names()) {
    auto m = core::make_module(n);
    if (m && m->has_replay()) out.push_back(n);
  }
  return out;
}

}  // namespace

std::vector<std::string> replay_modules() {
  static const std::vector<std::string> names = modules_with_replay();
  return names;
}

Result<json> run(const ReplayOptions& opts) {
  const auto known = replay_modules();
  for (const auto& m : opts.modules) {
    if (std::find(known.begin(), known.end(), m) == known.end())
      return make_error("replay: unknown module '{}' (modules with packet programs: {})", m, fmt::join(known, ", "));
  }
  const std::vector<std::string>& wanted = opts.modules.empty() ? known : opts.modules;
  if (wanted.empty()) return make_error("replay: no built-in module has a replay program");
  // Open the capture before loading BPF, so a wrong path fails fast and
  // without root.
  auto reader = PcapReader::open(opts.file);
  if (!reader) return reader.error().with_context("replay");

  // Each module loads its own replay program (Module::open_replay); the
  // capture is read once and every batch runs through each of them.
  // The pass's cross-module lookup (n2 writes, obs reads), as the agent's;
  // declared first so that it outlives the runs.
  core::SessionDirectory sessions;
  core::ScopedSessionDirectory installed(&sessions);
  std::vector<std::unique_ptr<core::ReplayRun>> runs;
  std::vector<int> fds;
  for (const auto& name : wanted) {
    auto mod = core::make_module(name);
    auto run = mod->open_replay();
    if (!run) return run.error().with_context("replay: loading the " + name + " replay program");
    fds.push_back((*run)->prog_fd());
    runs.push_back(std::move(*run));
  }

  // Modules that decode in userspace drain what their program copied up
  // after every batch (ReplayRun::after_batch).
  auto st = replay_batches(**reader, std::span<const int>(fds), [&runs]() -> Result<void> {
    for (auto& r : runs) KAGAMI_TRY(r->after_batch());
    return ok();
  });
  if (!st) return st.error().with_context("replay");

  json out;
  out["capture"] = std::filesystem::path(opts.file).filename().string();
  out["file"] = opts.file;
  out["link_type"] = st->link_type;
  out["total_frames"] = st->total_frames;
  out["replayed_frames"] = st->replayed_frames;
  out["snapped_frames"] = st->snapped_frames;
  out["cut_frames"] = st->cut_frames;
  json skipped = json::object();
  for (const auto& [k, v] : st->skipped) skipped[k] = v;
  out["skipped"] = skipped;
  json verdicts = json::object();
  for (const auto& [k, v] : st->verdicts) verdicts[std::to_string(k)] = v;
  out["verdicts"] = verdicts;
  out["test_runs"] = st->runs;
  out["duration_ms"] = static_cast<double>(st->wall_ns) / 1e6;
  out["ns_per_frame"] = st->replayed_frames ? static_cast<double>(st->wall_ns) / st->replayed_frames : 0.0;
  out["kernel_ns_per_frame"] =
      st->replayed_frames ? static_cast<double>(st->kernel_ns) / st->replayed_frames : 0.0;
  out["modules"] = wanted;

  // Merge every module's sections at the top level, under the names of the
  // tshark truth files; two modules claiming one section is a bug.
  std::map<std::string, std::string> owner;
  for (size_t i = 0; i < runs.size(); i++) {
    auto sections = runs[i]->finish(st->replayed_frames);
    if (!sections) return sections.error().with_context("replay: reading the " + wanted[i] + " counters");
    if (!sections->is_object()) return make_error("replay: {} counters are not a JSON object", wanted[i]);
    for (auto& [k, v] : sections->items()) {
      if (is_replay_key(k))
        return make_error("replay: {} counter section '{}' collides with a replay key", wanted[i], k);
      if (auto [it, fresh] = owner.emplace(k, wanted[i]); !fresh)
        return make_error("replay: section '{}' is written by both {} and {}", k, it->second, wanted[i]);
      out[k] = v;
    }
  }
  return out;
}

}  // namespace kagami::replay
