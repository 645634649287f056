// Agent idle cost: resident memory and CPU of `kagami agent` over ~10 s with
// nothing to do, (a) with no modules and no programs, (b) with two programs
// (empty_xdp + empty_tc on a TestNetwork host). Numbers go to
// docs/performance.md. Needs root (the agent mounts bpffs and loads BPF).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/netns.h"

namespace {

namespace fs = std::filesystem;

const std::string kKagami = std::string(KAGAMI_BINARY_DIR) + "/src/exe/kagami";

double rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6));
  return 0;
}

double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream rest(all.substr(all.rfind(')') + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15; ++i) {  // fields 14 and 15 (1-based) are utime and stime
    rest >> f;
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void AgentIdle(benchmark::State& state) {
  if (!kagami::test::is_root()) {
    state.SkipWithError("needs root");
    return;
  }
  const bool with_programs = state.range(0) != 0;
  const std::string id = std::to_string(getpid());
  const fs::path dir = fs::temp_directory_path() / ("kagami-bench-idle-" + id);
  const std::string pin_root = "/sys/fs/bpf/kagami-test-" + id + "-bench";
  fs::create_directories(dir);
  kagami::test::TestNetwork net;
  std::string cfg = "agent: {http: \"127.0.0.1:0\", socket: " + (dir / "k.sock").string() +
                    ", pin_root: " + pin_root + "}\n";
  if (with_programs) {
    auto h = net.add_host();
    if (!h) {
      state.SkipWithError(h.error().message.c_str());
      return;
    }
    fs::copy_file(std::string(KAGAMI_BINARY_DIR) + "/bpf/platform.bpf.o", dir / "platform.bpf.o",
                  fs::copy_options::overwrite_existing);
    cfg += "programs:\n  - {name: x, object: platform.bpf.o, attach: [\"xdp:" + h->host_if +
           "@empty_xdp\"]}\n  - {name: t, object: platform.bpf.o, attach: [\"tc:" + h->host_if +
           ":ingress@empty_tc\"]}\n";
  }
  std::ofstream(dir / "kagami.yaml") << cfg;
  for (auto _ : state) {
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open("/dev/null", O_WRONLY);
      dup2(fd, 1);
      dup2(fd, 2);
      execl(kKagami.c_str(), "kagami", "agent", "--config", (dir / "kagami.yaml").c_str(), nullptr);
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));  // start-up is not idle time
    const double cpu0 = cpu_seconds(pid);
    std::this_thread::sleep_for(std::chrono::seconds(10));
    const double cpu1 = cpu_seconds(pid);
    state.counters["rss_MiB"] = rss_kib(pid) / 1024.0;
    state.counters["cpu_percent"] = (cpu1 - cpu0) / 10.0 * 100.0;
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
  }
  std::error_code ec;
  fs::remove_all(pin_root, ec);
  fs::remove_all(dir, ec);
}
BENCHMARK(AgentIdle)->Arg(0)->Arg(1)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
