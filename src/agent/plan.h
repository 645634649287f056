// Apply planning: the pure diff between what the configuration wants and what
// runs, so a config apply touches only what changed.
//
// The agent builds DesiredProgram entries from the config's programs and from
// every enabled module's plan(), and CurrentProgram entries from the manager's
// list joined with the agent state file (which remembers each program's origin).
// plan_apply() decides, per program name:
//   add      wanted, not running
//   replace  running, but the object's sha256 or the attach list differ
//   remove   running with origin config/module, no longer wanted
//   keep     identical (the program id, maps and counters stay)
// Programs loaded ad hoc through the CLI (origin "cli") are never removed by
// an apply; if the config starts declaring one, the config takes it over
// (replace when it differs, keep otherwise).
#pragma once

#include <string>
#include <vector>

#include "core/program_manager.h"

namespace kagami::agent {

inline constexpr const char* kOriginConfig = "config";
inline constexpr const char* kOriginCli = "cli";
inline std::string module_origin(const std::string& module) { return "module:" + module; }

struct DesiredProgram {
  core::LoadRequest request;
  std::string origin;  // "config" | "module:<name>"
  std::string sha256;  // of the object bytes
};

struct CurrentProgram {
  std::string name;
  std::string origin;               // "config" | "module:<name>" | "cli"
  std::string sha256;
  std::vector<std::string> attach;  // AttachPoint::to_string() of each attach point
};

enum class Action { Add, Replace, Remove, Keep };
const char* action_name(Action a);

struct PlannedStep {
  Action action = Action::Keep;
  std::string name;
  std::string origin;   // origin after the step
  std::string reason;   // for logs and the apply report
  int desired = -1;     // index into the desired list (add/replace/keep)
  // Replace with a different attach list: the manager's atomic replace keeps
  // the hooks, so the agent detaches and loads again (not atomic).
  bool attach_changed = false;
};

struct ApplyPlan {
  // Execution order: adds, then replaces, then removes (a failed add is
  // rolled back before anything running was touched), keeps last.
  std::vector<PlannedStep> steps;
  size_t count(Action a) const;
  bool changes_anything() const { return count(Action::Keep) != steps.size(); }
};

// Sorted canonical attach strings, so order in the YAML does not matter.
std::vector<std::string> canonical_attach(const std::vector<core::AttachPoint>& points);

ApplyPlan plan_apply(const std::vector<DesiredProgram>& desired,
                     const std::vector<CurrentProgram>& current);

}  // namespace kagami::agent
