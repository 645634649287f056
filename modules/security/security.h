// The "security" built-in module: runtime security in the kernel
// (modules/security/README.md, docs/security.md, docs/security-policy.md).
//
//   config   modules.security: {policy, rate, burst, ring_kb, deny_cgroup, ancestry_depth, proc_cache}
//   events   kind exec|fork|exit|open|connect|... with rule, severity, actions,
//            process, ancestry, container (docs/security.md has the schema)
//   metrics  kagami_security_rule_matches_total{node,rule,action},
//            kagami_security_events_total{node,outcome}
//
// A policy is compiled into the kernel's maps as one of two generations and
// switched by one write (abi.h); an invalid policy is an error with line and
// column and the old one stays in force.
//
// Thread safety: as core::Module says; the policy install and the cgroup
// refresh take install_mu_; the decoder reads the rule names through a
// shared_ptr snapshot.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "core/module.h"
#include "modules/security/policy.h"
#include "modules/security/proc_cache.h"

namespace kagami::identity {
class Resolver;
}

namespace kagami::modules::security {

struct SecurityConfig {
  std::string policy;        // "" = the default telco policy
  uint64_t rate = 1000;      // records per second per cgroup and CPU (0 = unlimited)
  uint64_t burst = 2000;
  uint32_t ring_kb = 1024;
  std::string deny_cgroup;   // where the deny hooks attach; "" = the cgroup v2 root
  uint32_t ancestry_depth = 8;
  uint32_t proc_cache = 32768;
  std::string hooks = "auto";  // sched hooks: auto (tp_btf where the probe finds it) | tp_btf | tracepoint
  // The config's top-level `workloads:` (passed in by the agent's config
  // fold), against which namespace and pod_labels selectors resolve.
  std::vector<identity::DeclaredWorkload> workloads;
};

Result<SecurityConfig> parse_security_config(const nlohmann::json& section);

// What the decoder needs to name rules: one snapshot per generation.
struct RuleNames {
  std::vector<std::string> names, severity;
  std::vector<uint32_t> actions;
  // Exec argument patterns per rule (empty: none), decided by the decoder:
  // a record whose every rule fails them is not published.
  std::vector<std::vector<ArgPattern>> args;
};

// The rule names of both generations; the installer writes a generation's
// names before it switches to it, the decoder reads the one a record names.
struct NameTable {
  mutable std::mutex mu;
  std::shared_ptr<const RuleNames> gens[2];
  std::shared_ptr<const RuleNames> get(uint32_t gen) const {
    std::lock_guard lk(mu);
    return gens[gen & 1];
  }
};

struct DecodeContext {
  identity::Resolver* resolver = nullptr;
  ProcCache* procs = nullptr;
  std::shared_ptr<NameTable> names;
  uint32_t ancestry_depth = 8;
};

// One ring record -> the event (docs/security.md, "Event schema"); a JSON
// null when the record's only rules were argument patterns that failed
// (not an event, not a drop).
Result<nlohmann::json> decode_security_record(std::span<const uint8_t> rec, const DecodeContext& ctx);

// The load request for the object: tracepoints (alert, kill) and, when
// deny_cgroup is not "-", the cgroup hooks (deny).
Result<core::LoadRequest> security_load_request(const SecurityConfig& c, const std::string& cgroup_root,
                                                bool tp_btf = false);

class SecurityModule : public core::Module {
 public:
  SecurityModule();
  ~SecurityModule() override;
  std::string name() const override { return "security"; }
  std::vector<core::FeatureNeed> needs() const override;
  Result<std::vector<core::LoadRequest>> plan(const nlohmann::json& config, const core::ModuleContext& ctx) override;
  Result<void> configure(const core::ProgramManager& pm) override;
  Result<void> start(const core::ProgramManager& pm) override;
  void stop() override;
  std::vector<core::EventSource> event_sources() const override;
  Result<std::vector<core::MetricFamily>> collect(const core::ProgramManager& pm) override;
  Result<nlohmann::json> snapshot(const core::ProgramManager& pm) override;

  // Replaces the policy in force (YAML text): parse, check, compile, then
  // the switch. An Error leaves the policy in force untouched.
  Result<void> replace_policy(const core::ProgramManager& pm, const std::string& yaml, const std::string& origin);
  // Writes the cgroup selector masks of every cgroup that exists now.
  Result<size_t> refresh_cgroups(const core::ProgramManager& pm);

  uint32_t generation() const { return active_gen_; }
  const SecurityConfig& config() const { return config_; }
  bool tp_btf() const { return tp_btf_; }
  ProcCache& procs() { return *procs_; }

 private:
  Result<void> install_locked(const core::ProgramManager& pm, const Compiled& c);
  Result<size_t> refresh_cgroups_locked(const core::ProgramManager& pm, uint32_t gen);
  void fold_hits_locked(const core::ProgramManager& pm, uint32_t gen);

  core::ModuleContext ctx_;
  SecurityConfig config_;
  std::string cgroup_root_;
  bool tp_btf_ = false;
  std::optional<Compiled> pending_;  // from plan(), installed by configure()
  std::unique_ptr<ProcCache> procs_;
  bool seeded_ = false;

  mutable std::mutex install_mu_;
  Compiled active_;                    // guarded by install_mu_
  uint32_t active_gen_ = 0;            // guarded by install_mu_
  bool installed_ = false;             // guarded by install_mu_
  std::chrono::steady_clock::time_point last_switch_{};
  std::shared_ptr<NameTable> names_ = std::make_shared<NameTable>();
  std::vector<identity::DeclaredWorkload> workloads_;  // guarded by install_mu_
  std::map<std::pair<std::string, std::string>, uint64_t> folded_hits_;  // (rule, action) of retired gens
  std::string origin_;

  std::thread refresh_;
  std::mutex refresh_mu_;
  std::condition_variable refresh_cv_;
  bool refresh_stop_ = false;
  std::atomic<uint64_t> refreshes_{0};
};

}  // namespace kagami::modules::security
