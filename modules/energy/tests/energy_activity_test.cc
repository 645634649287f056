// The activity measure (docs/energy.md, "Activity measure"): dynamic energy
// split by the activity counter (instructions) when every online CPU counted
// the whole interval, by CPU time otherwise; the config keys; the counter
// choice (auto falls back and says why, instructions forced is an error);
// the CPU list parser of the perf wrapper; and the outputs (the counter
// family only when a counter is read, the info metric's inputs).
#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

#include "common/perf_event.h"
#include "modules/energy/attribution.h"
#include "modules/energy/energy.h"
#include "modules/energy/power.h"

namespace {

using namespace kagami::modules::energy;

TEST(energyActivity, DynamicEnergyFollowsInstructionsIdleFollowsCpuTime) {
  IntervalInput in;
  in.node_nj = 10'000;
  in.idle_nj = 4'000;
  in.workload_ns = {{1, 300}, {2, 300}};  // equal CPU time ...
  in.by_counter = true;
  in.workload_ctr = {{1, 900}, {2, 300}};  // ... but cgroup 1 retired 3x the instructions
  in.softirq_net_ctr = 200;
  in.softirq_other_ctr = 100;
  in.ksoftirqd_ctr = 100;  // activity = 1,600 counts
  in.softirq_net_ns = 1'000'000;  // ns weights must not be used
  auto r = attribute(in);
  EXPECT_TRUE(r.by_counter);
  EXPECT_EQ(r.activity, 1'600u);
  EXPECT_EQ(r.workload_nj[1], 3'375u);  // 6000 x 900/1600
  EXPECT_EQ(r.workload_nj[2], 1'125u);  // 6000 x 300/1600
  EXPECT_EQ(r.network_nj, 750u);        // 6000 x 200/1600, no packets: node level
  EXPECT_EQ(r.idle_nj, 4'000u);
  EXPECT_EQ(r.system_nj, 750u);         // other softirq + ksoftirqd
  // Idle under policy share: by CPU time (equal), not by instructions.
  in.idle_policy = IdlePolicy::Share;
  r = attribute(in);
  EXPECT_EQ(r.workload_nj[1], 3'375u + 2'000u);
  EXPECT_EQ(r.workload_nj[2], 1'125u + 2'000u);
  EXPECT_EQ(r.idle_nj, 0u);
  // The same input by CPU time: the ns weights.
  in.by_counter = false;
  in.idle_policy = IdlePolicy::Node;
  r = attribute(in);
  EXPECT_FALSE(r.by_counter);
  EXPECT_EQ(r.workload_nj[1], r.workload_nj[2]);
}

TEST(energyActivity, ConservedExactlyWithCounterWeights) {
  std::mt19937_64 rng(11);
  for (int iter = 0; iter < 20000; iter++) {
    IntervalInput in;
    in.node_nj = rng() % 100'000'000'000ull;
    in.idle_nj = rng() % 100'000'000'000ull;
    in.by_counter = true;
    const int n = static_cast<int>(rng() % 50);
    for (int i = 0; i < n; i++) {
      const uint64_t id = rng() % 100;
      in.workload_ns[id] = rng() % 3'000'000'000ull;
      if (rng() % 4) in.workload_ctr[id] = rng() % 30'000'000'000ull;  // some with no count
    }
    in.softirq_net_ctr = rng() % 1'000'000'000;
    in.softirq_other_ctr = rng() % 1'000'000'000;
    in.ksoftirqd_ctr = rng() % 1000;
    in.other_busy_ctr = rng() % 3 == 0 ? rng() % 1000 : 0;
    if (rng() % 2)
      for (int i = 0; i < 5; i++) in.net_packets[rng() % 100] = rng() % 100000;
    in.idle_policy = rng() % 2 ? IdlePolicy::Share : IdlePolicy::Node;
    auto r = attribute(in);
    unsigned __int128 sum = r.idle_nj + r.system_nj + r.network_nj;
    for (const auto& [id, e] : r.workload_nj) sum += e;
    ASSERT_EQ(sum, in.node_nj) << "iteration " << iter;
  }
}

class FixedPower : public PowerSource {
 public:
  uint64_t nj = 10'000'000'000;
  std::string kind() const override { return "fixed"; }
  kagami::Result<EnergySample> sample(uint64_t, double) override { return EnergySample{nj}; }
  nlohmann::json describe() const override { return {{"kind", "fixed"}}; }
  double error_ratio() const override { return 0; }
};

// Two CPUs; cgroup 1 and 2 get the same CPU time every interval, cgroup 1
// three times the instructions.
struct Kernel {
  KernelReading k;
  Kernel() {
    k.cpus = k.online = 2;
    k.counter = "hw_instructions";
    k.ctr_lost = {0, 0};
  }
  void step() {
    k.busy_ns += 200;
    k.cgroup_ns[1] += 100;
    k.cgroup_ns[2] += 100;
    k.ctr_busy += 4000;
    k.cgroup_ctr[1] += 3000;
    k.cgroup_ctr[2] += 1000;
    k.procs[10].cpu_ns += 100;
    k.procs[10].cgroup_id = 1;
    k.procs[10].ctr += 3000;
  }
};

TEST(energyActivity, AccountantUsesTheCounterAndFallsBackForAnIntervalWithALostCount) {
  PowerModel m;
  m.units = 1;
  m.idle_watts = 0;  // all dynamic: shares are easy to read
  EnergyAccountant a(std::make_unique<FixedPower>(), m, IdlePolicy::Node, 2);
  Kernel kr;
  uint64_t now = 1'000'000'000;
  ASSERT_TRUE(a.advance(kr.k, now));
  // Interval 1: every CPU counted: 3:1 by instructions.
  kr.step();
  auto w = a.advance(kr.k, now += 1'000'000'000);
  ASSERT_TRUE(w);
  EXPECT_EQ(*w, "");
  EXPECT_EQ(a.last_activity(), "hw_instructions");
  EXPECT_EQ(a.counter_intervals(), 1u);
  EXPECT_EQ(a.cgroups().at(1).energy_nj, 3 * a.cgroups().at(2).energy_nj);
  EXPECT_EQ(a.cgroups().at(1).ctr, 3000u);
  EXPECT_EQ(a.procs().at(10).energy_nj, a.cgroups().at(1).energy_nj) << "processes use the same measure";
  // Interval 2: CPU 1's counter failed mid-run (2 slices without a reading):
  // the whole interval is split by CPU time (1:1), counted and explained.
  kr.step();
  kr.k.ctr_lost[1] += 2;
  const uint64_t e1 = a.cgroups().at(1).energy_nj, e2 = a.cgroups().at(2).energy_nj;
  w = a.advance(kr.k, now += 1'000'000'000);
  ASSERT_TRUE(w);
  EXPECT_NE(w->find("CPU 1: 2 slices"), std::string::npos) << *w;
  EXPECT_EQ(a.last_activity(), "cpu_time");
  EXPECT_EQ(a.counter_fallbacks(), 1u);
  EXPECT_NE(a.last_fallback().find("CPU 1"), std::string::npos);
  EXPECT_EQ(a.cgroups().at(1).energy_nj - e1, a.cgroups().at(2).energy_nj - e2) << "CPU time: equal shares";
  EXPECT_EQ(a.workloads_nj() + a.idle_nj() + a.system_nj() + a.network_nj(), a.node_nj());
  // Interval 3: the CPU counts again: back to instructions.
  kr.step();
  const uint64_t f1 = a.cgroups().at(1).energy_nj, f2 = a.cgroups().at(2).energy_nj;
  w = a.advance(kr.k, now += 1'000'000'000);
  EXPECT_EQ(a.last_activity(), "hw_instructions");
  EXPECT_EQ(a.cgroups().at(1).energy_nj - f1, 3 * (a.cgroups().at(2).energy_nj - f2));
  // Interval 4: a CPU came online and its counter did not open.
  kr.step();
  kr.k.counter_missing = "perf_event_open(hw_instructions, cpu 2): No such file or directory";
  w = a.advance(kr.k, now += 1'000'000'000);
  EXPECT_NE(w->find("not every online CPU"), std::string::npos) << *w;
  EXPECT_EQ(a.counter_fallbacks(), 2u);
  // Interval 5: the counter variant was replaced by the plain one: CPU time,
  // not a fallback (no counter configured).
  kr.step();
  kr.k.counter.clear();
  kr.k.counter_missing.clear();
  w = a.advance(kr.k, now += 1'000'000'000);
  EXPECT_EQ(a.last_activity(), "cpu_time");
  EXPECT_EQ(a.counter_fallbacks(), 2u);
  EXPECT_EQ(a.counter_intervals(), 2u);
  EXPECT_EQ(a.intervals(), 5u);
  EXPECT_EQ(a.workloads_nj() + a.idle_nj() + a.system_nj() + a.network_nj(), a.node_nj());
  // A counter loaded again mid-run: its first interval cannot be split by it.
  kr.step();
  kr.k.counter = "hw_instructions";
  w = a.advance(kr.k, now += 1'000'000'000);
  EXPECT_NE(w->find("loaded during the interval"), std::string::npos) << *w;
}

TEST(energyActivity, CounterThatCountsNothingIsNotUsed) {
  PowerModel m;
  m.units = 1;
  EnergyAccountant a(std::make_unique<FixedPower>(), m, IdlePolicy::Node, 2);
  Kernel kr;
  ASSERT_TRUE(a.advance(kr.k, 1));
  kr.k.busy_ns += 500;
  kr.k.cgroup_ns[1] += 500;
  auto w = a.advance(kr.k, 1'000'000'001);
  ASSERT_TRUE(w);
  EXPECT_NE(w->find("counted nothing"), std::string::npos) << *w;
  EXPECT_EQ(a.last_activity(), "cpu_time");
  EXPECT_GT(a.cgroups().at(1).energy_nj, 0u);
}

TEST(energyActivity, ConfigKeysAndErrors) {
  auto d = parse_energy_config(nullptr);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->activity, "auto");
  EXPECT_EQ(d->activity_counter, "hw_instructions");
  auto c = parse_energy_config({{"activity", "instructions"}, {"activity_counter", "sw_cpu_clock"}});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->activity, "instructions");
  EXPECT_EQ(c->activity_counter, "sw_cpu_clock");
  auto cyc = parse_energy_config({{"activity_counter", "hw_cycles"}});
  ASSERT_TRUE(cyc) << cyc.error().message;
  EXPECT_EQ(cyc->activity_counter, "hw_cycles");
  EXPECT_EQ(counter_metric_name("hw_cycles"), "kagami_energy_cycles_total");
  EXPECT_EQ(counter_metric_name("hw_instructions"), "kagami_energy_instructions_total");
  EXPECT_EQ(counter_metric_name("sw_cpu_clock"), "kagami_energy_activity_counter_total");
  auto bad = [](const nlohmann::json& j, const std::string& want) {
    auto r = parse_energy_config(j);
    ASSERT_FALSE(r) << j.dump();
    EXPECT_NE(r.error().message.find(want), std::string::npos) << r.error().message;
  };
  bad({{"activity", "cycles"}}, "energy.activity");
  bad({{"activity", 3}}, "energy.activity");
  bad({{"activity_counter", "hw_branches"}}, "energy.activity_counter");
  bad({{"activty", "auto"}}, "activty");
  EXPECT_TRUE(parse_counter_kind("sw_task_clock"));
  EXPECT_FALSE(parse_counter_kind("bogus"));
}

TEST(energyActivity, ChoiceFallsBackOnAutoAndRefusesForcedInstructions) {
  EnergyConfig c;
  ActivityCounters none;  // as on a machine without the counter
  none.note_error("perf_event_open(hw_instructions, cpu 0): No such file or directory: no PMU");
  c.activity = "auto";
  auto a = choose_activity(c, &none);
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->counter);
  EXPECT_NE(a->reason.find("CPU time used"), std::string::npos) << a->reason;
  EXPECT_NE(a->reason.find("No such file"), std::string::npos) << a->reason;
  c.activity = "instructions";
  auto f = choose_activity(c, &none);
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find("energy.activity"), std::string::npos) << f.error().message;
  EXPECT_NE(f.error().message.find("No such file"), std::string::npos) << f.error().message;
  c.activity = "cpu_time";
  auto t = choose_activity(c, nullptr);
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->counter);
  EXPECT_EQ(t->reason, "configured: activity=cpu_time");
}

// On this machine: the real hardware counter. Without a PMU (VMs like this
// one) or without privileges every CPU has a reason naming the errno; with
// one, every CPU opened.
TEST(energyActivity, HardwareCounterOnThisMachineOpensOrSaysWhy) {
  auto cpus = kagami::online_cpus();
  ASSERT_TRUE(cpus) << cpus.error().message;
  for (auto kind : {kagami::PerfEventKind::HwInstructions, kagami::PerfEventKind::HwCycles}) {
    const std::string name(kagami::to_string(kind));
    ActivityCounters c;
    c.open(kind, *cpus);
    if (c.complete()) {
      EXPECT_EQ(c.counters().size(), cpus->size()) << name;
      std::printf("%s counts on every CPU here; the fallback is tested above\n", name.c_str());
      continue;
    }
    const std::string why = c.why_not();
    std::printf("%s here: %s\n", name.c_str(), why.c_str());
    EXPECT_NE(why.find("perf_event_open(" + name + ", cpu "), std::string::npos) << why;
    EXPECT_TRUE(why.find("no such hardware counter") != std::string::npos ||
                why.find("not permitted") != std::string::npos)
        << why;
  }
}

// Hotplug bookkeeping with real (software) events: a CPU that appears gets
// an event, a CPU that was offline at the last look gets a fresh one when
// it returns, a CPU that cannot count is missing with the errno's reason
// and is no longer required once offline. (Offlining a real CPU of the
// shared test machine is not done; the online lists are given.)
TEST(energyActivity, CountersFollowCpusGoingOfflineAndOnline) {
  ActivityCounters c;
  c.open(kagami::PerfEventKind::SwCpuClock, {0});
  if (!c.complete()) GTEST_SKIP() << "cannot open a per-CPU software event here: " << c.why_not();
  const int fd0 = c.counters().at(0).fd();
  auto cpus = kagami::online_cpus();
  ASSERT_TRUE(cpus);
  if (cpus->size() < 2) GTEST_SKIP() << "one online CPU";
  const int other = (*cpus)[1];
  EXPECT_EQ(c.refresh({0, other}, -1), std::vector<int>{other}) << "a CPU that came online";
  EXPECT_TRUE(c.complete());
  EXPECT_TRUE(c.refresh({0, other}, -1).empty()) << "nothing changed";
  EXPECT_EQ(c.counters().at(0).fd(), fd0);
  EXPECT_TRUE(c.refresh({0}, -1).empty()) << "a CPU that went offline: nothing to open";
  EXPECT_TRUE(c.complete());
  EXPECT_EQ(c.refresh({0, other}, -1), std::vector<int>{other}) << "back online: a fresh event";
  // A CPU that does not exist cannot count: missing, named, with the errno.
  c.refresh({0, other, 4095}, -1);
  EXPECT_FALSE(c.complete());
  EXPECT_NE(c.why_not().find("cpu 4095"), std::string::npos) << c.why_not();
  // Once it is not online any more it is not required.
  c.refresh({0, other}, -1);
  EXPECT_TRUE(c.complete()) << c.why_not();
  auto v = c.counters().at(0).read();
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_GT(*v, 0u) << "cpu-clock counts nanoseconds";
}

// CPU time across a CPU going offline and online (the "bad input"):
// utilisation is computed against the CPUs online at the read and clamped,
// so a CPU that left (fewer online CPUs than the slices it closed) or came
// back (closing one long idle slice) never pushes utilisation outside
// [0, 1], power above the model's maximum, or energy out of balance.
TEST(energyActivity, CpuOfflineOnlineKeepsUtilisationAndEnergySane) {
  PowerModel m;
  m.units = 2;  // per vCPU: 2 x 0.74 W idle, 2 x 3.5 W max
  EnergyAccountant a(make_model_source(m), m, IdlePolicy::Node, 2);
  KernelReading k;
  k.cpus = k.online = 2;
  ASSERT_TRUE(a.advance(k, 1'000'000'000));
  // CPU 1 goes offline: one CPU online, but the closed slices of the
  // interval still hold both CPUs' busy time (1.6 s in 1 s).
  k.online = 1;
  k.busy_ns += 1'600'000'000;
  k.cgroup_ns[5] += 1'600'000'000;
  ASSERT_TRUE(a.advance(k, 2'000'000'000));
  EXPECT_LE(a.last_utilisation(), 1.0);
  EXPECT_GE(a.last_utilisation(), 0.0);
  EXPECT_LE(a.last_watts(), 7.0 + 1e-9);
  // CPU 1 comes back: its first switch closes a 1 s idle slice.
  k.online = 2;
  k.idle_ns += 2'000'000'000;
  k.busy_ns += 100'000'000;
  k.cgroup_ns[5] += 100'000'000;
  ASSERT_TRUE(a.advance(k, 3'000'000'000));
  EXPECT_NEAR(a.last_utilisation(), 0.05, 1e-9);
  EXPECT_EQ(a.workloads_nj() + a.idle_nj() + a.system_nj() + a.network_nj(), a.node_nj());
  EXPECT_EQ(a.cgroups().at(5).cpu_ns, 1'700'000'000u);
}

TEST(energyActivity, CpuListParser) {
  auto l = kagami::parse_cpu_list("0-3,6\n");
  ASSERT_TRUE(l);
  EXPECT_EQ(*l, (std::vector<int>{0, 1, 2, 3, 6}));
  EXPECT_TRUE(kagami::parse_cpu_list("")->empty());
  EXPECT_FALSE(kagami::parse_cpu_list("3-1"));
  EXPECT_FALSE(kagami::parse_cpu_list("a"));
  EXPECT_FALSE(kagami::parse_cpu_list("1,,2"));
  auto missing = kagami::online_cpus("/nonexistent/online");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/nonexistent/online"), std::string::npos);
}

TEST(energyActivity, OutputsSayWhichInputsAreInUse) {
  PowerModel m;
  m.units = 1;
  EnergyAccountant a(std::make_unique<FixedPower>(), m, IdlePolicy::Node, 2);
  Kernel kr;
  ASSERT_TRUE(a.advance(kr.k, 1));
  kr.step();
  ASSERT_TRUE(a.advance(kr.k, 1'000'000'001));
  OutputOptions o;
  o.node = "n1";
  o.activity_config = "auto";
  o.counter = "hw_instructions";
  o.counter_reason = "auto: hw_instructions counted on every online CPU";
  auto find = [](const std::vector<kagami::core::MetricFamily>& fams, const std::string& n) {
    for (const auto& f : fams)
      if (f.name == n) return &f;
    return static_cast<const kagami::core::MetricFamily*>(nullptr);
  };
  auto fams = energy_metrics(a, {}, o);
  const auto* ins = find(fams, "kagami_energy_instructions_total");
  ASSERT_NE(ins, nullptr);
  EXPECT_EQ(ins->type, "counter");
  bool node = false, proc = false;
  for (const auto& s : ins->samples) {
    if (s.labels.at("level") == "node") node = s.value == 4000;
    if (s.labels.at("level") == "process" && s.labels.count("pid") && s.labels.at("pid") == "10") proc = s.value == 3000;
  }
  EXPECT_TRUE(node && proc);
  const auto* info = find(fams, "kagami_energy_power_source_info");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->samples[0].labels.at("activity"), "hw_instructions");
  EXPECT_EQ(info->samples[0].labels.at("perf_counters"), "in_use");
  auto j = energy_json(a, {}, o);
  EXPECT_EQ(j["inputs"]["activity"], "hw_instructions");
  EXPECT_EQ(j["inputs"]["counter_intervals"], 1);
  // No counter: no counter family, activity cpu_time and the reason.
  o.counter.clear();
  o.counter_reason = "auto: hw_instructions unavailable, CPU time used: ENOENT";
  kr.k.counter.clear();
  kr.step();
  ASSERT_TRUE(a.advance(kr.k, 2'000'000'001));
  fams = energy_metrics(a, {}, o);
  EXPECT_EQ(find(fams, "kagami_energy_instructions_total"), nullptr);
  info = find(fams, "kagami_energy_power_source_info");
  EXPECT_EQ(info->samples[0].labels.at("activity"), "cpu_time");
  EXPECT_EQ(info->samples[0].labels.at("perf_counters"), "unavailable");
  EXPECT_NE(info->samples[0].labels.at("perf_counters_reason").find("ENOENT"), std::string::npos);
  EXPECT_EQ(counter_metric_name("sw_cpu_clock"), "kagami_energy_activity_counter_total");
}

}  // namespace
