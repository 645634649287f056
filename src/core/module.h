// Module: a built-in capability (observability, security, energy, ...) made of
// BPF objects that the ProgramManager loads, plus the userspace that turns
// their maps into metrics and JSON.
//
// The agent owns modules. On config apply it asks each enabled module for its
// LoadRequests (plan), loads or replaces them through the manager, and later
// calls collect()/snapshot() on every scrape or API call. Modules never call
// libbpf for loading; they read maps through ProgramManager::map_fd.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "core/metrics.h"
#include "core/program_manager.h"

namespace kagami::core {

// A kernel feature a module wants, and what it does without it.
struct FeatureNeed {
  std::string feature;   // a name from `kagami probe` ("tc", "xdp_native", "kprobe", ...)
  bool required = false; // false: the module falls back
  std::string fallback;  // what it uses instead, for the report
};

class Module {
 public:
  virtual ~Module() = default;
  virtual std::string name() const = 0;
  virtual std::vector<FeatureNeed> needs() const = 0;

  // The programs this module runs for its config section (YAML turned JSON).
  // Must not touch the kernel. An invalid section is an Error naming the field.
  virtual Result<std::vector<LoadRequest>> plan(const nlohmann::json& config) = 0;

  // Called after every successful apply, once the module's programs are
  // loaded, replaced, adopted or unchanged: writes what the programs read
  // from userspace-filled maps (obs: which interface slot an ifindex has).
  // An Error becomes an apply warning; the programs keep running.
  virtual Result<void> configure(const ProgramManager& pm) {
    (void)pm;
    return ok();
  }

  // Reads the module's maps (through pm) into metric families.
  virtual Result<std::vector<MetricFamily>> collect(const ProgramManager& pm) = 0;

  // The same counters as JSON, for the API and `kagami status`.
  virtual Result<nlohmann::json> snapshot(const ProgramManager& pm) = 0;
};

// Registry of built-in modules by name ("obs", ...); nullptr if unknown.
std::unique_ptr<Module> make_module(const std::string& name);
std::vector<std::string> builtin_module_names();

}  // namespace kagami::core
