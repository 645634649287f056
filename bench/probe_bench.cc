// How long the feature probe and the identity service take.
//   BM_ProbeAll         every probe, uncached (what `kagami probe` and agent
//                       start-up pay once); target: well under a second
//   BM_ProbeCached      probe_features() after the first call
//   BM_Trial/<name>     one trial load (+attach) of a probe program
//   BM_ParseCgroupPath  one systemd-driver pod container path
//   BM_ResolveHit       Resolver::resolve of a cached pod container id
//   BM_ResolverWalk     a fresh Resolver's first walk of the cgroup v2 tree
#include <benchmark/benchmark.h>

#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "core/probe.h"
#include "identity/identity.h"

namespace {

void BM_ProbeAll(benchmark::State& state) {
  size_t n = 0;
  for (auto _ : state) {
    auto r = kagami::core::probe_features_fresh();
    n = r.features.size();
    benchmark::DoNotOptimize(r);
  }
  state.counters["features"] = static_cast<double>(n);
}
BENCHMARK(BM_ProbeAll)->Unit(benchmark::kMillisecond)->Iterations(5);

void BM_ProbeCached(benchmark::State& state) {
  kagami::core::probe_features();
  for (auto _ : state) benchmark::DoNotOptimize(kagami::core::probe_features());
}
BENCHMARK(BM_ProbeCached)->Unit(benchmark::kMicrosecond);

void BM_Trial(benchmark::State& state, const char* name) {
  for (auto _ : state) benchmark::DoNotOptimize(kagami::core::probe_detail::prog_type(name));
}
BENCHMARK_CAPTURE(BM_Trial, xdp_libbpf_probe, "xdp")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Trial, kprobe, "kprobe")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Trial, fentry, "fentry")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Trial, tp_btf, "tp_btf")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Trial, uprobe, "uprobe")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Trial, ext, "ext")->Unit(benchmark::kMillisecond);

void BM_ParseCgroupPath(benchmark::State& state) {
  const std::string p =
      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8f3c2a1b_4d5e_4f60_9a7b_1c2d3e4f5a6b"
      ".slice/cri-containerd-4b7f6c3e1d0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c.scope";
  for (auto _ : state) benchmark::DoNotOptimize(kagami::identity::parse_cgroup_path(p));
}
BENCHMARK(BM_ParseCgroupPath);

// A hit on a pod container's cgroup (made here, removed after): the cost a
// module pays per event it attributes.
void BM_ResolveHit(benchmark::State& state) {
  kagami::identity::Resolver r;
  std::vector<std::string> dirs;
  std::string rel = "/kagami-bench-" + std::to_string(::getpid());
  for (const char* c : {"/kubepods.slice", "/kubepods-burstable.slice",
                        "/kubepods-burstable-pod8f3c2a1b_4d5e_4f60_9a7b_1c2d3e4f5a6b.slice",
                        "/cri-containerd-4b7f6c3e1d0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c.scope"}) {
    if (dirs.empty()) {
      dirs.push_back(r.root() + rel);
      ::mkdir(dirs.back().c_str(), 0755);
    }
    rel += c;
    dirs.push_back(r.root() + rel);
    ::mkdir(dirs.back().c_str(), 0755);
  }
  auto id = r.id_of(rel);
  if (!id || !r.resolve(*id) || !r.resolve(*id)->is_pod()) {
    state.SkipWithError("cannot create a test cgroup (root? cgroup v2?)");
  } else {
    for (auto _ : state) benchmark::DoNotOptimize(r.resolve(*id));
  }
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) ::rmdir(it->c_str());
}
BENCHMARK(BM_ResolveHit);

void BM_ResolverWalk(benchmark::State& state) {
  size_t cached = 0;
  for (auto _ : state) {
    kagami::identity::Resolver r;
    auto id = r.id_of("/");
    if (!id || !r.resolve(*id)) {
      state.SkipWithError("no cgroup root");
      return;
    }
    cached = r.stats().cached;
  }
  state.counters["cgroups"] = static_cast<double>(cached);
}
BENCHMARK(BM_ResolverWalk)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
