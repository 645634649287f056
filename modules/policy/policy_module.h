// The policy module (README.md, docs/policy.md): Kubernetes NetworkPolicy
// and KagamiNetworkPolicy enforced at TC on the workloads' host-side
// interfaces. plan() parses the config and every policy file (an invalid
// file fails the apply with file:line:col, and the policy in force stays);
// configure() resolves workload addresses, compiles, writes the inactive
// slot and flips pol_cfg.slot last.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "core/module.h"
#include "modules/policy/compile.h"
#include "modules/policy/model.h"

namespace kagami::policy {

inline constexpr const char* kProgramName = "policy";
inline constexpr int kTcOrder = 50;  // before the observers (obs: 100); see policy.bpf.c

// What a configure() wrote: the generation now in force and its sizes.
struct Applied {
  uint32_t generation = 0;
  uint32_t slot = 0;
  size_t prefixes = 0, identities = 0, allow = 0, deny = 0, locals = 0, policies = 0, edge = 0, gtp = 0, mods = 0;
};

// The addresses of every interface in a network namespace (by name under
// /run/netns, or an absolute path), read from a thread that enters it.
// Loopback and link-local addresses are left out.
Result<std::vector<Cidr>> netns_addresses(const std::string& netns);

// Writes `c` into the slot not in use and flips pol_cfg to it (written
// last). The maps come from `fd_of(map name)`. Used by configure() and by
// the tests and benchmarks, which drive a loaded object directly.
Result<Applied> write_policy(const std::function<Result<int>(const std::string&)>& fd_of, const Compiled& c,
                             uint32_t sample_rate, uint32_t sample_burst);

class PolicyModule : public core::Module {
 public:
  std::string name() const override { return "policy"; }
  std::vector<core::FeatureNeed> needs() const override;
  Result<std::vector<core::LoadRequest>> plan(const nlohmann::json& config, const core::ModuleContext& ctx) override;
  Result<void> configure(const core::ProgramManager& pm) override;
  std::vector<core::EventSource> event_sources() const override;
  Result<std::vector<core::MetricFamily>> collect(const core::ProgramManager& pm) override;
  Result<nlohmann::json> snapshot(const core::ProgramManager& pm) override;

 private:
  core::ModuleContext ctx_;
  PolicyConfig cfg_;
  std::vector<Workload> workloads_;
  std::vector<Policy> policies_;
  mutable std::mutex mu_;  // guards what the scrape and event threads read below
  RuleIds ids_;
  std::map<uint32_t, std::string> identity_names_;
  Applied applied_;
};

// Metric families from summed stats (tests build them by hand).
struct StatRow {
  uint32_t rule;
  uint8_t reason, verdict, dir;
  uint64_t packets, bytes;
};
std::vector<core::MetricFamily> build_metrics(const std::vector<StatRow>& rows, const RuleIds& ids,
                                              const Applied& a, const std::string& node);
const char* reason_name(uint8_t r);

struct ModStatRow {
  uint32_t rule, action;
  uint64_t packets;
};
// Summed pol_mod_stats: packets modified by (rule, action).
Result<std::vector<ModStatRow>> read_mod_stats(const core::ProgramManager& pm);
const char* mod_action_name(uint32_t a);

}  // namespace kagami::policy
