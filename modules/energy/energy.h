// The "energy" built-in module: on-CPU time per task, cgroup, CPU, idle and
// softirq from sched_switch and softirq_entry/exit, node power from RAPL,
// hwmon or a model, and energy attributed to processes, containers and pods
// with exact conservation (docs/energy.md, modules/energy/README.md).
//
// The module is pulled: every collect()/snapshot() advances one interval
// (EnergyAccountant::advance) under a mutex, so two scrapes never split one
// interval twice and every exported counter only grows.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/fd.h"
#include "common/perf_event.h"
#include "common/result.h"
#include "core/module.h"
#include "modules/energy/attribution.h"
#include "modules/energy/power.h"

namespace kagami::identity {
class Resolver;
}

namespace kagami::modules::energy {

enum class Hooks { TpBtf, Tracepoint };
std::string_view to_string(Hooks h);

struct EnergyConfig {
  std::string hooks = "auto";               // auto | tp_btf | tracepoint
  std::string power_source = "auto";        // auto | rapl | hwmon | model
  std::string powercap_root = "/sys/class/powercap";
  std::string hwmon_root = "/sys/class/hwmon";
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string idle_policy = "node";         // node | share
  // The activity measure that splits dynamic energy (docs/energy.md, "Activity
  // measure"): auto = the counter where every online CPU can count it, else
  // cpu_time; instructions = the counter or a plan error; cpu_time = never.
  std::string activity = "auto";            // auto | cpu_time | instructions
  // The counter behind "instructions": hw_instructions in production;
  // sw_cpu_clock / sw_task_clock are for tests on machines without a PMU
  // (they exercise the same perf-array path, but count time, not work).
  std::string activity_counter = "hw_instructions";  // hw_instructions | hw_cycles | sw_cpu_clock | sw_task_clock
  size_t top_n_processes = 20;
  size_t top_n_cgroups = 100;
  bool network_attribution = true;          // use transport's per-pod and obs's per-interface packets when they run
  // TS 28.554 UPF energy efficiency: cgroup path prefixes of the UPF's
  // workloads (empty: KPI not computed). Data volume: obs's GTP-U bytes.
  std::vector<std::string> upf_cgroups;
  // The same for the control plane (docs/energy.md, "KPIs"): the AMF's
  // procedures are the NGAP procedures started on N2 (n2's initiating
  // messages), the SMF's the PFCP requests on N4 (obs).
  std::vector<std::string> amf_cgroups;
  std::vector<std::string> smf_cgroups;
  PowerModel model;
};

// A KPI input read as a cumulative kernel counter: accumulated from deltas
// so that a module reload (the counter restarts) never makes it go back.
struct KpiCounter {
  uint64_t last = 0, total = 0;
  bool seen = false;     // a first reading primes
  bool running = false;  // the source module ran at the last reading
  void update(uint64_t cur) {
    if (seen) total += cur >= last ? cur - last : cur;
    last = cur;
    seen = running = true;
  }
};



// Errors name the key ("energy.model.max_watts: ...").
Result<EnergyConfig> parse_energy_config(const nlohmann::json& section);

using FeatureCheck = std::function<bool(std::string_view feature)>;
struct HookChoice {
  Hooks hooks = Hooks::TpBtf;
  std::string reason;
};
Result<HookChoice> choose_hooks(const std::string& wanted, const FeatureCheck& has);
// `pmu`: the counter variant (reads energy_pmu at every switch and softirq).
core::LoadRequest energy_load_request(const HookChoice& c, bool pmu = false);
std::vector<uint8_t> energy_object_bytes(Hooks h, bool pmu = false);
Result<PerfEventKind> parse_counter_kind(const std::string& name);

// The activity counters, one per online CPU (perf_event_open, pinned,
// counting), and the decision whether to use them.
class ActivityCounters {
 public:
  // Opens `kind` on every online CPU. Never fails: what did not open is in
  // missing() (CPU -> reason).
  void open(PerfEventKind kind, const std::vector<int>& cpus);
  PerfEventKind kind() const { return kind_; }
  bool complete() const { return !counters_.empty() && missing_.empty(); }
  // One line: "" when complete, else the first CPU's reason and the count.
  std::string why_not() const;
  const std::map<int, PerfCounter>& counters() const { return counters_; }
  const std::map<int, std::string>& missing() const { return missing_; }
  // Writes every counter's fd into the perf array `map_fd` at its CPU.
  Result<void> fill(int map_fd) const;
  // Hotplug: CPUs online now that had no counter, or were offline at the
  // last call, get a fresh event (written to `map_fd` if >= 0); CPUs gone
  // offline are no longer required. Returns the CPUs reopened.
  std::vector<int> refresh(const std::vector<int>& online, int map_fd);
  // Records a failure that is not one CPU's (the online list unreadable).
  void note_error(std::string why) { missing_[-1] = std::move(why); }

 private:
  PerfEventKind kind_ = PerfEventKind::HwInstructions;
  std::map<int, PerfCounter> counters_;
  std::map<int, std::string> missing_;
  std::vector<int> online_;
};

// What plan() decided about the activity measure.
struct ActivityChoice {
  bool counter = false;        // the counter variant is loaded
  std::string counter_name;    // "hw_instructions", ... (the configured counter)
  std::string reason;          // why (the counter's error when it is not used)
};
// auto | cpu_time | instructions against the counters that opened.
Result<ActivityChoice> choose_activity(const EnergyConfig& c, const ActivityCounters* counters);

// One read of the kernel maps (cumulative since load).
struct ProcReading {
  uint64_t cpu_ns = 0;
  uint64_t cgroup_id = 0;
  std::string comm;
  uint64_t ctr = 0;  // activity counter (0 without one)
};
struct KernelReading {
  uint32_t cpus = 0;             // CPUs with a copy (possible CPUs)
  uint32_t online = 0;           // online CPUs at the read (0: unknown)
  uint64_t busy_ns = 0, idle_ns = 0, ksoftirqd_ns = 0, switches = 0;
  uint64_t softirq_ns[10] = {};
  std::unordered_map<uint64_t, uint64_t> cgroup_ns;  // cgroup id -> cpu ns
  std::unordered_map<uint32_t, ProcReading> procs;   // tgid -> ...
  uint64_t other_ns = 0, overflow = 0;
  // Activity counter (the counter variants; zeros otherwise).
  std::string counter;          // "" = no counter variant loaded, else its name
  std::string counter_missing;  // not "" = some online CPU has no counter (why)
  uint64_t ctr_busy = 0, ctr_idle = 0, ctr_ksoftirqd = 0, ctr_other = 0;
  uint64_t ctr_softirq[10] = {};
  std::unordered_map<uint64_t, uint64_t> cgroup_ctr;  // cgroup id -> counts
  std::vector<uint64_t> ctr_lost;                     // per CPU: slices/softirqs without a count
};

struct EnergyMapFds {
  int cpu_time = -1, cgroup = -1, proc = -1, other = -1, overflow = -1;
};
Result<KernelReading> read_kernel(const EnergyMapFds& fds);

// Accumulated energy and time of one series.
struct Acc {
  uint64_t cpu_ns = 0;
  uint64_t energy_nj = 0;
  uint64_t net_nj = 0;
  uint64_t ctr = 0;  // activity counter (instructions)
};

// The interval state: last readings and the monotonic counters built from
// them. Pure (no kernel, no clock): tests drive it with hand-made readings.
class EnergyAccountant {
 public:
  // `top_n_*`: series with their own labels (the rest fold into "other").
  EnergyAccountant(std::unique_ptr<PowerSource> power, PowerModel idle_model, IdlePolicy policy,
                   uint32_t online_cpus, size_t top_n_cgroups = 100, size_t top_n_processes = 20);

  // Advances one interval to `now_ns` (monotonic). `packets` are cumulative
  // per-cgroup packet counts from transport (empty: none). The first call
  // only primes. Returns a warning text for the interval, "" if none.
  Result<std::string> advance(const KernelReading& k, uint64_t now_ns,
                              const std::unordered_map<uint64_t, uint64_t>& packets = {});

  // Node totals (integers: workloads + idle + system + network == node).
  uint64_t node_nj() const { return node_nj_; }
  uint64_t idle_nj() const { return idle_nj_; }
  uint64_t system_nj() const { return system_nj_; }
  uint64_t network_nj() const { return network_nj_; }
  uint64_t workloads_nj() const { return workloads_nj_; }
  uint64_t node_cpu_ns() const { return node_cpu_ns_; }
  uint64_t idle_ns() const { return idle_ns_; }
  uint64_t softirq_ns(int vec) const { return softirq_ns_[vec]; }
  uint64_t ksoftirqd_ns() const { return ksoftirqd_ns_; }
  uint64_t intervals() const { return intervals_; }
  uint64_t counter_resets() const { return resets_; }
  double last_utilisation() const { return last_util_; }
  // Activity measure: what split the last interval ("cpu_time" or the
  // counter's name), intervals split by the counter, intervals that fell
  // back to CPU time although a counter was loaded, and why the last did.
  const std::string& last_activity() const { return last_activity_; }
  uint64_t counter_intervals() const { return counter_intervals_; }
  uint64_t counter_fallbacks() const { return counter_fallbacks_; }
  const std::string& last_fallback() const { return last_fallback_; }
  uint64_t node_ctr() const { return node_ctr_; }  // counts of task slices (busy)
  double last_watts() const { return last_watts_; }
  // Every cgroup seen since start, full totals (JSON, pod sums).
  const std::unordered_map<uint64_t, Acc>& cgroups() const { return cg_; }
  // Folded series (metrics): each counter only grows. A cgroup or process
  // gets its own series when a slot is free at the interval where it first
  // uses energy (largest first); its series counts from then on, earlier
  // energy stayed in "other". A process that leaves the kernel map (exited,
  // evicted) frees its slot; its series' total moves into "other".
  const std::unordered_map<uint64_t, Acc>& cgroup_series() const { return cg_shown_; }
  const Acc& cgroup_other() const { return cg_other_; }
  const std::unordered_map<uint32_t, Acc>& process_series() const { return proc_shown_; }
  const Acc& process_other() const { return proc_other_; }
  // Full totals of the processes in the kernel map now.
  const std::unordered_map<uint32_t, Acc>& procs() const { return proc_acc_; }
  const std::unordered_map<uint32_t, ProcReading>& proc_info() const { return last_.procs; }
  const PowerSource& power() const { return *power_; }
  uint64_t power_errors() const { return power_errors_; }
  const std::string& last_warning() const { return last_warning_; }

 private:
  std::unique_ptr<PowerSource> power_;
  PowerModel idle_model_;
  IdlePolicy policy_;
  uint32_t online_cpus_;
  bool primed_ = false;
  uint64_t last_ns_ = 0;
  KernelReading last_;
  std::unordered_map<uint64_t, uint64_t> last_packets_;
  std::unordered_map<uint64_t, Acc> cg_;
  std::unordered_map<uint32_t, Acc> proc_acc_;
  size_t top_cg_, top_proc_;
  std::unordered_map<uint64_t, Acc> cg_shown_;
  std::unordered_map<uint32_t, Acc> proc_shown_;
  Acc cg_other_, proc_other_;
  std::string last_warning_;
  uint64_t node_nj_ = 0, idle_nj_ = 0, system_nj_ = 0, network_nj_ = 0, workloads_nj_ = 0;
  uint64_t node_cpu_ns_ = 0, idle_ns_ = 0, ksoftirqd_ns_ = 0, softirq_ns_[10] = {};
  uint64_t intervals_ = 0, resets_ = 0, power_errors_ = 0;
  double last_util_ = 0, last_watts_ = 0;
  std::string last_activity_ = "cpu_time", last_fallback_;
  uint64_t counter_intervals_ = 0, counter_fallbacks_ = 0, node_ctr_ = 0;
};

// Labels of one cgroup (container_id, pod_uid, cgroup_path).
struct WorkloadLabels {
  std::string container_id, pod_uid, cgroup_path;
  auto operator<=>(const WorkloadLabels&) const = default;
};
using LabelFn = std::function<WorkloadLabels(uint64_t cgroup_id)>;

struct OutputOptions {
  std::string node = "unknown";
  size_t top_n_processes = 20;
  size_t top_n_cgroups = 100;
  std::string hooks = "unknown";
  std::vector<std::string> power_tried;
  // Activity: configured value, the counter (if loaded), why not (if not).
  std::string activity_config = "auto";
  std::string counter;         // "" = none loaded
  std::string counter_reason;  // why the counter is or is not used
};
// Name of the per-workload counter family: kagami_energy_instructions_total
// for hw_instructions, kagami_energy_activity_counter_total otherwise (a
// software test counter counts nanoseconds, not instructions).
std::string counter_metric_name(const std::string& counter);

// UPF data energy efficiency (TS 28.554, EE = data volume / energy), in
// bit/J; 0 when no energy was attributed yet (never NaN or infinite).
double upf_bits_per_joule(uint64_t data_bytes, uint64_t upf_energy_nj);
// Events (procedures, requests) per joule; 0 with no energy yet.
double per_joule(uint64_t count, uint64_t energy_nj);
// Sum of the energy of the cgroups whose path starts with one of `prefixes`.
uint64_t energy_of_prefixes(const EnergyAccountant& a, const LabelFn& labels,
                            const std::vector<std::string>& prefixes);

// Metric families and JSON of the accountant's state.
std::vector<core::MetricFamily> energy_metrics(const EnergyAccountant& a, const LabelFn& labels,
                                               const OutputOptions& o);
nlohmann::json energy_json(const EnergyAccountant& a, const LabelFn& labels, const OutputOptions& o);

// Per-cgroup packet weights for network softirq energy, from two sources:
// transport's per-cgroup socket packets and obs's per-interface packets,
// the latter given to the cgroup that owns the interface (the pod whose
// network namespace holds its peer). Each interval, a cgroup's weight is the
// larger of its two deltas (both count the same packets where both see
// them: a socket's packets cross its pod's interface; obs alone sees
// packets no socket of the pod reads, e.g. forwarded ones). `cumulative()`
// is what EnergyAccountant::advance takes.
class NetworkWeights {
 public:
  // Cumulative per-cgroup packets from transport (counters of the kernel map).
  void transport(const std::unordered_map<uint64_t, uint64_t>& cum);
  // Cumulative packets per obs interface slot and the owning cgroup of each
  // slot (0: no owner known; its packets stay node-level).
  void obs(const std::unordered_map<uint32_t, uint64_t>& slot_cum,
           const std::unordered_map<uint32_t, uint64_t>& slot_owner);
  // Folds this interval's deltas into the cumulative counts and clears them.
  const std::unordered_map<uint64_t, uint64_t>& commit();
  const std::unordered_map<uint64_t, uint64_t>& cumulative() const { return cum_; }
  bool saw_transport() const { return saw_transport_; }
  bool saw_obs() const { return saw_obs_; }

 private:
  std::unordered_map<uint64_t, uint64_t> trn_last_, trn_delta_;
  std::unordered_map<uint32_t, uint64_t> obs_last_;
  std::unordered_map<uint64_t, uint64_t> obs_delta_;
  std::unordered_map<uint64_t, uint64_t> cum_;
  bool saw_transport_ = false, saw_obs_ = false;
};

class EnergyModule : public core::Module {
 public:
  explicit EnergyModule(FeatureCheck has = {});
  ~EnergyModule() override;
  std::string name() const override { return "energy"; }
  std::vector<core::FeatureNeed> needs() const override;
  Result<std::vector<core::LoadRequest>> plan(const nlohmann::json& config, const core::ModuleContext& ctx) override;
  Result<std::vector<core::MetricFamily>> collect(const core::ProgramManager& pm) override;
  Result<nlohmann::json> snapshot(const core::ProgramManager& pm) override;
  Result<void> configure(const core::ProgramManager& pm) override;

 private:
  OutputOptions output_options() const;
  Result<void> advance_locked(const core::ProgramManager& pm);
  WorkloadLabels labels_of(uint64_t cgroup_id);

  std::mutex mu_;
  FeatureCheck has_;
  core::ModuleContext ctx_;
  EnergyConfig config_;
  HookChoice choice_;
  ActivityChoice activity_;
  // The counters (kept across plans while the counter kind is unchanged)
  // and our own fd of energy_pmu: entries written through a map file are
  // cleared when that file is released, so it stays open as long as the
  // counters are in the array.
  std::unique_ptr<ActivityCounters> counters_;
  Fd pmu_map_;
  std::vector<std::string> power_tried_;
  std::unique_ptr<EnergyAccountant> acc_;
  std::unique_ptr<identity::Resolver> resolver_;
  bool planned_ = false;
  // KPI inputs: obs's GTP-U payload bytes (UPF), n2's NGAP procedures
  // (AMF), obs's PFCP requests (SMF).
  KpiCounter upf_, amf_, smf_;
  void read_kpi_inputs(const core::ProgramManager& pm);
  // Network weights (docs/energy.md, "Network energy"): per-interval packet
  // deltas from transport (per cgroup) and obs (per interface, given to the
  // cgroup of the interface's owner), merged per cgroup into one cumulative
  // count for the accountant.
  NetworkWeights net_;
  // Owner of each obs interface slot, resolved through the identity service
  // (a /proc scan) when the slot's interface changes and every 30 s.
  struct SlotOwner {
    uint32_t ifindex = 0;
    uint64_t cgroup_id = 0;
    uint64_t resolved_ns = 0;
  };
  std::unordered_map<uint32_t, SlotOwner> obs_owners_;
  Result<void> read_obs_packets(const core::ProgramManager& pm, uint64_t now_ns);
};

}  // namespace kagami::modules::energy
