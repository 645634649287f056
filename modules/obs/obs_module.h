// ObsModule ("obs"): packet observability: L2-L4 packet counters per interface and 5G user plane (GTP-U, PFCP) and SCTP.
//
// Config section (modules.obs in the agent YAML):
//   interfaces:   [eth0, ...]          required, at least one
//   direction:    both|ingress|egress  default both
//   xdp:          false                true: ingress through XDP instead of TC
//   top_n_teids:  100                  per-TEID series exported (0..10000)
// The node label comes from the agent (ModuleContext::node); xdp: true falls
// back to TC ingress where the kernel has no XDP (ctx.features).
// configure() also finds who owns each interface (identity/netns.h): a
// pod's host-side veth gives its series the pod's pod_uid label.
// At most OBS_IF_SLOTS - 1 (15) interfaces: each gets an interface slot,
// its position in the list + 1, that labels its series (configure()).
// Unknown keys are an error naming the key, so a typo never silently
// disables something.
//
// plan() yields one LoadRequest "obs" (the embedded obs.bpf.o) attached to
// every interface/direction asked for; collect() turns the maps into bounded
// metric families (modules/obs/README.md lists them); snapshot() is the same
// JSON as ObsObject::counters().
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/module.h"
#include "core/session_directory.h"
#include "modules/obs/snapshot.h"

namespace kagami::obs {

struct ObsConfig {
  std::vector<std::string> interfaces;
  bool ingress = true;
  bool egress = true;
  bool xdp = false;
  uint32_t top_n_teids = 100;
  std::string node;  // from ModuleContext::node at plan(), not from the section
};

// Parses and validates a config section; the Error names the field.
Result<ObsConfig> parse_config(const nlohmann::json& section);

// The attach points for a config, in order ("tc:eth0:ingress@obs_tc_ingress").
std::vector<std::string> attach_specs(const ObsConfig& cfg);

// The interface label of a slot: the configured interface, "other" for
// slot 0 (an interface obs was not configured with).
std::string slot_name(const ObsConfig& cfg, uint32_t slot);

// Interface facts collect() needs; swapped in unit tests that run without
// the interfaces (the real one reads sysfs).
struct IfaceStats {
  // The pod UID owning each interface slot ("" = none, or not known):
  // every series with an interface label also gets pod_uid.
  std::vector<std::string> pod_uid;
  // rx_dropped / tx_dropped of an interface; false if it has none.
  std::function<bool(const std::string& ifname, uint64_t& rx, uint64_t& tx)> drops;
};
IfaceStats system_iface_stats();

// Snapshot -> metric families, with every label set bounded: top-N TEIDs by
// packets plus one "other" series, and a gauge of how many were folded.
// With `sessions`, each per-TEID series also carries the labels the
// directory holds for its TEID (n2's session: supi_hash, pdu_session_id,
// seid; only those known, only when unambiguous): the label set per TEID
// stays one, so the series count stays bounded by top_n_teids.
std::vector<core::MetricFamily> build_metrics(const ObsSnapshot& s, const ObsConfig& cfg,
                                              const IfaceStats& ifs,
                                              const core::SessionDirectory* sessions = nullptr);

// The session labels of every TEID obs counted (replay's `gtpu_sessions`
// section): {"0x%08x": {"packets": n, label: value...}} for the TEIDs the
// directory labels, plus how many it could not (unknown or ambiguous).
nlohmann::json teid_session_labels(const ObsSnapshot& s, const core::SessionDirectory& sessions);

class ObsModule : public core::Module {
 public:
  static constexpr const char* kProgramName = "obs";

  std::string name() const override { return "obs"; }
  std::vector<core::FeatureNeed> needs() const override;
  Result<std::vector<core::LoadRequest>> plan(const nlohmann::json& config, const core::ModuleContext& ctx) override;
  // Writes obs_ifslot: each configured interface's ifindex -> its slot.
  Result<void> configure(const core::ProgramManager& pm) override;
  Result<std::vector<core::MetricFamily>> collect(const core::ProgramManager& pm) override;
  Result<nlohmann::json> snapshot(const core::ProgramManager& pm) override;
  // obs_replay (ObsObject in replay mode): sections gtpu, pfcp, sctp,
  // packets, malformed, counters (docs/replay.md).
  bool has_replay() const override { return true; }
  Result<std::unique_ptr<core::ReplayRun>> open_replay() override;

 private:
  core::ModuleContext ctx_;
  Result<ObsSnapshot> read(const core::ProgramManager& pm) const;
  ObsConfig cfg_;
  // What configure() found for each slot (index = slot): who owns it.
  struct SlotOwner {
    uint32_t ifindex = 0;
    std::string pod_uid, container, runtime;
  };
  std::vector<SlotOwner> owners_;
};

}  // namespace kagami::obs
