// The attribution arithmetic and the interval accountant, on hand-made
// readings: conservation to the nanojoule over many intervals, monotonic
// counters under restarts, folding, network split, idle policies.
#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

#include "modules/energy/attribution.h"
#include "modules/energy/energy.h"
#include "modules/energy/power.h"

namespace {

using namespace kagami::modules::energy;

TEST(energyAttribution, ConservedExactlyOnRandomIntervals) {
  std::mt19937_64 rng(42);
  for (int iter = 0; iter < 20000; iter++) {
    IntervalInput in;
    in.node_nj = rng() % 100'000'000'000ull;
    in.idle_nj = rng() % 100'000'000'000ull;  // sometimes above node: capped
    const int n = static_cast<int>(rng() % 50);
    for (int i = 0; i < n; i++) in.workload_ns[rng() % 100] = rng() % 3'000'000'000ull;
    in.softirq_net_ns = rng() % 100'000'000;
    in.softirq_other_ns = rng() % 100'000'000;
    in.ksoftirqd_ns = rng() % 1000;
    if (rng() % 2)
      for (int i = 0; i < 5; i++) in.net_packets[rng() % 100] = rng() % 100000;
    in.idle_policy = rng() % 2 ? IdlePolicy::Share : IdlePolicy::Node;
    auto r = attribute(in);
    unsigned __int128 sum = r.idle_nj + r.system_nj + r.network_nj;
    for (const auto& [id, e] : r.workload_nj) sum += e;
    ASSERT_EQ(sum, in.node_nj) << "iteration " << iter;
  }
}

TEST(energyAttribution, SharesFollowCpuTime) {
  IntervalInput in;
  in.node_nj = 10'000;
  in.idle_nj = 4'000;
  in.workload_ns = {{1, 300}, {2, 100}};
  in.softirq_net_ns = 100;
  in.softirq_other_ns = 100;
  auto r = attribute(in);
  EXPECT_EQ(r.workload_nj[1], 3'000u);  // 6000 dynamic x 300/600
  EXPECT_EQ(r.workload_nj[2], 1'000u);
  EXPECT_EQ(r.network_nj, 1'000u);      // no packet counts: node-level network energy
  EXPECT_EQ(r.idle_nj, 4'000u);
  EXPECT_EQ(r.system_nj, 1'000u);       // other softirqs
  in.net_packets = {{2, 3}, {7, 1}};    // transport saw packets of cgroups 2 and 7
  r = attribute(in);
  EXPECT_EQ(r.workload_nj[2], 1'750u);
  EXPECT_EQ(r.workload_nj[7], 250u);
  EXPECT_EQ(r.workload_net_nj[2], 750u);
  EXPECT_EQ(r.network_nj, 0u);
  in.idle_policy = IdlePolicy::Share;
  r = attribute(in);
  EXPECT_EQ(r.workload_nj[1], 3'000u + 3'000u);  // idle split by cpu share among workloads
  EXPECT_EQ(r.idle_nj, 0u);
}

TEST(energyAttribution, NoActivityGoesToSystem) {
  IntervalInput in;
  in.node_nj = 5'000;
  in.idle_nj = 1'000;
  auto r = attribute(in);
  EXPECT_EQ(r.system_nj, 4'000u);
  EXPECT_EQ(r.idle_nj, 1'000u);
  EXPECT_EQ(mul_div(UINT64_MAX, UINT64_MAX, UINT64_MAX), UINT64_MAX);  // no overflow
}

// A power source under the test's control.
class FakePower : public PowerSource {
 public:
  std::vector<uint64_t> nj;
  size_t i = 0;
  bool fail_next = false;
  std::string kind() const override { return "fake"; }
  kagami::Result<EnergySample> sample(uint64_t, double) override {
    if (fail_next) {
      fail_next = false;
      return kagami::make_error("fake read error");
    }
    EnergySample s;
    s.energy_nj = nj.empty() ? 0 : nj[i++ % nj.size()];
    return s;
  }
  nlohmann::json describe() const override { return {{"kind", "fake"}}; }
  double error_ratio() const override { return 0; }
};

KernelReading reading(uint64_t busy, std::unordered_map<uint64_t, uint64_t> cg,
                      std::unordered_map<uint32_t, ProcReading> procs = {}) {
  KernelReading k;
  k.cpus = k.online = 2;
  k.busy_ns = busy;
  k.cgroup_ns = std::move(cg);
  k.procs = std::move(procs);
  return k;
}

// Network weights from transport (per cgroup) and obs (per interface, given
// to the interface's owner): first sight primes, later deltas count, a
// cgroup seen by both takes the larger delta, an unowned interface gives
// nothing, a counter that went backwards restarts, and the cumulative
// weights never decrease.
TEST(energyNetworkWeights, MergesTransportAndObsDeltas) {
  NetworkWeights w;
  // Interval 0: both prime. Slot 1 belongs to cgroup 100, slot 2 to nobody.
  w.transport({{100, 1000}, {200, 50}});
  w.obs({{1, 7000}, {2, 900}}, {{1, 100}, {2, 0}});
  EXPECT_TRUE(w.commit().empty()) << "history before the first interval is no weight";
  // Interval 1: transport +10 for 100 and +5 for 200; obs +30 on slot 1, +100 on slot 2.
  w.transport({{100, 1010}, {200, 55}});
  w.obs({{1, 7030}, {2, 1000}}, {{1, 100}, {2, 0}});
  auto c = w.commit();
  EXPECT_EQ(c.at(100), 30u) << "seen by both: the larger delta (obs sees forwarded packets too)";
  EXPECT_EQ(c.at(200), 5u);
  EXPECT_EQ(c.size(), 2u) << "slot 2 has no owner: its packets stay node-level";
  // Interval 2: transport sees more for 100 than obs; a new cgroup 300 primes;
  // slot 1 now belongs to cgroup 300 (pod replaced, interface reused).
  w.transport({{100, 1110}, {200, 55}, {300, 40}});
  w.obs({{1, 7050}}, {{1, 300}});
  c = w.commit();
  EXPECT_EQ(c.at(100), 130u);
  EXPECT_EQ(c.at(200), 5u);
  EXPECT_EQ(c.at(300), 20u) << "obs delta goes to the slot's current owner";
  // Interval 3: obs reloaded (counter restarted at 4): the delta is the new value.
  w.transport({{100, 1110}, {300, 40}});
  w.obs({{1, 4}}, {{1, 300}});
  c = w.commit();
  EXPECT_EQ(c.at(300), 24u);
  EXPECT_EQ(c.at(100), 130u) << "cumulative: a quiet cgroup keeps its total";
  EXPECT_TRUE(w.saw_transport() && w.saw_obs());
}

TEST(energyAccountant, ConservedAndMonotonicOverManyIntervals) {
  auto p = std::make_unique<FakePower>();
  p->nj = {1'000'000'007, 3, 999'999'999'999ull, 0, 123'456'789};
  PowerModel m;
  m.units = 2;
  EnergyAccountant a(std::move(p), m, IdlePolicy::Node, 2, /*top_n_cgroups=*/3, /*top_n_processes=*/2);
  std::mt19937_64 rng(7);
  std::unordered_map<uint64_t, uint64_t> cg;
  std::unordered_map<uint32_t, ProcReading> procs;
  uint64_t busy = 0, now = 1'000;
  ASSERT_TRUE(a.advance(reading(0, {}), now));
  double last_node = 0, last_other = 0;
  for (int i = 0; i < 5000; i++) {
    now += 1 + rng() % 2'000'000'000;
    for (int c = 0; c < 3; c++) {
      const uint64_t id = rng() % 8;
      const uint64_t d = rng() % 1'000'000;
      cg[id] += d;
      busy += d;
    }
    // fork-exit storm: processes come and go, some restart at a lower value (LRU eviction)
    const uint32_t tgid = static_cast<uint32_t>(rng() % 50);
    if (rng() % 3 == 0) procs.erase(tgid);
    else procs[tgid].cpu_ns = rng() % 4 == 0 ? rng() % 100 : procs[tgid].cpu_ns + rng() % 1'000'000;
    ASSERT_TRUE(a.advance(reading(busy, cg, procs), now));
    ASSERT_EQ(a.workloads_nj() + a.idle_nj() + a.system_nj() + a.network_nj(), a.node_nj()) << i;
    uint64_t folded = a.cgroup_other().energy_nj;
    for (const auto& [id, acc] : a.cgroup_series()) folded += acc.energy_nj;
    ASSERT_EQ(folded, a.workloads_nj()) << i;  // the folded cgroup series also sum to the workloads
    ASSERT_LE(a.cgroup_series().size(), 3u);
    ASSERT_LE(a.process_series().size(), 2u);
    const double node = static_cast<double>(a.node_nj());
    ASSERT_GE(node, last_node);
    ASSERT_GE(static_cast<double>(a.process_other().energy_nj), last_other);
    last_node = node;
    last_other = static_cast<double>(a.process_other().energy_nj);
  }
  EXPECT_GT(a.counter_resets(), 0u);
}

TEST(energyAccountant, PowerErrorFallsBackToModelForTheInterval) {
  auto p = std::make_unique<FakePower>();
  p->nj = {5'000};
  auto* raw = p.get();
  PowerModel m;
  m.units = 1;
  EnergyAccountant a(std::move(p), m, IdlePolicy::Node, 1);
  ASSERT_TRUE(a.advance(reading(0, {}), 1'000'000'000));
  raw->fail_next = true;
  auto w = a.advance(reading(500'000'000, {{9, 500'000'000}}), 2'000'000'000);
  ASSERT_TRUE(w);
  EXPECT_NE(w->find("model used"), std::string::npos) << *w;
  EXPECT_EQ(a.power_errors(), 1u);
  // 0.5 s busy in 1 s on 2 online CPUs: u = 25%, 0.74 + 0.25 x 2.76 = 1.43 W
  EXPECT_EQ(a.node_nj(), 1'430'000'000u);
  EXPECT_EQ(a.workloads_nj() + a.idle_nj() + a.system_nj() + a.network_nj(), a.node_nj());
  // A clock that does not advance skips the interval.
  auto s = a.advance(reading(600'000'000, {{9, 600'000'000}}), 2'000'000'000);
  ASSERT_TRUE(s);
  EXPECT_NE(s->find("skipped"), std::string::npos);
}

TEST(energyOutput, MetricsAreFiniteNonNegativeAndBounded) {
  auto p = std::make_unique<FakePower>();
  p->nj = {7'000'000'000};
  PowerModel m;
  m.units = 2;
  EnergyAccountant a(std::move(p), m, IdlePolicy::Node, 2, 2, 1);
  ASSERT_TRUE(a.advance(reading(0, {}), 1));
  std::unordered_map<uint32_t, ProcReading> procs{{10, {100, 1, "a"}}, {11, {200, 2, "b"}}};
  ASSERT_TRUE(a.advance(reading(600, {{1, 100}, {2, 200}, {3, 300}}, procs), 1'000'000'001));
  LabelFn labels = [](uint64_t id) {
    WorkloadLabels l;
    l.cgroup_path = "/cg" + std::to_string(id);
    if (id == 3) {
      l.pod_uid = "uid-3";
      l.container_id = std::string(64, 'a');
    }
    return l;
  };
  OutputOptions o;
  o.node = "n1";
  auto fams = energy_metrics(a, labels, o);
  size_t cg_series = 0;
  for (const auto& f : fams)
    for (const auto& s : f.samples) {
      EXPECT_TRUE(std::isfinite(s.value)) << f.name;
      EXPECT_GE(s.value, 0) << f.name;
      if (f.name == "kagami_energy_joules_total" && (s.labels.at("level") == "container" || s.labels.at("level") == "cgroup"))
        cg_series++;
    }
  EXPECT_EQ(cg_series, 3u);  // top 2 + other
  auto j = energy_json(a, labels, o);
  EXPECT_TRUE(j["conserved"].get<bool>());
  EXPECT_EQ(j["energy_nj"]["node"], 7'000'000'000ull);
  EXPECT_EQ(j["cgroups"].size(), 3u);
}

TEST(energyKpi, UpfBitsPerJoule) {
  EXPECT_EQ(upf_bits_per_joule(1000, 0), 0);  // no energy yet: 0, never inf/NaN
  EXPECT_DOUBLE_EQ(upf_bits_per_joule(1'000'000, 2'000'000'000), 4'000'000.0);  // 8 Mbit / 2 J
  auto p = std::make_unique<FakePower>();
  p->nj = {9'000'000'000};  // 9 J in 1 s: above the model's idle (0.74 J)
  PowerModel m;
  m.units = 1;
  EnergyAccountant a(std::move(p), m, IdlePolicy::Node, 1);
  ASSERT_TRUE(a.advance(reading(0, {}), 1));
  ASSERT_TRUE(a.advance(reading(300, {{1, 100}, {2, 200}}), 1'000'000'001));
  LabelFn labels = [](uint64_t id) {
    WorkloadLabels l;
    l.cgroup_path = id == 2 ? "/kubepods.slice/upf-pod/c1" : "/system.slice/x";
    return l;
  };
  const uint64_t upf = energy_of_prefixes(a, labels, {"/kubepods.slice/upf-pod"});
  EXPECT_EQ(upf, a.cgroups().at(2).energy_nj);
  EXPECT_GT(upf, 0u);
  auto c = parse_energy_config({{"upf_cgroups", {"/kubepods.slice/upf-pod"}}});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->upf_cgroups.size(), 1u);
}

}  // namespace
