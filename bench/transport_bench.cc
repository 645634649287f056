// Transport module costs (modules/transport/README.md, docs/performance.md):
//   - BM_CgroupSkbEgress: one run of transport_cg_egress over a UDP packet,
//     as the kernel times it (BPF_PROG_TEST_RUN, repeat 10000), with the
//     pod's entry already present (the steady state) -> counter ns_per_packet;
//   - BM_Collect/N: transport_metrics_from_fds with N cgroups and N drop keys
//     in the maps (no identity lookups), i.e. the map walk + folding cost of
//     one scrape.
// Run as root:  build/bench/transport_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <linux/types.h>

#include <vector>

#include "bpf/test_run.h"
#include "modules/transport/abi.h"
#include "modules/transport/transport.h"
#include "transport.skel.h"

namespace {

struct Skel {
  Skel() : s(transport_bpf__open_and_load()) {}
  ~Skel() {
    if (s) transport_bpf__destroy(s);
  }
  kagami::modules::TransportMapFds fds() const {
    return {bpf_map__fd(s->maps.trn_pod_traffic), bpf_map__fd(s->maps.trn_pod_tcp), bpf_map__fd(s->maps.trn_tcp_state),
            bpf_map__fd(s->maps.trn_drops),       bpf_map__fd(s->maps.trn_oth_traffic), bpf_map__fd(s->maps.trn_oth_tcp),
            bpf_map__fd(s->maps.trn_overflow),    bpf_map__fd(s->maps.trn_hook_runs)};
  }
  transport_bpf* s;
};

std::vector<uint8_t> udp_frame() {
  std::vector<uint8_t> f(14 + 20 + 8 + 64, 0);
  f[12] = 0x08;  // IPv4
  f[14] = 0x45;
  f[16] = 0;
  f[17] = static_cast<uint8_t>(f.size() - 14);
  f[22] = 64;
  f[23] = 17;  // UDP
  return f;
}

void BM_CgroupSkbEgress(benchmark::State& st) {
  Skel k;
  if (!k.s) return st.SkipWithError("load transport.bpf.o (root?)");
  auto frame = udp_frame();
  kagami::bpf::TestRunInput in;
  in.packet = frame;
  in.repeat = 10000;
  const int fd = bpf_program__fd(k.s->progs.transport_cg_egress);
  double ns = 0;
  int64_t runs = 0;
  for (auto _ : st) {
    auto r = kagami::bpf::test_run_skb(fd, in);
    if (!r) return st.SkipWithError(r.error().message.c_str());
    ns += r->duration_ns;
    runs++;
  }
  st.counters["ns_per_packet"] = runs ? ns / runs : 0;
}
BENCHMARK(BM_CgroupSkbEgress)->Unit(benchmark::kMillisecond);

void BM_Collect(benchmark::State& st) {
  Skel k;
  if (!k.s) return st.SkipWithError("load transport.bpf.o (root?)");
  auto f = k.fds();
  const auto n = static_cast<uint64_t>(st.range(0));
  for (uint64_t i = 1; i <= n; i++) {
    transport_cg_key key{i};
    transport_traffic t{};
    t.packets[1][1] = i;
    t.bytes[1][1] = i * 100;
    bpf_map_update_elem(f.pod_traffic, &key, &t, BPF_ANY);
    transport_drop_key dk{};
    dk.cgroup_id = i;
    dk.reason = 3;
    uint64_t one = 1;
    bpf_map_update_elem(f.drops, &dk, &one, BPF_ANY);
  }
  kagami::modules::TransportView v;
  v.node = "bench";
  size_t series = 0;
  for (auto _ : st) {
    auto m = kagami::modules::transport_metrics_from_fds(f, v);
    if (!m) return st.SkipWithError(m.error().message.c_str());
    series = 0;
    for (const auto& fam : *m) series += fam.samples.size();
    benchmark::DoNotOptimize(series);
  }
  st.counters["series"] = static_cast<double>(series);
}
BENCHMARK(BM_Collect)->Arg(100)->Arg(1000)->Arg(8192)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
