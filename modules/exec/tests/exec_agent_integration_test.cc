// The exec module through a real `kagami agent` process (root): history via
// `kagami events --json` (control socket), the follow stream via
// `kagami events --follow --json` (HTTP, chunked JSON lines), /metrics via
// curl, and a clean stop that ends the follower.
//
// Scope: the agent watches a cgroup of the test's own (exec.cgroup), and
// the test's children move into it before they exec a copy of /bin/true
// with a unique name, so other execs on the machine never match.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "bpf/kernel.h"
#include "support/netns.h"
#include "support/agent_process.h"
#include "support/shell.h"

namespace kagami {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kKagami = std::string(KAGAMI_BINARY_DIR) + "/src/exe/kagami";

using test::Cmd;
using test::sh;

std::vector<json> json_lines(const std::string& text, const std::string& filename) {
  std::vector<json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("filename", "") == filename) out.push_back(j);
  }
  return out;
}

class ExecAgentProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::is_root()) GTEST_SKIP() << "needs root (CAP_BPF, CAP_PERFMON, cgroup writes): run the test as root";
    const std::string root = bpf::cgroup2_root();
    if (root.empty()) GTEST_SKIP() << "needs a cgroup v2 hierarchy (none mounted)";
    const std::string id = std::to_string(getpid());
    dir_ = fs::temp_directory_path() / ("kagami-exec-it-" + id);
    fs::create_directories(dir_);
    cgroup_ = root + "/kagami-exec-it-" + id;
    ASSERT_EQ(::mkdir(cgroup_.c_str(), 0755), 0) << cgroup_ << ": " << std::strerror(errno);
    pin_root_ = "/sys/fs/bpf/kagami-test-" + id + "-execit";
    socket_ = (dir_ / "k.sock").string();
    marker_ = (dir_ / "kagami-it-marker").string();
    fs::copy_file("/bin/true", marker_);
    fs::permissions(marker_, fs::perms::owner_all);
    std::ofstream(dir_ / "kagami.yaml") << "agent:\n  http: \"127.0.0.1:0\"\n  socket: " << socket_
                                        << "\n  pin_root: " << pin_root_ << "\n  state_file: "
                                        << (dir_ / "state.json").string() << "\nmodules:\n  exec:\n    rate: 0\n"
                                        << "    cgroup: " << cgroup_ << "\n";
  }
  void TearDown() override {
    stop_agent(SIGKILL);
    std::error_code ec;
    if (!cgroup_.empty()) ::rmdir(cgroup_.c_str());
    if (!pin_root_.empty()) fs::remove_all(pin_root_, ec);
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  void start_agent() {
    agent_ = std::make_unique<test::AgentProcess>(kKagami, socket_, (dir_ / "agent.log").string());
    const std::string why = agent_->start((dir_ / "kagami.yaml").string());
    ASSERT_TRUE(why.empty()) << why;
    http_ = agent_->http();
  }
  int stop_agent(int sig) { return agent_ ? agent_->stop(sig) : -1; }
  Cmd kagami(const std::string& args) const { return sh(kKagami + " --socket " + socket_ + " " + args); }

  // n children join the test cgroup and exec the marker.
  void run_marker(int n) {
    const std::string procs = cgroup_ + "/cgroup.procs";
    for (int i = 0; i < n; ++i) {
      pid_t p = fork();
      if (p == 0) {
        int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0 || ::write(fd, "0", 1) != 1) _exit(101);
        ::close(fd);
        char* const argv[] = {const_cast<char*>(marker_.c_str()), nullptr};
        ::execv(marker_.c_str(), argv);
        _exit(102);
      }
      int st = 0;
      waitpid(p, &st, 0);
      ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
  }

  fs::path dir_;
  std::string cgroup_, pin_root_, socket_, marker_, http_;
  std::unique_ptr<test::AgentProcess> agent_;
};

TEST_F(ExecAgentProcess, HistoryFollowAndMetrics) {
  ASSERT_NO_FATAL_FAILURE(start_agent());
  Cmd follow{-1, {}};
  std::thread follower([&] { follow = kagami("events --follow --module exec --json"); });
  // The follower is connected once the bus counts it.
  for (int i = 0; i < 100; ++i) {
    auto s = sh("curl -sf http://" + http_ + "/api/v1/events/stats");
    if (s.rc == 0 && json::parse(s.out, nullptr, false).value("subscribers", 0) == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_NO_FATAL_FAILURE(run_marker(3));

  std::vector<json> events;
  for (int i = 0; i < 50 && events.size() < 3; ++i) {
    auto r = kagami("events --module exec --json --limit 0");
    ASSERT_EQ(r.rc, 0) << r.out;
    events = json_lines(r.out, marker_);
    if (events.size() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(events.size(), 3u);
  for (const auto& e : events) {
    EXPECT_EQ(e["module"], "exec");
    EXPECT_EQ(e["ppid"], getpid());
    EXPECT_EQ(e["uid"], 0);
    EXPECT_GT(e["pid"].get<int>(), 0);
  }
  auto human = kagami("events --module exec");
  ASSERT_EQ(human.rc, 0);
  EXPECT_NE(human.out.find("filename=" + marker_), std::string::npos) << human.out;

  auto m = sh("curl -sf http://" + http_ + "/metrics");
  ASSERT_EQ(m.rc, 0);
  EXPECT_NE(m.out.find("kagami_events_total{kind=\"exec\",module=\"exec\""), std::string::npos);
  EXPECT_NE(m.out.find("kagami_events_dropped_total{cause=\"rate_limit\",module=\"exec\""), std::string::npos);
  std::ofstream(dir_ / "metrics.txt") << m.out;
  auto prom = sh("command -v promtool >/dev/null || exit 0; promtool check metrics < " + (dir_ / "metrics.txt").string());
  EXPECT_EQ(prom.rc, 0) << prom.out;
  auto h = sh("curl -sf 'http://" + http_ + "/api/v1/events?module=exec&limit=0'");
  ASSERT_EQ(h.rc, 0);
  int over_http = 0;
  const json hist = json::parse(h.out);
  for (const auto& e : hist["events"]) over_http += e.value("filename", "") == marker_;
  EXPECT_EQ(over_http, 3) << h.out.substr(0, 2000);

  // Stopping the agent ends the follower cleanly, after it got every event.
  EXPECT_EQ(stop_agent(SIGTERM), 0);
  follower.join();
  EXPECT_EQ(follow.rc, 0) << follow.out;
  auto followed = json_lines(follow.out, marker_);
  ASSERT_EQ(followed.size(), 3u) << follow.out;
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(followed[i]["seq"], events[i]["seq"]);
}

}  // namespace
}  // namespace kagami
