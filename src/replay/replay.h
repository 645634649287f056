// `kagami replay FILE [--json]`: runs Kagami's packet programs over a pcap or
// pcapng capture through BPF_PROG_TEST_RUN and reports every counter.
//
// run() asks every built-in module that has the replay capability
// (core::Module::open_replay) for its replay program (nothing is attached
// to any interface, nothing is pinned), feeds each of them every frame of
// the capture in one pass (driver.h), and merges the sections each module
// returns into one JSON document. No module is named here. The document's
// schema is in docs/replay.md; where it overlaps the tshark ground-truth files
// (../shared/pcaps/*.truth.json) it uses their names and keys, so the two can
// be compared key by key ("gtpu.by_teid", "pfcp.by_msg_type", ...).
//
// Needs CAP_BPF (root). Errors name the cause: missing file, not a capture,
// damaged capture (with the frame number), unknown module, BPF load failure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"

namespace kagami::replay {

struct ReplayOptions {
  std::string file;
  std::vector<std::string> modules;  // empty: every module with a replay program
};

// The modules replay can run.
std::vector<std::string> replay_modules();

Result<nlohmann::json> run(const ReplayOptions& opts);

// True for the keys run() writes itself; every other top-level key is a
// module's counter section.
bool is_replay_key(std::string_view key);

// A human-readable report of run()'s JSON: a summary, then every counter
// section in the report's order, rendered by table.h (objects of objects
// sharing numeric fields as tables, one row per key).
std::string render_text(const nlohmann::json& report);

}  // namespace kagami::replay
