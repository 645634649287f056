// Program manager costs (docs/performance.md):
//   - load + verify + attach + pin of one program, per hook (tc, xdp, xdp-chain)
//   - replace (verify the new version + swap + repin), with the state map
//     reused (cost must not grow with entries) or migrated by Extend (grows
//     linearly: every entry is copied from userspace)
//   - load time against the declared map size (preallocated hash maps)
// Run as root:  build/bench/platform_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>

#include "core/program_manager.h"
#include "support/netns.h"

namespace {

using namespace kagami;

std::string obj(const std::string& n) { return std::string(KAGAMI_BPF_DIR) + "/" + n + ".bpf.o"; }

core::LoadRequest req(const std::string& name, const std::string& o, const std::string& point) {
  core::LoadRequest r;
  r.name = name;
  r.source.path = obj(o);
  if (!point.empty()) r.attach.push_back(*core::AttachPoint::parse(point));
  return r;
}

// One manager, pin root and test host for the whole run.
struct Env {
  Env() {
    spdlog::set_level(spdlog::level::warn);
    pin_root = "/sys/fs/bpf/kagami-test-bench-" + std::to_string(getpid());
    host = *net.add_host();
    core::ManagerOptions o;
    o.pin_root = pin_root;
    auto m = core::ProgramManager::create(o);
    if (!m) {
      fprintf(stderr, "%s\n", m.error().message.c_str());
      std::exit(1);
    }
    pm = std::move(*m);
  }
  ~Env() {
    for (const auto& p : pm->list()) (void)pm->unload(p.name);
    pm.reset();
    std::error_code ec;
    std::filesystem::remove_all(pin_root, ec);
  }
  std::string pin_root;
  test::TestNetwork net;
  test::TestHost host;
  std::unique_ptr<core::ProgramManager> pm;
};

Env& env() {
  static Env e;
  return e;
}

void fill(const std::string& name, int64_t n) {
  auto fd = env().pm->map_fd(name, "counts");
  for (uint32_t k = 1; k <= n; k++) {
    uint64_t v = k;
    bpf_map_update_elem(fd->get(), &k, &v, BPF_ANY);
  }
}

void check(benchmark::State& st, const Error& e) { st.SkipWithError(e.message.c_str()); }

void BM_LoadAttach(benchmark::State& st, const std::string& o, const std::string& kind) {
  auto& e = env();
  const std::string point = kind == "tc" ? "tc:" + e.host.host_if + ":egress" : "xdp:" + e.host.host_if;
  for (auto _ : st) {
    auto r = e.pm->load(req("b", o, point));
    st.PauseTiming();
    if (!r) {
      check(st, r.error());
      break;
    }
    (void)e.pm->unload("b");
    st.ResumeTiming();
  }
}
BENCHMARK_CAPTURE(BM_LoadAttach, tc_count_1k, std::string("count_v1"), std::string("tc"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_LoadAttach, xdp_count_1k, std::string("count_v1"), std::string("xdp"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_LoadAttach, xdp_chain, std::string("chain_count"), std::string("xdp"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_LoadAttach, tc_count_512k, std::string("count_big_v1"), std::string("tc"))->Unit(benchmark::kMillisecond);

// Replace with identical layout: maps reused in place; Arg = populated entries.
void BM_ReplaceReuse(benchmark::State& st) {
  auto& e = env();
  if (!e.pm->load(req("r", "count_big_v1", "tc:" + e.host.host_if + ":egress"))) {
    st.SkipWithError("load failed");
    return;
  }
  fill("r", st.range(0));
  int i = 0;
  for (auto _ : st) {
    auto r = e.pm->replace("r", req("r", i++ % 2 ? "count_big_v1" : "count_big_v2", ""));
    if (!r) {
      check(st, r.error());
      break;
    }
  }
  (void)e.pm->unload("r");
}
BENCHMARK(BM_ReplaceReuse)->Arg(1000)->Arg(65536)->Arg(524288)->Unit(benchmark::kMillisecond);

// Replace with a changed value layout migrated by Extend: every entry copied.
void BM_ReplaceExtend(benchmark::State& st) {
  auto& e = env();
  for (auto _ : st) {
    st.PauseTiming();
    (void)e.pm->unload("x");
    if (!e.pm->load(req("x", "count_big_v1", "tc:" + e.host.host_if + ":egress"))) {
      st.SkipWithError("load failed");
      break;
    }
    fill("x", st.range(0));
    auto rq = req("x", "count_big_v3", "");
    rq.migrations.push_back({"counts", core::MapMigration::Rule::Extend});
    st.ResumeTiming();
    auto r = e.pm->replace("x", rq);
    if (!r) {
      check(st, r.error());
      break;
    }
  }
  (void)e.pm->unload("x");
}
BENCHMARK(BM_ReplaceExtend)->Arg(1000)->Arg(65536)->Arg(524288)->Iterations(3)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
