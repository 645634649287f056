// The policy_l7 module (README.md, docs/policy-l7.md): HTTP/1.1 L7 policy
// from CiliumNetworkPolicy rules.http, decided on the server's socket
// receive path. plan() parses the section and every policy file (an error
// names file:line:col and the policy in force stays); configure() compiles
// against the workloads and writes the half of l7_rules not in force, then
// flips l7_cfg.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "core/module.h"
#include "modules/policy/l7/l7_model.h"

namespace kagami::policy::l7 {

inline constexpr const char* kProgramName = "policy_l7";

struct L7Config {
  std::vector<std::string> files;
  std::vector<std::string> cgroups;  // extra cgroups for the sockops hook (workloads with netns:)
  uint32_t sample_rate = 100, sample_burst = 200;
};
Result<L7Config> parse_l7_config(const nlohmann::json& section);

struct Applied {
  uint32_t generation = 0, base = 0;
  size_t rules = 0, ports = 0, peers = 0;
};

// Writes `c` into the half of l7_rules not in force, the ports and peers,
// and flips l7_cfg last. Used by configure() and by the tests and the
// benchmark, which drive a loaded object directly.
Result<Applied> write_l7(const std::function<Result<int>(const std::string&)>& fd_of, const Compiled& c,
                         uint32_t sample_rate, uint32_t sample_burst);

const char* reason_name(uint8_t r);

struct StatRow {
  uint32_t rule;
  uint8_t reason, verdict;
  uint16_t port;
  uint64_t requests, bytes;
};
std::vector<core::MetricFamily> build_metrics(const std::vector<StatRow>& rows,
                                              const std::vector<std::string>& rule_names, const Applied& a,
                                              const std::string& node);

class L7Module : public core::Module {
 public:
  std::string name() const override { return kProgramName; }
  std::vector<core::FeatureNeed> needs() const override;
  Result<std::vector<core::LoadRequest>> plan(const nlohmann::json& config, const core::ModuleContext& ctx) override;
  Result<void> configure(const core::ProgramManager& pm) override;
  std::vector<core::EventSource> event_sources() const override;
  Result<std::vector<core::MetricFamily>> collect(const core::ProgramManager& pm) override;
  Result<nlohmann::json> snapshot(const core::ProgramManager& pm) override;

 private:
  core::ModuleContext ctx_;
  L7Config cfg_;
  std::vector<Workload> workloads_;
  std::vector<L7Policy> policies_;
  Compiled compiled_;
  mutable std::mutex mu_;  // guards what the scrape and event threads read below
  std::vector<std::string> rule_names_{"none"};
  std::map<uint32_t, std::string> identity_names_;
  Applied applied_;
};

}  // namespace kagami::policy::l7
