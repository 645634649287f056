// Replay throughput: frames per second through obs_replay with
// BPF_PROG_TEST_RUN (batches of frames per run, as `kagami replay` does),
// capture reading and normalization included, program load excluded (it is
// paid once per replay; see load/obs_replay below). bench/replay_vs_tshark.sh compares the
// whole command with tshark on a 100k-frame capture.
//
// Run as root:  build/bench/replay_bench
// Captures come from ../shared/pcaps (or $KAGAMI_PCAPS).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "support/pcaps.h"
#include "modules/obs/obs_object.h"
#include "replay/driver.h"
#include "replay/pcap_reader.h"

namespace {

using namespace kagami;

using kagami::test::pcaps_dir;

obs::ObsObject& obs_object() {
  static std::unique_ptr<obs::ObsObject> o = [] {
    spdlog::set_level(spdlog::level::warn);
    auto r = obs::ObsObject::open(/*replay_mode=*/true, obs::ObsObject::Programs::ReplayOnly);
    if (!r) {
      std::fprintf(stderr, "replay_bench: %s (needs root)\n", r.error().message.c_str());
      std::exit(1);
    }
    return std::move(*r);
  }();
  return *o;
}

void bm_replay(benchmark::State& st, std::string cap) {
  std::string path = pcaps_dir() + "/" + cap;
  if (!std::filesystem::exists(path)) {
    st.SkipWithError(("capture absent: " + path).c_str());
    return;
  }
  int fd = obs_object().replay_fd();
  uint64_t frames = 0, kernel_ns = 0;
  for (auto _ : st) {
    auto r = replay::PcapReader::open(path);
    if (!r) {
      st.SkipWithError(r.error().message.c_str());
      return;
    }
    auto s = replay::replay_batches(**r, fd);
    if (!s) {
      st.SkipWithError(s.error().message.c_str());
      return;
    }
    frames += s->replayed_frames;
    kernel_ns += s->kernel_ns;
  }
  st.SetItemsProcessed(static_cast<int64_t>(frames));
  st.counters["frames_per_s"] = benchmark::Counter(static_cast<double>(frames), benchmark::Counter::kIsRate);
  st.counters["kernel_ns_per_frame"] = frames ? static_cast<double>(kernel_ns) / frames : 0;
}

// The fixed cost in front of every replay: open + verify + load obs_replay
// (what `kagami replay` loads), and all three live programs for comparison.
void bm_load(benchmark::State& st, obs::ObsObject::Programs which) {
  spdlog::set_level(spdlog::level::warn);
  for (auto _ : st) {
    auto r = obs::ObsObject::open(true, which);
    if (!r) {
      st.SkipWithError(r.error().message.c_str());
      return;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  for (const char* cap : {"open5gs_testregistration.pcapng", "open5gs_srsenb.pcapng", "5greplay_oai.pcap"})
    benchmark::RegisterBenchmark((std::string("replay/") + cap).c_str(), bm_replay, std::string(cap))
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  benchmark::RegisterBenchmark("load/obs_replay", bm_load, obs::ObsObject::Programs::ReplayOnly)
      ->Unit(benchmark::kMillisecond)
      ->Iterations(5)
      ->UseRealTime();
  benchmark::RegisterBenchmark("load/obs_all_live", bm_load, obs::ObsObject::Programs::All)
      ->Unit(benchmark::kMillisecond)
      ->Iterations(5)
      ->UseRealTime();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
