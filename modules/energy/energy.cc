// EnergyModule: config, hook choice, kernel reads, interval accounting and
// output. See energy.h and docs/energy.md.
#include "modules/energy/energy.h"

#include "common/fs.h"

#include <fcntl.h>
#include <linux/types.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include <cstring>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bpf/map_view.h"
#include "core/config_section.h"
#include "identity/identity.h"
#include "identity/netns.h"
#include "modules/energy/abi.h"
#include "kagami/abi/ngap.h"
#include "modules/n2/abi.h"         // read-only: NGAP procedures for the AMF KPI
#include "modules/obs/abi.h"        // read-only: GTP-U volume (UPF KPI), PFCP requests (SMF KPI)
#include "modules/transport/abi.h"  // read-only: transport's per-pod packets, size-checked by MapView
#include "energy.skel.h"
#include "energy_tp.skel.h"
#include "energy_pmu.skel.h"
#include "energy_tp_pmu.skel.h"

namespace kagami::modules::energy {
namespace {

// Counter delta that treats a decrease as a restart from 0 (an LRU entry
// evicted and re-created, a reload of the programs).
uint64_t delta(uint64_t cur, uint64_t prev, uint64_t& resets) {
  if (cur >= prev) return cur - prev;
  resets++;
  return cur;
}

uint32_t count_sockets() {
  std::set<std::string> ids;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/sys/devices/system/cpu", ec)) {
    std::ifstream f(e.path() / "topology/physical_package_id");
    std::string id;
    if (f >> id) ids.insert(id);
  }
  return ids.empty() ? 1 : static_cast<uint32_t>(ids.size());
}

std::string hex_id(uint64_t v) { return std::to_string(v); }

// 1: the cgroup exists, 0: it is gone, -1: cannot tell (no
// CAP_DAC_READ_SEARCH, kernfs not exportable). A cgroup v2 id is a kernfs
// file handle (same trick as the identity service and transport).
int cgroup_alive(int root_fd, uint64_t id) { return fs::cgroup_alive(root_fd, id); }

}  // namespace

std::string_view to_string(Hooks h) { return h == Hooks::TpBtf ? "tp_btf" : "tracepoint"; }

// ---- config -------------------------------------------------------------------

Result<EnergyConfig> parse_energy_config(const nlohmann::json& section) {
  EnergyConfig c;
  core::ConfigSection s("energy", section);
  KAGAMI_TRY(s.allow({"hooks", "power_source", "powercap_root", "hwmon_root", "cgroup_root", "idle_policy",
                      "top_n_processes", "top_n_cgroups", "network_attribution", "upf_cgroups", "amf_cgroups", "smf_cgroups", "model",
                      "activity", "activity_counter"}));
  KAGAMI_TRY(s.choice("activity", c.activity, {"auto", "cpu_time", "instructions"}));
  KAGAMI_TRY(s.choice("activity_counter", c.activity_counter, {"hw_instructions", "hw_cycles", "sw_cpu_clock", "sw_task_clock"}));
  KAGAMI_TRY(s.strings("upf_cgroups", c.upf_cgroups, core::Need::Optional, 100));
  KAGAMI_TRY(s.strings("amf_cgroups", c.amf_cgroups, core::Need::Optional, 100));
  KAGAMI_TRY(s.strings("smf_cgroups", c.smf_cgroups, core::Need::Optional, 100));
  KAGAMI_TRY(s.choice("hooks", c.hooks, {"auto", "tp_btf", "tracepoint"}));
  KAGAMI_TRY(s.choice("power_source", c.power_source, {"auto", "rapl", "hwmon", "model"}));
  KAGAMI_TRY(s.path("powercap_root", c.powercap_root));
  KAGAMI_TRY(s.path("hwmon_root", c.hwmon_root));
  KAGAMI_TRY(s.path("cgroup_root", c.cgroup_root));
  KAGAMI_TRY(s.choice("idle_policy", c.idle_policy, {"node", "share"}));
  KAGAMI_TRY(s.integer("top_n_processes", c.top_n_processes, 0, 1000));
  KAGAMI_TRY(s.integer("top_n_cgroups", c.top_n_cgroups, 1, 10000));
  KAGAMI_TRY(s.boolean("network_attribution", c.network_attribution));
  if (s.has("model")) {
    const auto& m = s.raw("model");
    if (!m.is_object() && !m.is_null()) return s.error("model", "must be a mapping");
    core::ConfigSection ms("energy.model", m);
    KAGAMI_TRY(ms.allow({"per", "idle_watts", "max_watts", "curve", "units", "error_ratio"}));
    KAGAMI_TRY(ms.choice("per", c.model.per, {"vcpu", "socket", "node"}));
    // Wide ranges here; PowerModel::validate() says what is impossible.
    KAGAMI_TRY(ms.number("idle_watts", c.model.idle_watts, -1e12, 1e12));
    KAGAMI_TRY(ms.number("max_watts", c.model.max_watts, -1e12, 1e12));
    KAGAMI_TRY(ms.integer("units", c.model.units, 0, 100000));
    KAGAMI_TRY(ms.number("error_ratio", c.model.error_ratio, 0, 10));
    if (ms.has("curve")) {
      const auto& cv = ms.raw("curve");
      if (!cv.is_array()) return ms.error("curve", "must be a list of numbers");
      c.model.curve.clear();
      for (const auto& x : cv) {
        if (!x.is_number()) return ms.error("curve", "must be a list of numbers (got " + x.dump() + ")");
        c.model.curve.push_back(x.get<double>());
      }
    }
  }
  KAGAMI_TRY(c.model.validate());
  return c;
}

Result<HookChoice> choose_hooks(const std::string& wanted, const FeatureCheck& has) {
  if (wanted == "tracepoint") return HookChoice{Hooks::Tracepoint, "configured: hooks=tracepoint"};
  const bool btf = has && has("tp_btf");
  if (wanted == "tp_btf") {
    if (!btf) return make_error("energy.hooks: tp_btf requested but this kernel refuses tp_btf programs");
    return HookChoice{Hooks::TpBtf, "configured: hooks=tp_btf"};
  }
  if (btf) return HookChoice{Hooks::TpBtf, "auto: tp_btf available"};
  return HookChoice{Hooks::Tracepoint, "auto: tp_btf unavailable, classic tracepoints"};
}

Result<PerfEventKind> parse_counter_kind(const std::string& name) {
  if (name == "hw_instructions") return PerfEventKind::HwInstructions;
  if (name == "hw_cycles") return PerfEventKind::HwCycles;
  if (name == "sw_cpu_clock") return PerfEventKind::SwCpuClock;
  if (name == "sw_task_clock") return PerfEventKind::SwTaskClock;
  return make_error("energy.activity_counter: must be one of hw_instructions, hw_cycles, sw_cpu_clock, sw_task_clock (got {})",
                    name);
}

void ActivityCounters::open(PerfEventKind kind, const std::vector<int>& cpus) {
  kind_ = kind;
  counters_.clear();
  missing_.clear();
  online_ = cpus;
  for (int cpu : cpus) {
    auto c = PerfCounter::open_on_cpu(kind, cpu);
    if (c)
      counters_.emplace(cpu, std::move(*c));
    else
      missing_[cpu] = c.error().message;
  }
}

std::string ActivityCounters::why_not() const {
  if (missing_.empty()) return counters_.empty() ? "no online CPU" : "";
  std::string s = missing_.begin()->second;
  if (missing_.size() > 1) s += fmt::format(" (and {} more CPUs)", missing_.size() - 1);
  return s;
}

Result<void> ActivityCounters::fill(int map_fd) const {
  for (const auto& [cpu, c] : counters_) {
    const uint32_t key = static_cast<uint32_t>(cpu);
    const uint32_t fd = static_cast<uint32_t>(c.fd());
    if (bpf_map_update_elem(map_fd, &key, &fd, BPF_ANY) != 0)
      return errno_error(errno, "energy: writing the {} counter of CPU {} into {}", to_string(kind_), cpu,
                         ENERGY_MAP_PMU);
  }
  return ok();
}

std::vector<int> ActivityCounters::refresh(const std::vector<int>& online, int map_fd) {
  std::vector<int> reopened;
  const std::set<int> before(online_.begin(), online_.end());
  for (int cpu : online) {
    // A CPU that was offline at the last look gets a fresh event even if it
    // had one: what happens to a per-CPU event across hotplug varies by
    // kernel version, a new one is certain. (BPF sees its count restart and
    // counts the slice as lost.)
    if (counters_.count(cpu) && before.count(cpu)) continue;
    auto c = PerfCounter::open_on_cpu(kind_, cpu);
    reopened.push_back(cpu);
    if (!c) {
      counters_.erase(cpu);
      missing_[cpu] = c.error().message;
      continue;
    }
    missing_.erase(cpu);
    if (map_fd >= 0) {
      const uint32_t key = static_cast<uint32_t>(cpu), fd = static_cast<uint32_t>(c->fd());
      if (bpf_map_update_elem(map_fd, &key, &fd, BPF_ANY) != 0) {
        missing_[cpu] = fmt::format("writing the counter of CPU {} into {}: {}", cpu, ENERGY_MAP_PMU,
                                    std::strerror(errno));
        continue;
      }
    }
    counters_.insert_or_assign(cpu, std::move(*c));
  }
  // CPUs offline now are not required (they do not switch).
  const std::set<int> now(online.begin(), online.end());
  for (auto it = missing_.begin(); it != missing_.end();) it = now.count(it->first) ? std::next(it) : missing_.erase(it);
  online_ = online;
  return reopened;
}

Result<ActivityChoice> choose_activity(const EnergyConfig& c, const ActivityCounters* counters) {
  ActivityChoice a;
  a.counter_name = c.activity_counter;
  if (c.activity == "cpu_time") {
    a.reason = "configured: activity=cpu_time";
    return a;
  }
  const std::string why = counters ? counters->why_not() : "counters not opened";
  if (why.empty()) {
    a.counter = true;
    a.reason = (c.activity == "auto" ? "auto: " : "configured: ") + c.activity_counter + " counted on every online CPU";
    return a;
  }
  if (c.activity == "instructions")
    return make_error("energy.activity: instructions needs the {} counter on every online CPU: {} (use activity: auto "
                      "to fall back to CPU time)",
                      c.activity_counter, why);
  a.reason = "auto: " + c.activity_counter + " unavailable, CPU time used: " + why;
  return a;
}

std::string counter_metric_name(const std::string& counter) {
  if (counter == "hw_instructions") return "kagami_energy_instructions_total";
  if (counter == "hw_cycles") return "kagami_energy_cycles_total";
  return "kagami_energy_activity_counter_total";
}

std::vector<uint8_t> energy_object_bytes(Hooks h, bool pmu) {
  size_t n = 0;
  const void* p = h == Hooks::TpBtf ? (pmu ? energy_pmu_bpf__elf_bytes(&n) : energy_bpf__elf_bytes(&n))
                                    : (pmu ? energy_tp_pmu_bpf__elf_bytes(&n) : energy_tp_bpf__elf_bytes(&n));
  const auto* b = static_cast<const uint8_t*>(p);
  return std::vector<uint8_t>(b, b + n);
}

core::LoadRequest energy_load_request(const HookChoice& c, bool pmu) {
  core::LoadRequest req;
  req.name = "energy";
  req.builtin = true;
  req.source.bytes = energy_object_bytes(c.hooks, pmu);
  req.source.label = std::string("builtin:") + (c.hooks == Hooks::TpBtf ? "energy" : "energy_tp") +
                     (pmu ? "_pmu" : "") + ".bpf.o";
  const bool btf = c.hooks == Hooks::TpBtf;
  // Counters restart when an upgrade changes these maps' layouts (the
  // accountant takes a counter that went backwards as a restart); the
  // names of maps that a later version no longer has are not listed.
  for (const char* m : {ENERGY_MAP_CPU_TIME, ENERGY_MAP_CGROUP, ENERGY_MAP_PROC, ENERGY_MAP_OTHER})
    req.migrations.push_back({m, core::MapMigration::Rule::Reset});
  struct Tp {
    const char *cat, *ev, *prog;
  };
  static constexpr Tp kTps[] = {{"sched", "sched_switch", "energy_sched_switch"},
                                {"irq", "softirq_entry", "energy_softirq_entry"},
                                {"irq", "softirq_exit", "energy_softirq_exit"}};
  for (const auto& t : kTps) {
    core::AttachPoint a;
    a.kind = btf ? core::AttachPoint::Kind::TpBtf : core::AttachPoint::Kind::Tracepoint;
    a.target = btf ? std::string(t.ev) : std::string(t.cat) + "/" + t.ev;
    a.program = t.prog;
    req.attach.push_back(a);
  }
  return req;
}

// ---- kernel reads -------------------------------------------------------------

Result<KernelReading> read_kernel(const EnergyMapFds& fds) {
  KernelReading k;
  auto ct = bpf::MapView<uint32_t, energy_cpu_time>::open(fds.cpu_time, ENERGY_MAP_CPU_TIME);
  if (!ct) return ct.error();
  KAGAMI_TRY(ct->for_each_index(1, [&](uint32_t, const energy_cpu_time& v) {
    k.cpus++;
    k.ctr_busy += v.ctr_busy;
    k.ctr_idle += v.ctr_idle;
    k.ctr_ksoftirqd += v.ctr_ksoftirqd;
    for (int i = 0; i < ENERGY_SOFTIRQ_MAX; i++) k.ctr_softirq[i] += v.ctr_softirq[i];
    k.ctr_lost.push_back(v.ctr_lost);  // one copy per possible CPU, in CPU order
    k.busy_ns += v.busy_ns;
    k.idle_ns += v.idle_ns;
    k.ksoftirqd_ns += v.ksoftirqd_ns;
    k.switches += v.switches;
    for (int i = 0; i < ENERGY_SOFTIRQ_MAX; i++) k.softirq_ns[i] += v.softirq_ns[i];
  }));
  auto cg = bpf::MapView<energy_cg_key, energy_cg_time>::open(fds.cgroup, ENERGY_MAP_CGROUP);
  if (!cg) return cg.error();
  auto n = cg->for_each_summed(
      [&](const energy_cg_key& key, const energy_cg_time& v) {
        k.cgroup_ns[key.cgroup_id] += v.cpu_ns;
        if (v.ctr) k.cgroup_ctr[key.cgroup_id] += v.ctr;
      });
  if (!n) return n.error();
  auto pr = bpf::MapView<energy_proc_key, energy_proc_time>::open(fds.proc, ENERGY_MAP_PROC);
  if (!pr) return pr.error();
  auto m = pr->for_each([&](const energy_proc_key& key, const energy_proc_time& v) {
    auto& p = k.procs[key.tgid];
    p.cpu_ns = v.cpu_ns;
    p.ctr = v.ctr;
    p.cgroup_id = v.cgroup_id;
    p.comm.assign(v.comm, strnlen(v.comm, sizeof(v.comm)));
  });
  if (!m) return m.error();
  auto ot = bpf::MapView<uint32_t, energy_cg_time>::open(fds.other, ENERGY_MAP_OTHER);
  if (!ot) return ot.error();
  KAGAMI_TRY(ot->for_each_index(1, [&](uint32_t, const energy_cg_time& v) {
    k.other_ns += v.cpu_ns;
    k.ctr_other += v.ctr;
  }));
  auto ov = bpf::MapView<uint32_t, uint64_t>::open(fds.overflow, ENERGY_MAP_OVERFLOW);
  if (!ov) return ov.error();
  KAGAMI_TRY(ov->for_each_index(1, [&](uint32_t, const uint64_t& v) { k.overflow += v; }));
  long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  k.online = online > 0 ? static_cast<uint32_t>(online) : 0;
  return k;
}

// ---- accountant ---------------------------------------------------------------

EnergyAccountant::EnergyAccountant(std::unique_ptr<PowerSource> power, PowerModel idle_model, IdlePolicy policy,
                                   uint32_t online_cpus, size_t top_n_cgroups, size_t top_n_processes)
    : power_(std::move(power)),
      idle_model_(std::move(idle_model)),
      policy_(policy),
      online_cpus_(online_cpus ? online_cpus : 1),
      top_cg_(top_n_cgroups),
      top_proc_(top_n_processes) {}

Result<std::string> EnergyAccountant::advance(const KernelReading& k, uint64_t now_ns,
                                              const std::unordered_map<uint64_t, uint64_t>& packets) {
  if (!primed_ || now_ns <= last_ns_) {
    const bool backwards = primed_;
    if (!primed_) {
      auto s = power_->sample(0, 0);  // primes counters; the energy before start is not ours
      if (!s) power_errors_++;
      last_ = k;
      last_packets_ = packets;
      last_ns_ = now_ns;
      primed_ = true;
    }
    return std::string(backwards ? "clock did not advance: interval skipped" : "");
  }
  std::string warn;
  const uint64_t dt = now_ns - last_ns_;
  uint64_t resets = 0;
  IntervalInput in;
  in.idle_policy = policy_;
  const uint64_t busy = delta(k.busy_ns, last_.busy_ns, resets);
  const uint64_t idle_ns = delta(k.idle_ns, last_.idle_ns, resets);
  in.ksoftirqd_ns = delta(k.ksoftirqd_ns, last_.ksoftirqd_ns, resets);
  uint64_t sirq[10];
  uint64_t sirq_all = 0;
  for (int i = 0; i < 10; i++) {
    sirq[i] = delta(k.softirq_ns[i], last_.softirq_ns[i], resets);
    sirq_all += sirq[i];
  }
  in.softirq_net_ns = sirq[ENERGY_SOFTIRQ_NET_RX] + sirq[ENERGY_SOFTIRQ_NET_TX];
  in.softirq_other_ns = sirq_all - in.softirq_net_ns;
  in.other_busy_ns = delta(k.other_ns, last_.other_ns, resets);
  for (const auto& [id, ns] : k.cgroup_ns) {
    auto it = last_.cgroup_ns.find(id);
    const uint64_t d = it == last_.cgroup_ns.end() ? ns : delta(ns, it->second, resets);
    if (d) in.workload_ns[id] = d;
  }
  // Activity counter: used for this interval only when the counter variant
  // was loaded at both readings, every online CPU had an event, and no CPU
  // lost a count in between; otherwise CPU time, counted and explained.
  uint64_t ctr_busy = 0;
  std::unordered_map<uint64_t, uint64_t> cg_ctr;
  if (!k.counter.empty()) {
    uint64_t r2 = 0;  // counter restarts are not kernel counter restarts of the time view
    ctr_busy = delta(k.ctr_busy, last_.ctr_busy, r2);
    in.ksoftirqd_ctr = delta(k.ctr_ksoftirqd, last_.ctr_ksoftirqd, r2);
    uint64_t sc[10], sc_all = 0;
    for (int i = 0; i < 10; i++) {
      sc[i] = delta(k.ctr_softirq[i], last_.ctr_softirq[i], r2);
      sc_all += sc[i];
    }
    in.softirq_net_ctr = sc[ENERGY_SOFTIRQ_NET_RX] + sc[ENERGY_SOFTIRQ_NET_TX];
    in.softirq_other_ctr = sc_all - in.softirq_net_ctr;
    in.other_busy_ctr = delta(k.ctr_other, last_.ctr_other, r2);
    for (const auto& [id, c] : k.cgroup_ctr) {
      auto it = last_.cgroup_ctr.find(id);
      const uint64_t d = it == last_.cgroup_ctr.end() ? c : delta(c, it->second, r2);
      if (d) cg_ctr[id] = d;
    }
    std::string why;
    if (last_.counter != k.counter) {
      why = "the counter was loaded during the interval";
    } else if (!k.counter_missing.empty()) {
      why = "not every online CPU has a counter: " + k.counter_missing;
    } else {
      for (size_t c = 0; c < k.ctr_lost.size() && why.empty(); c++) {
        const uint64_t prev = c < last_.ctr_lost.size() ? last_.ctr_lost[c] : 0;
        if (k.ctr_lost[c] != prev)
          why = fmt::format("CPU {}: {} slices or softirqs without a counter reading (failed read, restarted or "
                            "stopped event)",
                            c, k.ctr_lost[c] > prev ? k.ctr_lost[c] - prev : k.ctr_lost[c]);
      }
    }
    if (why.empty() && r2) why = "counter values went backwards (reload)";
    uint64_t ctr_act = in.softirq_net_ctr + in.softirq_other_ctr + in.ksoftirqd_ctr + in.other_busy_ctr;
    for (const auto& [id, c] : cg_ctr) ctr_act += c;
    if (why.empty() && ctr_act == 0 && busy + sirq_all > 0) why = "the counter counted nothing while CPUs were busy";
    if (why.empty()) {
      in.by_counter = true;
      in.workload_ctr = cg_ctr;
      counter_intervals_++;
      last_activity_ = k.counter;
    } else {
      counter_fallbacks_++;
      last_fallback_ = why;
      last_activity_ = "cpu_time";
      warn = k.counter + " not used for this interval, CPU time instead: " + why;
    }
    node_ctr_ += ctr_busy;
  } else {
    last_activity_ = "cpu_time";
  }
  for (const auto& [id, p] : packets) {
    auto it = last_packets_.find(id);
    const uint64_t d = it == last_packets_.end() ? p : delta(p, it->second, resets);
    if (d) in.net_packets[id] = d;
  }
  // Utilisation for the model: task and softirq time over the CPU time the
  // online CPUs had; clamped (a CPU that was offline brings back a long
  // first slice of idle, never counted in busy).
  const uint32_t cpus = k.online ? k.online : online_cpus_;
  double u = static_cast<double>(busy + sirq_all) / (static_cast<double>(dt) * cpus);
  if (!(u >= 0)) u = 0;
  if (u > 1) u = 1;
  last_util_ = u;

  auto s = power_->sample(dt, u);
  uint64_t node = 0;
  if (!s) {
    power_errors_++;
    warn = (warn.empty() ? "" : warn + "; ") + "power source " + power_->kind() + ": " + s.error().message +
           "; model used for this interval";
    auto m = make_model_source(idle_model_);
    node = m->sample(dt, u)->energy_nj;
  } else {
    node = s->energy_nj;
  }
  in.node_nj = node;
  in.idle_nj = static_cast<uint64_t>(std::llround(idle_model_.idle_node_watts() * static_cast<double>(dt)));
  if (in.idle_nj > node) in.idle_nj = node;
  last_watts_ = static_cast<double>(node) / static_cast<double>(dt);

  IntervalResult r = attribute(in);
  // Node totals.
  node_nj_ += r.node_nj;
  idle_nj_ += r.idle_nj;
  system_nj_ += r.system_nj;
  network_nj_ += r.network_nj;
  uint64_t wl = 0;
  for (const auto& [id, e] : r.workload_nj) wl += e;
  workloads_nj_ += wl;
  node_cpu_ns_ += busy;
  idle_ns_ += idle_ns;
  ksoftirqd_ns_ += in.ksoftirqd_ns;
  for (int i = 0; i < 10; i++) softirq_ns_[i] += sirq[i];

  // Per cgroup: full totals and folded series.
  std::set<uint64_t> touched;
  for (const auto& [id, ns] : in.workload_ns) touched.insert(id);
  for (const auto& [id, c] : cg_ctr) touched.insert(id);
  for (const auto& [id, e] : r.workload_nj) touched.insert(id);
  std::vector<std::pair<uint64_t, Acc>> fresh;
  for (uint64_t id : touched) {
    Acc d;
    auto w = in.workload_ns.find(id);
    d.cpu_ns = w == in.workload_ns.end() ? 0 : w->second;
    auto e = r.workload_nj.find(id);
    d.energy_nj = e == r.workload_nj.end() ? 0 : e->second;
    auto n = r.workload_net_nj.find(id);
    d.net_nj = n == r.workload_net_nj.end() ? 0 : n->second;
    auto c = cg_ctr.find(id);
    d.ctr = c == cg_ctr.end() ? 0 : c->second;
    auto& t = cg_[id];
    t.cpu_ns += d.cpu_ns;
    t.energy_nj += d.energy_nj;
    t.net_nj += d.net_nj;
    t.ctr += d.ctr;
    auto sh = cg_shown_.find(id);
    if (sh != cg_shown_.end()) {
      sh->second.cpu_ns += d.cpu_ns;
      sh->second.energy_nj += d.energy_nj;
      sh->second.net_nj += d.net_nj;
      sh->second.ctr += d.ctr;
    } else {
      fresh.push_back({id, d});
    }
  }
  std::sort(fresh.begin(), fresh.end(), [](const auto& a, const auto& b) {
    return a.second.energy_nj != b.second.energy_nj ? a.second.energy_nj > b.second.energy_nj
                                                    : a.second.cpu_ns > b.second.cpu_ns;
  });
  for (const auto& [id, d] : fresh) {
    // A new series starts with this interval (earlier energy, if any, is in
    // other already); see cgroup_series().
    Acc& dst = cg_shown_.size() < top_cg_ ? cg_shown_[id] : cg_other_;
    dst.cpu_ns += d.cpu_ns;
    dst.energy_nj += d.energy_nj;
    dst.net_nj += d.net_nj;
    dst.ctr += d.ctr;
  }

  // Per process: a second view of the same dynamic energy (not added to
  // the node balance: cgroups already hold it).
  const uint64_t idle_total = in.idle_nj;
  const uint64_t dynamic = node - idle_total;
  uint64_t work_ns = 0;
  for (const auto& [id, ns] : in.workload_ns) work_ns += ns;
  std::vector<std::pair<uint32_t, Acc>> pfresh;
  for (const auto& [tgid, p] : k.procs) {
    auto it = last_.procs.find(tgid);
    const uint64_t d = it == last_.procs.end() ? p.cpu_ns : delta(p.cpu_ns, it->second.cpu_ns, resets);
    uint64_t r3 = 0;
    const uint64_t dc = it == last_.procs.end() ? p.ctr : delta(p.ctr, it->second.ctr, r3);
    Acc a;
    a.cpu_ns = d;
    a.ctr = dc;
    // The same measure as the cgroups of this interval.
    a.energy_nj = mul_div(dynamic, r.by_counter ? dc : d, r.activity);
    if (policy_ == IdlePolicy::Share) a.energy_nj += mul_div(idle_total, d, work_ns);
    auto& t = proc_acc_[tgid];
    t.cpu_ns += a.cpu_ns;
    t.energy_nj += a.energy_nj;
    t.ctr += a.ctr;
    auto sh = proc_shown_.find(tgid);
    if (sh != proc_shown_.end()) {
      sh->second.cpu_ns += a.cpu_ns;
      sh->second.energy_nj += a.energy_nj;
      sh->second.ctr += a.ctr;
    } else if (a.cpu_ns) {
      pfresh.push_back({tgid, a});
    }
  }
  // Processes gone from the kernel map free their slot; their totals join other.
  for (auto it = proc_shown_.begin(); it != proc_shown_.end();) {
    if (!k.procs.count(it->first)) {
      proc_other_.cpu_ns += it->second.cpu_ns;
      proc_other_.energy_nj += it->second.energy_nj;
      proc_other_.ctr += it->second.ctr;
      it = proc_shown_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = proc_acc_.begin(); it != proc_acc_.end();)
    it = k.procs.count(it->first) ? std::next(it) : proc_acc_.erase(it);
  std::sort(pfresh.begin(), pfresh.end(),
            [](const auto& a, const auto& b) { return a.second.cpu_ns > b.second.cpu_ns; });
  for (const auto& [tgid, a] : pfresh) {
    Acc& dst = proc_shown_.size() < top_proc_ ? proc_shown_[tgid] : proc_other_;
    dst.cpu_ns += a.cpu_ns;
    dst.energy_nj += a.energy_nj;
    dst.ctr += a.ctr;
  }

  resets_ += resets;
  if (resets && warn.empty()) warn = std::to_string(resets) + " kernel counters restarted (LRU eviction or reload)";
  last_ = k;
  last_packets_ = packets;
  last_ns_ = now_ns;
  intervals_++;
  last_warning_ = warn;
  return warn;
}

// ---- output -------------------------------------------------------------------

namespace {

double joules(uint64_t nj) { return static_cast<double>(nj) / 1e9; }
double seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

const char* kSoftirqNames[10] = {"hi", "timer", "net_tx", "net_rx", "block", "irq_poll", "tasklet", "sched", "hrtimer", "rcu"};

}  // namespace

std::vector<core::MetricFamily> energy_metrics(const EnergyAccountant& a, const LabelFn& labels,
                                               const OutputOptions& o) {
  core::MetricFamily cpu{"kagami_energy_cpu_seconds_total",
                         "On-CPU time by level (node, pod, container/cgroup, process), from sched_switch; "
                         "softirq time excluded (see kagami_energy_node_cpu_seconds_total).",
                         "counter", {}};
  core::MetricFamily en{"kagami_energy_joules_total",
                        "Energy attributed by level (node, pod, container/cgroup, process); "
                        "node = sum of kagami_energy_node_joules_total parts.",
                        "counter", {}};
  // Per-workload counter counts, only when a counter is read.
  const bool has_ctr = !o.counter.empty();
  core::MetricFamily ctr{counter_metric_name(o.counter),
                         o.counter == "hw_instructions"
                             ? "Instructions retired by level (node = task slices), from the per-CPU hardware counter "
                               "read at every sched_switch; softirq counts excluded."
                         : o.counter == "hw_cycles"
                             ? "CPU cycles by level (node = task slices), from the per-CPU hardware counter read at "
                               "every sched_switch; softirq counts excluded."
                             : "Activity counter (" + o.counter + ", a software test counter: nanoseconds) by level.",
                         "counter", {}};
  auto add_ctr = [&](const std::map<std::string, std::string>& l, uint64_t v) {
    if (has_ctr) ctr.samples.push_back({l, static_cast<double>(v), ""});
  };
  auto cg_labels = [&](uint64_t id, const std::string& level) {
    auto l = labels ? labels(id) : WorkloadLabels{};
    std::map<std::string, std::string> m{{"node", o.node}, {"level", level}, {"container_id", l.container_id},
                                         {"pod_uid", l.pod_uid}, {"cgroup_path", l.cgroup_path}};
    return m;
  };
  // Node.
  std::map<std::string, std::string> nl{{"node", o.node}, {"level", "node"}};
  cpu.samples.push_back({nl, seconds(a.node_cpu_ns()), ""});
  en.samples.push_back({nl, joules(a.node_nj()), ""});
  add_ctr(nl, a.node_ctr());
  // Pods: sums of their cgroups' full totals (monotonic: cgroups are never forgotten).
  std::map<std::string, Acc> pods;
  for (const auto& [id, acc] : a.cgroups()) {
    auto l = labels ? labels(id) : WorkloadLabels{};
    if (l.pod_uid.empty()) continue;
    auto& p = pods[l.pod_uid];
    p.cpu_ns += acc.cpu_ns;
    p.energy_nj += acc.energy_nj;
    p.ctr += acc.ctr;
  }
  for (const auto& [uid, acc] : pods) {
    std::map<std::string, std::string> pl{{"node", o.node}, {"level", "pod"}, {"pod_uid", uid}};
    cpu.samples.push_back({pl, seconds(acc.cpu_ns), ""});
    en.samples.push_back({pl, joules(acc.energy_nj), ""});
    add_ctr(pl, acc.ctr);
  }
  // Cgroups (containers and other cgroups), folded.
  for (const auto& [id, acc] : a.cgroup_series()) {
    auto l = cg_labels(id, "");
    l["level"] = l["container_id"].empty() ? "cgroup" : "container";
    cpu.samples.push_back({l, seconds(acc.cpu_ns), ""});
    en.samples.push_back({l, joules(acc.energy_nj), ""});
    add_ctr(l, acc.ctr);
  }
  {
    std::map<std::string, std::string> ol{{"node", o.node}, {"level", "cgroup"}, {"cgroup_path", "other"},
                                          {"container_id", ""}, {"pod_uid", ""}};
    cpu.samples.push_back({ol, seconds(a.cgroup_other().cpu_ns), ""});
    en.samples.push_back({ol, joules(a.cgroup_other().energy_nj), ""});
    add_ctr(ol, a.cgroup_other().ctr);
  }
  // Processes, folded.
  for (const auto& [tgid, acc] : a.process_series()) {
    auto pi = a.proc_info().find(tgid);
    const uint64_t cg = pi == a.proc_info().end() ? 0 : pi->second.cgroup_id;
    auto l = cg_labels(cg, "process");
    l["pid"] = std::to_string(tgid);
    l["comm"] = pi == a.proc_info().end() ? "" : pi->second.comm;
    cpu.samples.push_back({l, seconds(acc.cpu_ns), ""});
    en.samples.push_back({l, joules(acc.energy_nj), ""});
    add_ctr(l, acc.ctr);
  }
  {
    std::map<std::string, std::string> ol{{"node", o.node}, {"level", "process"}, {"pid", "other"}};
    cpu.samples.push_back({ol, seconds(a.process_other().cpu_ns), ""});
    en.samples.push_back({ol, joules(a.process_other().energy_nj), ""});
    add_ctr(ol, a.process_other().ctr);
  }

  core::MetricFamily parts{"kagami_energy_node_joules_total",
                           "Node energy by part: workloads + idle + system + network = node, exactly.", "counter", {}};
  for (auto [p, v] : {std::pair<const char*, uint64_t>{"workloads", a.workloads_nj()},
                      {"idle", a.idle_nj()},
                      {"system", a.system_nj()},
                      {"network", a.network_nj()}})
    parts.samples.push_back({{{"node", o.node}, {"part", p}}, joules(v), ""});

  core::MetricFamily ncpu{"kagami_energy_node_cpu_seconds_total",
                          "CPU time of the node by kind: task (busy), idle, ksoftirqd (part of busy), softirq by vector.",
                          "counter", {}};
  ncpu.samples.push_back({{{"node", o.node}, {"kind", "busy"}}, seconds(a.node_cpu_ns()), ""});
  ncpu.samples.push_back({{{"node", o.node}, {"kind", "idle"}}, seconds(a.idle_ns()), ""});
  ncpu.samples.push_back({{{"node", o.node}, {"kind", "ksoftirqd"}}, seconds(a.ksoftirqd_ns()), ""});
  for (int i = 0; i < 10; i++)
    ncpu.samples.push_back({{{"node", o.node}, {"kind", std::string("softirq_") + kSoftirqNames[i]}},
                            seconds(a.softirq_ns(i)), ""});

  core::MetricFamily info{"kagami_energy_power_source_info",
                          "Power source and model in use (1 = active); inputs of the attribution.", "gauge", {}};
  auto d = a.power().describe();
  std::map<std::string, std::string> il{{"node", o.node},
                                        {"source", a.power().kind()},
                                        {"hooks", o.hooks},
                                        {"activity", a.last_activity()},
                                        {"activity_config", o.activity_config},
                                        {"activity_counter", o.counter},
                                        {"perf_counters", o.counter.empty() ? "unavailable" : "in_use"},
                                        {"perf_counters_reason", o.counter_reason}};
  if (a.power().kind() == "model") {
    il["model_per"] = d.value("per", "");
    il["model_idle_watts"] = fmt::format("{}", d.value("idle_watts", 0.0));
    il["model_max_watts"] = fmt::format("{}", d.value("max_watts", 0.0));
  }
  info.samples.push_back({il, 1, ""});
  core::MetricFamily err{"kagami_energy_error_ratio",
                         "Relative error estimate of node energy for the source in use (docs/energy.md).", "gauge", {}};
  err.samples.push_back({{{"node", o.node}, {"source", a.power().kind()}}, a.power().error_ratio(), ""});
  core::MetricFamily watts{"kagami_energy_node_watts", "Node power over the last interval.", "gauge", {}};
  watts.samples.push_back({{{"node", o.node}}, std::isfinite(a.last_watts()) ? a.last_watts() : 0, ""});
  core::MetricFamily perr{"kagami_energy_power_errors_total",
                          "Intervals where the power source failed and the model was used.", "counter", {}};
  perr.samples.push_back({{{"node", o.node}}, static_cast<double>(a.power_errors()), ""});
  core::MetricFamily act{"kagami_energy_activity_intervals_total",
                         "Intervals by the activity measure that split dynamic energy (cpu_time, or the counter).",
                         "counter", {}};
  act.samples.push_back({{{"node", o.node}, {"activity", "cpu_time"}},
                         static_cast<double>(a.intervals() - a.counter_intervals()), ""});
  if (has_ctr)
    act.samples.push_back({{{"node", o.node}, {"activity", o.counter == "hw_instructions" ? "instructions"
                                                             : o.counter == "hw_cycles"     ? "cycles"
                                                                                            : o.counter}},
                           static_cast<double>(a.counter_intervals()), ""});
  core::MetricFamily fb{"kagami_energy_activity_fallbacks_total",
                        "Intervals split by CPU time although a counter was loaded (a CPU without a reading; "
                        "see the JSON's inputs.last_fallback).",
                        "counter", {}};
  fb.samples.push_back({{{"node", o.node}}, static_cast<double>(a.counter_fallbacks()), ""});
  std::vector<core::MetricFamily> out{cpu, en, parts, ncpu, info, err, watts, perr, act, fb};
  if (has_ctr) out.push_back(std::move(ctr));
  return out;
}

nlohmann::json energy_json(const EnergyAccountant& a, const LabelFn& labels, const OutputOptions& o) {
  using nlohmann::json;
  json j;
  j["node"] = o.node;
  j["hooks"] = o.hooks;
  j["power"] = a.power().describe();
  j["power"]["error_ratio"] = a.power().error_ratio();
  j["power"]["tried"] = o.power_tried;
  j["power"]["errors"] = a.power_errors();
  j["power"]["last_watts"] = a.last_watts();
  j["inputs"] = {{"activity", a.last_activity()},
                 {"activity_config", o.activity_config},
                 {"activity_counter", o.counter},
                 {"perf_counters", o.counter.empty() ? "unavailable" : "in_use"},
                 {"perf_counters_reason", o.counter_reason},
                 {"counter_intervals", a.counter_intervals()},
                 {"counter_fallbacks", a.counter_fallbacks()},
                 {"last_fallback", a.last_fallback()},
                 {"utilisation", a.last_utilisation()}};
  j["intervals"] = a.intervals();
  j["counter_restarts"] = a.counter_resets();
  j["warning"] = a.last_warning();
  j["energy_nj"] = {{"node", a.node_nj()},
                    {"workloads", a.workloads_nj()},
                    {"idle", a.idle_nj()},
                    {"system", a.system_nj()},
                    {"network", a.network_nj()}};
  j["conserved"] = a.workloads_nj() + a.idle_nj() + a.system_nj() + a.network_nj() == a.node_nj();
  json cpu = {{"busy_ns", a.node_cpu_ns()}, {"idle_ns", a.idle_ns()}, {"ksoftirqd_ns", a.ksoftirqd_ns()}};
  for (int i = 0; i < 10; i++) cpu["softirq_ns"][kSoftirqNames[i]] = a.softirq_ns(i);
  j["cpu"] = cpu;
  std::vector<std::pair<uint64_t, Acc>> cgs(a.cgroups().begin(), a.cgroups().end());
  std::sort(cgs.begin(), cgs.end(), [](auto& x, auto& y) { return x.second.energy_nj > y.second.energy_nj; });
  json wl = json::array();
  for (size_t i = 0; i < cgs.size() && i < o.top_n_cgroups; i++) {
    auto l = labels ? labels(cgs[i].first) : WorkloadLabels{};
    wl.push_back({{"cgroup_id", cgs[i].first}, {"cgroup_path", l.cgroup_path}, {"container_id", l.container_id},
                  {"pod_uid", l.pod_uid}, {"cpu_ns", cgs[i].second.cpu_ns},
                  {"energy_nj", cgs[i].second.energy_nj}, {"network_nj", cgs[i].second.net_nj}});
    if (!o.counter.empty()) wl.back()["counter"] = cgs[i].second.ctr;
  }
  j["cgroups"] = wl;
  j["cgroups_total"] = cgs.size();
  std::vector<std::pair<uint32_t, Acc>> ps(a.procs().begin(), a.procs().end());
  std::sort(ps.begin(), ps.end(), [](auto& x, auto& y) { return x.second.cpu_ns > y.second.cpu_ns; });
  json pj = json::array();
  for (size_t i = 0; i < ps.size() && i < o.top_n_processes; i++) {
    auto pi = a.proc_info().find(ps[i].first);
    pj.push_back({{"pid", ps[i].first},
                  {"comm", pi == a.proc_info().end() ? "" : pi->second.comm},
                  {"cgroup_id", pi == a.proc_info().end() ? 0 : pi->second.cgroup_id},
                  {"cpu_ns", ps[i].second.cpu_ns},
                  {"energy_nj", ps[i].second.energy_nj}});
    if (!o.counter.empty()) pj.back()["counter"] = ps[i].second.ctr;
  }
  j["processes"] = pj;
  j["processes_tracked"] = ps.size();
  return j;
}

// ---- KPIs ---------------------------------------------------------------------

double upf_bits_per_joule(uint64_t data_bytes, uint64_t upf_energy_nj) {
  if (upf_energy_nj == 0) return 0;
  const double v = static_cast<double>(data_bytes) * 8.0 / (static_cast<double>(upf_energy_nj) / 1e9);
  return std::isfinite(v) && v >= 0 ? v : 0;
}

double per_joule(uint64_t count, uint64_t energy_nj) {
  if (energy_nj == 0) return 0;
  const double v = static_cast<double>(count) / (static_cast<double>(energy_nj) / 1e9);
  return std::isfinite(v) && v >= 0 ? v : 0;
}

uint64_t energy_of_prefixes(const EnergyAccountant& a, const LabelFn& labels, const std::vector<std::string>& prefixes) {
  uint64_t nj = 0;
  for (const auto& [id, acc] : a.cgroups()) {
    const auto l = labels ? labels(id) : WorkloadLabels{};
    for (const auto& p : prefixes)
      if (!p.empty() && l.cgroup_path.rfind(p, 0) == 0) {
        nj += acc.energy_nj;
        break;
      }
  }
  return nj;
}

// ---- module -------------------------------------------------------------------

EnergyModule::EnergyModule(FeatureCheck has) : has_(std::move(has)) {}
EnergyModule::~EnergyModule() = default;

std::vector<core::FeatureNeed> EnergyModule::needs() const {
  return {
      {"tracepoint", true, ""},
      {"tp_btf", false, "classic tracepoints (sched/sched_switch, irq/softirq_entry, irq/softirq_exit)"},
  };
}

Result<std::vector<core::LoadRequest>> EnergyModule::plan(const nlohmann::json& config, const core::ModuleContext& ctx) {
  auto cfg = parse_energy_config(config);
  if (!cfg) return cfg.error();
  const FeatureCheck has =
      has_ ? has_ : FeatureCheck([&ctx](std::string_view f) { return ctx.features.available(f); });
  auto choice = choose_hooks(cfg->hooks, has);
  if (!choice) return choice.error();
  const long ncpu = ::sysconf(_SC_NPROCESSORS_CONF);
  if (cfg->model.units == 0)
    cfg->model.units = cfg->model.per == "vcpu" ? static_cast<uint32_t>(ncpu > 0 ? ncpu : 1)
                       : cfg->model.per == "socket" ? count_sockets()
                                                    : 1;
  auto power = choose_power_source(cfg->power_source, cfg->powercap_root, cfg->hwmon_root, cfg->model);
  if (!power) return power.error();
  // The activity counters are opened here, not in configure(): which
  // object to load (with or without the counter reads) depends on whether
  // every online CPU can count. perf_event_open only; no BPF object is
  // touched. Counters of the same kind that all opened are kept.
  std::unique_ptr<ActivityCounters> counters;
  bool reuse = false;
  if (cfg->activity != "cpu_time") {
    auto kind = parse_counter_kind(cfg->activity_counter);
    if (!kind) return kind.error();
    {
      std::lock_guard<std::mutex> g(mu_);
      reuse = counters_ && counters_->kind() == *kind && counters_->complete();
    }
    if (!reuse) {
      counters = std::make_unique<ActivityCounters>();
      auto cpus = online_cpus();
      counters->open(*kind, cpus ? *cpus : std::vector<int>{});
      if (!cpus) counters->note_error(cpus.error().message);
    }
  }
  std::lock_guard<std::mutex> g(mu_);  // counters_ is refreshed by collect() under mu_
  auto act = choose_activity(*cfg, reuse ? counters_.get() : counters.get());
  if (!act) return act.error();
  if (!act->counter) {
    counters_.reset();
  } else if (!reuse) {
    counters_ = std::move(counters);
  }
  ctx_ = ctx;
  if (ctx.identity && ctx.identity->root().rfind(cfg->cgroup_root, 0) == 0) {
    resolver_.reset();
  } else if (!resolver_ || config_.cgroup_root != cfg->cgroup_root) {
    resolver_ = std::make_unique<identity::Resolver>(cfg->cgroup_root);
  }
  power_tried_ = power->tried;
  for (const auto& t : power_tried_) spdlog::info("energy: power source not used: {}", t);
  const bool keep = acc_ && planned_ && config_.power_source == cfg->power_source &&
                    config_.idle_policy == cfg->idle_policy && config_.top_n_cgroups == cfg->top_n_cgroups &&
                    config_.top_n_processes == cfg->top_n_processes;
  if (!keep) {
    // A new accountant restarts every counter: only when the config changed what they mean.
    acc_ = std::make_unique<EnergyAccountant>(std::move(power->source), cfg->model,
                                              cfg->idle_policy == "share" ? IdlePolicy::Share : IdlePolicy::Node,
                                              static_cast<uint32_t>(ncpu > 0 ? ncpu : 1), cfg->top_n_cgroups,
                                              cfg->top_n_processes);
  }
  config_ = *cfg;
  choice_ = *choice;
  activity_ = *act;
  planned_ = true;
  spdlog::info("energy: hooks {} ({}), power source {}, activity {} ({})", to_string(choice_.hooks), choice_.reason,
               acc_->power().kind(), activity_.counter ? activity_.counter_name : "cpu_time", activity_.reason);
  return std::vector<core::LoadRequest>{energy_load_request(choice_, activity_.counter)};
}

Result<void> EnergyModule::configure(const core::ProgramManager& pm) {
  std::lock_guard<std::mutex> g(mu_);
  if (!activity_.counter || !counters_) {
    pmu_map_.reset();
    return ok();
  }
  auto fd = pm.map_fd("energy", ENERGY_MAP_PMU);
  if (!fd) return fd.error().with_context("energy: the activity counter map");
  // Kept open for the module's life (see energy.h); a dup of the manager's
  // fd shares its map file, so the entries live as long as either holds it.
  pmu_map_ = std::move(*fd);
  return counters_->fill(pmu_map_.get());
}

OutputOptions EnergyModule::output_options() const {
  OutputOptions o{ctx_.node.empty() ? "unknown" : ctx_.node, config_.top_n_processes, config_.top_n_cgroups,
                  std::string(to_string(choice_.hooks)), power_tried_};
  o.activity_config = config_.activity;
  o.counter = activity_.counter ? activity_.counter_name : "";
  o.counter_reason = activity_.reason;
  if (activity_.counter && counters_ && !counters_->why_not().empty())
    o.counter_reason += "; now: " + counters_->why_not();
  return o;
}

WorkloadLabels EnergyModule::labels_of(uint64_t cgroup_id) {
  identity::Resolver* r = resolver_ ? resolver_.get() : ctx_.identity;
  WorkloadLabels l;
  if (!r) {
    l.cgroup_path = "cgroup:" + hex_id(cgroup_id);
    return l;
  }
  auto w = r->resolve(cgroup_id);
  if (!w) {
    l.cgroup_path = "cgroup:" + hex_id(cgroup_id);  // gone before we saw its path
    return l;
  }
  l.container_id = w->container_id;
  l.pod_uid = w->pod_uid;
  l.cgroup_path = w->cgroup_path;
  return l;
}

// ---- network weights -----------------------------------------------------------

void NetworkWeights::transport(const std::unordered_map<uint64_t, uint64_t>& cum) {
  saw_transport_ = true;
  for (const auto& [cg, n] : cum) {
    auto it = trn_last_.find(cg);
    // First sight: the counter's history predates this interval; only what
    // it gains from now on is weight (else one interval would carry it all).
    if (it != trn_last_.end()) trn_delta_[cg] += n >= it->second ? n - it->second : n;
  }
  trn_last_ = cum;  // cgroups transport dropped (dead pods) are forgotten
}

void NetworkWeights::obs(const std::unordered_map<uint32_t, uint64_t>& slot_cum,
                         const std::unordered_map<uint32_t, uint64_t>& slot_owner) {
  saw_obs_ = true;
  for (const auto& [slot, n] : slot_cum) {
    auto it = obs_last_.find(slot);
    const uint64_t d = it == obs_last_.end() ? 0 : (n >= it->second ? n - it->second : n);
    auto o = slot_owner.find(slot);
    if (d && o != slot_owner.end() && o->second) obs_delta_[o->second] += d;
  }
  obs_last_ = slot_cum;
}

const std::unordered_map<uint64_t, uint64_t>& NetworkWeights::commit() {
  for (const auto& [cg, d] : trn_delta_) {
    auto o = obs_delta_.find(cg);
    cum_[cg] += o == obs_delta_.end() ? d : std::max(d, o->second);
  }
  for (const auto& [cg, d] : obs_delta_)
    if (!trn_delta_.count(cg)) cum_[cg] += d;
  trn_delta_.clear();
  obs_delta_.clear();
  return cum_;
}

Result<void> EnergyModule::read_obs_packets(const core::ProgramManager& pm, uint64_t now_ns) {
  auto slot_fd = pm.map_fd("obs", OBS_MAP_IFSLOT);
  if (!slot_fd) return slot_fd.error();
  auto iface_fd = pm.map_fd("obs", OBS_MAP_IFACE);
  if (!iface_fd) return iface_fd.error();
  auto slots = bpf::MapView<uint32_t, obs_ifslot>::open(slot_fd->get(), OBS_MAP_IFSLOT);
  if (!slots) return slots.error();
  std::unordered_map<uint32_t, uint32_t> ifindex_of;  // slot -> ifindex
  KAGAMI_TRY(slots->for_each_index(OBS_IFSLOT_TABLE, [&](uint32_t, const obs_ifslot& e) {
    if (e.ifindex && e.slot > 0 && e.slot < OBS_IF_SLOTS) ifindex_of[e.slot] = e.ifindex;
  }));
  auto iface = bpf::MapView<uint32_t, obs_pkt_bytes>::open(iface_fd->get(), OBS_MAP_IFACE);
  if (!iface) return iface.error();
  std::unordered_map<uint32_t, uint64_t> cum;  // slot -> packets, both directions, all classes
  KAGAMI_TRY(iface->for_each_index(OBS_IFACE_SLOTS, [&](uint32_t i, const obs_pkt_bytes& v) {
    const uint32_t slot = i / (OBS_DIR_MAX * OBS_L4_CLASSES);
    if (ifindex_of.count(slot)) cum[slot] += v.packets;
  }));
  std::unordered_map<uint32_t, uint64_t> owner;
  constexpr uint64_t kRefreshNs = 30'000'000'000ull;
  for (const auto& [slot, ifindex] : ifindex_of) {
    auto& o = obs_owners_[slot];
    if (o.ifindex != ifindex || !o.resolved_ns || now_ns - o.resolved_ns >= kRefreshNs) {
      o = SlotOwner{ifindex, 0, now_ns ? now_ns : 1};
      char name[IF_NAMESIZE] = {};
      identity::Resolver* r = resolver_ ? resolver_.get() : ctx_.identity;
      if (::if_indextoname(ifindex, name) && r) {
        auto io = identity::interface_owner(name);
        // The owner's cgroup id as BPF sees it: its cgroup v2 directory.
        if (io && io->pid) {
          auto id = fs::cgroup_v2_id_of_pid(io->pid, r->root());
          if (id) o.cgroup_id = *id;
        }
      }
    }
    owner[slot] = o.cgroup_id;
  }
  for (auto it = obs_owners_.begin(); it != obs_owners_.end();)
    it = ifindex_of.count(it->first) ? std::next(it) : obs_owners_.erase(it);
  net_.obs(cum, owner);
  return ok();
}

void EnergyModule::read_kpi_inputs(const core::ProgramManager& pm) {
  upf_.running = smf_.running = amf_.running = false;
  if (!config_.upf_cgroups.empty() || !config_.smf_cgroups.empty()) {
    // obs: GTP-U UDP payload bytes (N3 and N9 are both GTP-U) and PFCP
    // requests (N4), both directions.
    auto fd = pm.map_fd("obs", OBS_MAP_COUNTERS);
    if (fd) {
      auto v = bpf::MapView<uint32_t, obs_counters>::open(fd->get(), OBS_MAP_COUNTERS);
      uint64_t bytes = 0, pfcp = 0;
      if (v && v->for_each_index(OBS_DIR_MAX, [&](uint32_t, const obs_counters& c) {
                 bytes += c.c[OBS_CTR_GTPU_UDP_PAYLOAD_BYTES];
                 pfcp += c.c[OBS_CTR_PFCP_REQUESTS];
               })) {
        upf_.update(bytes);
        smf_.update(pfcp);
      }
    }
  }
  if (!config_.amf_cgroups.empty()) {
    // n2: NGAP procedures started (initiating messages), every interface
    // and direction.
    auto fd = pm.map_fd("n2", N2_MAP_PROC);
    if (fd) {
      auto v = bpf::MapView<n2_proc_key, uint64_t>::open(fd->get(), N2_MAP_PROC);
      uint64_t procs = 0;
      if (v && v->for_each([&](const n2_proc_key& k, const uint64_t& n) {
                 if (k.pdu_type == NGAP_PDU_INITIATING) procs += n;
               }))
        amf_.update(procs);
    }
  }
}

Result<void> EnergyModule::advance_locked(const core::ProgramManager& pm) {
  if (!acc_) return make_error("energy: module not planned by this process (adopted programs have no interval state)");
  Fd fds[5];
  const char* names[5] = {ENERGY_MAP_CPU_TIME, ENERGY_MAP_CGROUP, ENERGY_MAP_PROC, ENERGY_MAP_OTHER,
                          ENERGY_MAP_OVERFLOW};
  for (int i = 0; i < 5; i++) {
    auto fd = pm.map_fd("energy", names[i]);
    if (!fd) return fd.error().with_context(std::string("energy: reading map ") + names[i]);
    fds[i] = std::move(*fd);
  }
  auto k = read_kernel({fds[0].get(), fds[1].get(), fds[2].get(), fds[3].get(), fds[4].get()});
  if (!k) return k.error();
  if (activity_.counter && counters_) {
    // Hotplug: CPUs that came (back) online get a counter; the interval in
    // which that happens is split by CPU time (BPF counts the lost slices).
    auto cpus = online_cpus();
    if (cpus) {
      auto re = counters_->refresh(*cpus, pmu_map_.valid() ? pmu_map_.get() : -1);
      if (!re.empty()) spdlog::info("energy: {} counters (re)opened on {} CPUs", activity_.counter_name, re.size());
    }
    k->counter = activity_.counter_name;
    k->counter_missing = !pmu_map_.valid() ? std::string(ENERGY_MAP_PMU) + " not filled (configure() did not run)"
                         : !cpus          ? cpus.error().message
                                          : counters_->why_not();
  }
  const uint64_t now_ns = ctx_.clock ? ctx_.clock->monotonic_ns() : core::Clock::system().monotonic_ns();
  if (config_.network_attribution) {
    // transport's per-pod packets (ingress + egress, all L4 classes), when it runs.
    auto fd = pm.map_fd("transport", TRANSPORT_MAP_POD_TRAFFIC);
    if (fd) {
      auto v = bpf::MapView<transport_cg_key, transport_traffic>::open(fd->get(), TRANSPORT_MAP_POD_TRAFFIC);
      if (v) {
        std::unordered_map<uint64_t, uint64_t> cum;
        (void)v->for_each([&](const transport_cg_key& cg, const transport_traffic& t) {
          uint64_t n = 0;
          for (auto& d : t.packets)
            for (uint64_t p : d) n += p;
          cum[cg.cgroup_id] += n;
        });
        net_.transport(cum);
      }
    }
    // obs's per-interface packets, given to each interface's owner.
    if (auto r = read_obs_packets(pm, now_ns); !r) spdlog::debug("energy: obs packets: {}", r.error().message);
  }
  const auto& packets = net_.commit();
  read_kpi_inputs(pm);
  auto w = acc_->advance(*k, now_ns, packets);
  if (!w) return w.error();
  if (!w->empty()) spdlog::warn("energy: {}", *w);
  // Half full: entries of cgroups that no longer exist leave the kernel map
  // (their final time was just read and accounted; a dead cgroup has no
  // tasks, so nothing is lost). Their totals stay in the accountant.
  if (k->cgroup_ns.size() > ENERGY_CGROUP_MAX_ENTRIES / 2) {
    identity::Resolver* r = resolver_ ? resolver_.get() : ctx_.identity;
    Fd root(r ? ::open(r->root().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1);
    size_t pruned = 0;
    if (root.valid())
      for (const auto& [id, ns] : k->cgroup_ns)
        if (cgroup_alive(root.get(), id) == 0) {
          energy_cg_key key{id};
          if (bpf_map_delete_elem(fds[1].get(), &key) == 0) pruned++;
        }
    if (pruned) spdlog::info("energy: {} dead cgroups removed from {}", pruned, ENERGY_MAP_CGROUP);
  }
  return ok();
}

Result<std::vector<core::MetricFamily>> EnergyModule::collect(const core::ProgramManager& pm) {
  std::lock_guard<std::mutex> g(mu_);
  KAGAMI_TRY(advance_locked(pm));
  const OutputOptions o = output_options();
  auto fams = energy_metrics(*acc_, [this](uint64_t id) { return labels_of(id); }, o);
  auto labels = [this](uint64_t id) { return labels_of(id); };
  // One KPI: its input counter, the NF's energy, their ratio.
  auto kpi = [&](const char* nf, const std::vector<std::string>& prefixes, const KpiCounter& in, const char* what,
                 const char* unit, const char* help, double scale) {
    if (prefixes.empty() || !in.running) return;
    const uint64_t nj = energy_of_prefixes(*acc_, labels, prefixes);
    const std::string n = std::string("kagami_energy_") + nf;
    core::MetricFamily dv{n + "_" + what + "_total", help, "counter", {}};
    dv.samples.push_back({{{"node", o.node}}, static_cast<double>(in.total) * scale, ""});
    core::MetricFamily ej{n + "_joules_total", "Energy of the " + std::string(nf) + "'s cgroups (energy." + nf + "_cgroups).",
                          "counter", {}};
    ej.samples.push_back({{{"node", o.node}}, static_cast<double>(nj) / 1e9, ""});
    core::MetricFamily ee{n + "_" + unit + "_per_joule",
                          std::string("Energy efficiency (3GPP TS 28.554 style): ") + what + " / energy since start.",
                          "gauge", {}};
    ee.samples.push_back({{{"node", o.node}}, per_joule(in.total, nj) * scale, ""});
    fams.push_back(std::move(dv));
    fams.push_back(std::move(ej));
    fams.push_back(std::move(ee));
  };
  kpi("upf", config_.upf_cgroups, upf_, "data_bits", "bits",
      "GTP-U data volume (N3 + N9, obs) since the module started, bits.", 8.0);
  kpi("amf", config_.amf_cgroups, amf_, "ngap_procedures", "procedures",
      "NGAP procedures started on N2 (initiating messages, n2) since the module started.", 1.0);
  kpi("smf", config_.smf_cgroups, smf_, "pfcp_requests", "requests",
      "PFCP requests on N4 (obs) since the module started.", 1.0);
  return fams;
}

Result<nlohmann::json> EnergyModule::snapshot(const core::ProgramManager& pm) {
  std::lock_guard<std::mutex> g(mu_);
  KAGAMI_TRY(advance_locked(pm));
  const OutputOptions o = output_options();
  auto j = energy_json(*acc_, [this](uint64_t id) { return labels_of(id); }, o);
  j["hooks_reason"] = choice_.reason;
  j["inputs"]["activity_reason"] = activity_.reason;
  auto labels = [this](uint64_t id) { return labels_of(id); };
  if (!config_.upf_cgroups.empty()) {
    const uint64_t nj = energy_of_prefixes(*acc_, labels, config_.upf_cgroups);
    j["kpi"]["upf"] = {{"cgroups", config_.upf_cgroups},
                       {"obs_running", upf_.running},
                       {"data_bytes", upf_.total},
                       {"energy_nj", nj},
                       {"bits_per_joule", upf_bits_per_joule(upf_.total, nj)}};
  }
  if (!config_.amf_cgroups.empty()) {
    const uint64_t nj = energy_of_prefixes(*acc_, labels, config_.amf_cgroups);
    j["kpi"]["amf"] = {{"cgroups", config_.amf_cgroups},
                       {"n2_running", amf_.running},
                       {"ngap_procedures", amf_.total},
                       {"energy_nj", nj},
                       {"procedures_per_joule", per_joule(amf_.total, nj)}};
  }
  if (!config_.smf_cgroups.empty()) {
    const uint64_t nj = energy_of_prefixes(*acc_, labels, config_.smf_cgroups);
    j["kpi"]["smf"] = {{"cgroups", config_.smf_cgroups},
                       {"obs_running", smf_.running},
                       {"pfcp_requests", smf_.total},
                       {"energy_nj", nj},
                       {"requests_per_joule", per_joule(smf_.total, nj)}};
  }
  return j;
}

}  // namespace kagami::modules::energy

KAGAMI_REGISTER_MODULE(energy, ::kagami::modules::energy::EnergyModule)
