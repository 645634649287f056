// The "transport" built-in module: per-pod and per-interface socket-level
// counters from kernel hooks (modules/transport/README.md).
//
//   per pod       packets/bytes by direction and L4 class   cgroup_skb ingress/egress
//                 TCP retransmits, resets sent/received      tcp:tcp_retransmit_skb, tcp_send_reset,
//                                                            tcp_receive_reset
//                 TCP state transitions (old -> new)         sock:inet_sock_set_state
//                 smoothed RTT histogram                     tcp:tcp_probe
//   per interface drops by reason and L4 class                skb:kfree_skb
//
// The tracepoint hooks come in two objects: tp_btf (preferred: typed
// arguments, no event record) and classic tracepoints (fallback). plan()
// picks one from the feature probe and snapshot() reports which is in use.
//
// Every series carries the node and the workload identity of the socket's
// cgroup (identity::Resolver). Series are bounded: the top_n_pods workloads
// by traffic keep their own labels, the rest are summed into a workload
// "other" series and counted in kagami_transport_folded_series.
//
// Thread safety: TransportModule is used by one agent thread at a time (the
// agent serialises plan/collect/snapshot per module).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"
#include "core/module.h"

namespace kagami::identity {
class Resolver;
}

namespace kagami::modules {

// Which tracepoint flavour the object uses.
enum class TransportHooks { TpBtf, Tracepoint };
std::string_view to_string(TransportHooks h);

struct TransportConfig {
  std::string cgroup_root = "/sys/fs/cgroup";  // cgroup v2 root; "<root>/unified" is detected
  size_t top_n_pods = 50;                      // workloads with their own series
  size_t top_n_drops = 100;                    // (workload, interface, reason, l4) drop series
  std::string hooks = "auto";                  // auto | tp_btf | tracepoint
  std::string node;  // from ModuleContext::node at plan(), not from the section
};

// Parses the module's config section. Unknown keys and bad values are errors
// naming the key ("transport.top_n_pods: must be an integer in 1..10000").
Result<TransportConfig> parse_transport_config(const nlohmann::json& section);

// Where the cgroup v2 hierarchy is: `root` itself when it is a cgroup2
// mount, "<root>/unified" in systemd's hybrid layout, else an error.
Result<std::string> cgroup2_root(const std::string& root);

// The two embedded objects (bytes of transport.bpf.o / transport_tp.bpf.o).
std::vector<uint8_t> transport_object_bytes(TransportHooks h);

// Answers "is this probed feature available?" (core::ProbeReport::has).
using FeatureCheck = std::function<bool(std::string_view feature)>;

// The hook choice and why, for the report.
struct HookChoice {
  TransportHooks hooks = TransportHooks::TpBtf;
  std::string reason;
};
// auto: tp_btf when the probe says "tp_btf" works, else classic tracepoints.
// An explicit "tp_btf" the kernel lacks is an error, not a silent fallback.
Result<HookChoice> choose_transport_hooks(const std::string& wanted, const FeatureCheck& has);

// The load request for a choice: one object, eight attach points.
core::LoadRequest transport_load_request(const HookChoice& choice, const std::string& cgroup2_root);

// Borrowed fds of the module's maps (one object's maps, either variant).
struct TransportMapFds {
  int pod_traffic = -1, pod_tcp = -1, tcp_state = -1, drops = -1;
  int other_traffic = -1, other_tcp = -1, overflow = -1, hook_runs = -1;
};

// Counters of cgroups that no longer exist, taken out of the kernel maps by
// prune_dead_cgroups() and kept here, so that the workload="other" series
// they are added to stays monotonic. Defined in transport_maps.cc.
struct TransportRetired;
TransportRetired* new_transport_retired();
void destroy_transport_retired(TransportRetired* r);  // for unique_ptr with an incomplete type
struct TransportRetiredDeleter {
  void operator()(TransportRetired* r) const { destroy_transport_retired(r); }
};
using TransportRetiredPtr = std::unique_ptr<TransportRetired, TransportRetiredDeleter>;
inline TransportRetiredPtr make_transport_retired() { return TransportRetiredPtr(new_transport_retired()); }

// Options for turning map contents into JSON / metrics.
struct TransportView {
  identity::Resolver* resolver = nullptr;  // nullptr: no workload labels
  std::string node;
  size_t top_n_pods = 50;
  size_t top_n_drops = 100;
  // Module state kept between scrapes: counts of pruned cgroups (added to
  // workload="other") and the sticky top-N membership. nullptr: stateless.
  TransportRetired* retired = nullptr;
};

// Removes the entries of cgroups that no longer exist (open_by_handle_at on
// the cgroup v2 root says ESTALE/ENOENT) from pod_traffic, pod_tcp,
// tcp_state and drops, adding their counts to `into`. Runs only when one of
// those maps is at least `min_fill` (0..1) full: until then a dead pod's
// series stays visible with its final values. Cgroup ids are never reused,
// so nothing is ever misattributed either way. Returns how many cgroups
// were pruned.
Result<size_t> prune_dead_cgroups(const TransportMapFds& fds, const std::string& cgroup2_root, double min_fill,
                                  TransportRetired& into);

// Every counter of the maps as JSON, one entry per cgroup id (not folded):
//   {"pods":[{"cgroup_id":..,"workload":{..},"traffic":{"ingress":{"tcp":{"packets":..,"bytes":..},..},..},
//             "tcp":{"retransmits":..,"resets_sent":..,"resets_received":..,
//                    "rtt":{"samples":..,"sum_us":..,"buckets":[..]}},
//             "states":[{"from":"SYN_SENT","to":"ESTABLISHED","count":..}]}],
//    "drops":[{"cgroup_id":..,"netns":..,"ifindex":..,"reason":..,"reason_name":..,"protocol":..,"count":..}],
//    "other":{"traffic":{..},"tcp":{..}}, "overflow":{"traffic":..,"tcp":..,"state":..,"drop":..},
//    "hook_runs":{"cgroup_ingress":..,..}}
// Used by snapshot() and directly by tests holding a skeleton.
Result<nlohmann::json> transport_json_from_fds(const TransportMapFds& fds, const TransportView& view);

// The metric families for the same maps, with top-N folding.
Result<std::vector<core::MetricFamily>> transport_metrics_from_fds(const TransportMapFds& fds,
                                                                   const TransportView& view);

// Name of a kernel drop reason ("NO_SOCKET"), from the running kernel's BTF
// (enum skb_drop_reason is renumbered between releases, so a table compiled
// in would lie). Unknown values come back as "reason_<n>".
std::string drop_reason_name(uint32_t reason);

class TransportModule : public core::Module {
 public:
  // `has` answers feature questions for hooks=auto; without it the module
  // takes the agent's resolution of needs() (ModuleContext::features).
  explicit TransportModule(FeatureCheck has = {});
  ~TransportModule() override;

  std::string name() const override { return "transport"; }
  std::vector<core::FeatureNeed> needs() const override;
  Result<std::vector<core::LoadRequest>> plan(const nlohmann::json& config, const core::ModuleContext& ctx) override;
  Result<std::vector<core::MetricFamily>> collect(const core::ProgramManager& pm) override;
  Result<nlohmann::json> snapshot(const core::ProgramManager& pm) override;

  // The choice of the last successful plan().
  const HookChoice& hook_choice() const { return choice_; }

 private:
  core::ModuleContext ctx_;
  struct Maps;
  Result<Maps> open_maps(const core::ProgramManager& pm) const;
  TransportView view();

  FeatureCheck has_;
  TransportConfig config_;
  HookChoice choice_;
  std::string cgroup2_root_;
  std::unique_ptr<identity::Resolver> resolver_;
  TransportRetiredPtr retired_;
  bool planned_ = false;
};

}  // namespace kagami::modules
