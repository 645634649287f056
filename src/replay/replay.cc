#include "replay/replay.h"

#include <algorithm>
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "modules/obs/obs_object.h"
#include "replay/driver.h"
#include "modules/obs/snapshot.h"

namespace kagami::replay {
namespace {

using nlohmann::json;

Result<void> check_modules(const std::vector<std::string>& wanted) {
  auto known = replay_modules();
  for (const auto& m : wanted) {
    if (std::find(known.begin(), known.end(), m) == known.end())
      return make_error("replay: unknown module '{}' (modules with packet programs: {})", m,
                        fmt::join(known, ", "));
  }
  return ok();
}

}  // namespace

std::vector<std::string> replay_modules() { return {"obs"}; }

Result<json> run(const ReplayOptions& opts) {
  KAGAMI_TRY(check_modules(opts.modules));
  // Open the capture before loading BPF, so a wrong path fails fast and
  // without root.
  auto reader = PcapReader::open(opts.file);
  if (!reader) return reader.error().with_context("replay");

  auto obs = obs::ObsObject::open(/*replay_mode=*/true, obs::ObsObject::Programs::ReplayOnly);
  if (!obs) return obs.error().with_context("replay: loading the obs programs");

  auto st = replay_batches(**reader, (*obs)->replay_fd());
  if (!st) return st.error().with_context("replay");

  auto snap = (*obs)->snapshot();
  if (!snap) return snap.error().with_context("replay: reading the obs counters");
  // Every frame handed over must have been counted: a batch the program
  // could not walk is a bug here, not a property of the capture.
  uint64_t seen = snap->total(OBS_CTR_PACKETS);
  if (seen != st->replayed_frames || snap->total(OBS_CTR_REPLAY_BAD_BATCH) != 0)
    return make_error("replay: obs_replay counted {} of {} frames ({} bad batches)", seen, st->replayed_frames,
                      snap->total(OBS_CTR_REPLAY_BAD_BATCH));

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
  out["modules"] = replay_modules();

  json counters = obs::to_json(*snap);
  if (!counters.is_object()) return make_error("replay: obs counters are not a JSON object");
  for (auto& [k, v] : counters.items()) {
    if (is_replay_key(k))
      return make_error("replay: obs counter section '{}' collides with a replay key", k);
    out[k] = v;
  }
  return out;
}

}  // namespace kagami::replay
