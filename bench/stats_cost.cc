// What the agent costs programs it does not own (issue 7, "the agent does
// not tax the node"): a held-out XDP program (platform.bpf.o's empty_xdp,
// loaded here, never given to the agent) timed by BPF_PROG_TEST_RUN
//   no_agent          no agent running
//   agent_on_demand   `kagami agent` idle with agent.bpf_stats: on_demand (default)
//   agent_always      `kagami agent` idle with agent.bpf_stats: always
// While kernel BPF stats are on, every run of every BPF program on the node
// pays for two clock reads; the counter ns_per_run shows it. Needs root.
// Nothing else may hold BPF_ENABLE_STATS meanwhile (another agent, bpftop).
// Figures go to docs/performance.md ("BPF run-time stats").
#include <benchmark/benchmark.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "bpf/test_run.h"

namespace {

namespace fs = std::filesystem;

const std::string kKagami = std::string(KAGAMI_BINARY_DIR) + "/src/exe/kagami";

class Agent {
 public:
  explicit Agent(const std::string& stats) {
    dir_ = fs::temp_directory_path() / ("kagami-stats-bench-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    const std::string cfg = (dir_ / "k.yaml").string();
    std::ofstream(cfg) << "agent:\n  http: \"127.0.0.1:0\"\n  socket: " << (dir_ / "k.sock").string()
                       << "\n  pin_root: /sys/fs/bpf/kagami-stats-bench-" << getpid()
                       << "\n  bpf_stats: " << stats << "\n";
    pid_ = fork();
    if (pid_ == 0) {
      int fd = ::open("/dev/null", O_WRONLY);
      dup2(fd, 1);
      dup2(fd, 2);
      execl(kKagami.c_str(), "kagami", "agent", "--config", cfg.c_str(), nullptr);
      _exit(127);
    }
    for (int i = 0; i < 100 && !fs::exists(dir_ / "k.sock"); i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // idle
  }
  ~Agent() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    std::error_code ec;
    fs::remove_all(dir_, ec);
    fs::remove_all("/sys/fs/bpf/kagami-stats-bench-" + std::to_string(getpid()), ec);
  }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
};

void BM_HeldOutXdp(benchmark::State& state, const std::string& mode) {
  bpf_object* obj = bpf_object__open_file((std::string(KAGAMI_BPF_DIR) + "/platform.bpf.o").c_str(), nullptr);
  if (!obj || bpf_object__load(obj) != 0) {
    state.SkipWithError("cannot load platform.bpf.o (needs root)");
    return;
  }
  const int fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "empty_xdp"));
  std::unique_ptr<Agent> agent;
  if (mode != "none") agent = std::make_unique<Agent>(mode);
  std::vector<uint8_t> pkt(64, 0);
  pkt[12] = 0x08;  // IPv4 ethertype
  kagami::bpf::TestRunInput in;
  in.packet = pkt;
  in.repeat = 1000000;
  double sum = 0;
  int n = 0;
  for (auto _ : state) {
    auto r = kagami::bpf::test_run_xdp(fd, in);
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      break;
    }
    sum += r->duration_ns;
    n++;
  }
  state.counters["ns_per_run"] = n ? sum / n : 0;
  agent.reset();
  bpf_object__close(obj);
}

BENCHMARK_CAPTURE(BM_HeldOutXdp, no_agent, std::string("none"))->Iterations(20)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_HeldOutXdp, agent_on_demand, std::string("on_demand"))->Iterations(20)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_HeldOutXdp, agent_always, std::string("always"))->Iterations(20)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
