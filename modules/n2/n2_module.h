// The n2 module: NGAP/NAS-5GS on N2 (README.md). The kernel counts NGAP
// PDUs by interface, procedure code and PDU type and copies each message up
// through a ring; the Tracker (tracker.h) decodes NAS, keeps per-UE
// records and the TS 28.552 KPIs. A replay program runs beside obs in
// `kagami replay`.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/module.h"
#include "modules/n2/tracker.h"

namespace kagami::n2 {

struct N2Config {
  std::vector<std::string> interfaces;
  bool ingress = true, egress = true;
  int64_t order = 90;        // TC priority: before obs (100), which ends the filter walk
  int64_t max_ues = 65536;
  bool hash_identities = true;
  std::string key_file;      // per-node SipHash key (16 bytes); "" = random per agent run
};

Result<N2Config> parse_config(const nlohmann::json& section);
std::vector<std::string> attach_specs(const N2Config& cfg);

// The kernel's counters as the `ngap` truth section plus an `n2` section,
// read through `map_fd(name)`.
Result<nlohmann::json> read_kernel_sections(const std::function<Result<int>(const char*)>& map_fd);

class N2Module : public core::Module {
 public:
  std::string name() const override { return "n2"; }
  std::vector<core::FeatureNeed> needs() const override;
  Result<std::vector<core::LoadRequest>> plan(const nlohmann::json& config, const core::ModuleContext& ctx) override;
  std::vector<core::EventSource> event_sources() const override;
  // Withdraws n2's entries from the session directory.
  void stop() override;
  Result<std::vector<core::MetricFamily>> collect(const core::ProgramManager& pm) override;
  Result<nlohmann::json> snapshot(const core::ProgramManager& pm) override;
  bool has_replay() const override { return true; }
  Result<std::unique_ptr<core::ReplayRun>> open_replay() override;

 private:
  N2Config cfg_;
  core::ModuleContext ctx_;
  std::shared_ptr<std::mutex> mu_ = std::make_shared<std::mutex>();
  std::shared_ptr<Tracker> tracker_ = std::make_shared<Tracker>();
};

}  // namespace kagami::n2
