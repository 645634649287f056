// Config: the agent's YAML configuration (docs/config.md), parsed into typed
// data and validated as a whole.
//
// Parsing never touches the kernel. It either yields a complete Config or one
// Error whose message names the field path and the YAML line, e.g.
//   programs[1].attach[0]: unknown hook kind 'xpd' (line 12)
// so an operator can fix the file without guessing. Unknown keys, duplicate
// keys and duplicate program names are errors, not warnings: a typo must never
// silently turn into "feature off".
//
// Thread-safety: the functions are pure (apart from reading object files to
// check and hash them) and may be called from any thread.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/result.h"
#include "core/attach.h"
#include "core/program_manager.h"

namespace kagami::agent {

// agent.events (docs/events.md): the event bus's history and sinks.
// [events] fixed at start, like the rest of agent:.
struct EventsSettings {
  size_t history = 10000;          // events kept in memory for the API/CLI (0 = none)
  bool to_stdout = false;          // JSON lines on the agent's stdout
  std::string file;                // JSON lines appended to this file ("" = none)
  size_t subscriber_queue = 4096;  // events buffered per HTTP follower before it loses some
  // Sinks (stdout, file) in the agent's JSON shape or Falco's
  // ({rule, priority, time, output, output_fields}) for Falcosidekick.
  std::string format = "json";     // json | falco
  // Events that name a rule: at most rule_rate per second (burst
  // rule_burst) per (module, rule, container); 0 = no limit. One noisy pod
  // cannot crowd the others out of the history, the sinks and the streams.
  uint64_t rule_rate = 100;
  uint64_t rule_burst = 500;
};

struct AgentSettings {
  std::string http = "127.0.0.1:9464";          // host:port of /metrics and the API; port 0 = any
  std::string socket = "/run/kagami/kagami.sock";
  std::string pin_root = "/sys/fs/bpf/kagami";
  std::string state_file;                       // "" = <socket dir>/agent-state.json
  std::string node;                             // "" = hostname
  log::Options log;
  // Kernel BPF run-time stats: on_demand (default: on only for a sampling
  // window, `kagami prog list --stats`) or always (every BPF program on the
  // node pays two clock reads per run while the agent runs).
  core::StatsMode bpf_stats = core::StatsMode::OnDemand;
  EventsSettings events;  // [events]
};

const char* bpf_stats_name(core::StatsMode m);

struct ProgramSpec {
  std::string name;
  std::string object;                        // absolute path (relative ones resolved against the config dir)
  std::vector<core::AttachPoint> attach;
  std::vector<core::MapMigration> migrations;
  int line = 0;                              // where the entry starts in the YAML (1-based)
};

struct ModuleSpec {
  std::string name;
  bool enabled = true;
  nlohmann::json section = nlohmann::json::object();  // the module's keys minus "enabled"
  int line = 0;
};

struct Config {
  AgentSettings agent;
  core::TrustPolicy trust;
  std::map<std::string, ModuleSpec> modules;
  std::vector<ProgramSpec> programs;
  std::string path;  // the file it came from; "" for defaults / in-memory text
};

struct ParseOptions {
  // Resolve relative object paths against this directory.
  std::string base_dir = ".";
  // Require each program's object file to exist and be readable.
  bool check_objects = true;
  // When set, a module name outside this list is an error.
  std::optional<std::vector<std::string>> known_modules;
};

// The configuration used when the agent starts without --config.
Config default_config();

// Parses YAML text. Never throws.
Result<Config> parse_config(std::string_view yaml, const ParseOptions& opts);

// Reads and parses a file; base_dir is the file's directory.
Result<Config> load_config(const std::string& path,
                           std::optional<std::vector<std::string>> known_modules = std::nullopt);

// The effective state-file path for settings (state_file or <socket dir>/agent-state.json).
std::string state_file_path(const AgentSettings& s);

// Splits "host:port" / "[v6]:port"; port 0..65535.
Result<std::pair<std::string, int>> parse_host_port(std::string_view addr);


const char* migration_rule_name(core::MapMigration::Rule r);
Result<core::MapMigration::Rule> parse_migration_rule(std::string_view s);

}  // namespace kagami::agent
