// The security module inside the real agent (`kagami agent`, root): a policy
// file, an attack from a test pod (containerd-named cgroups), then
//   - `kagami events --json` shows the alert with rule, process, container, pod;
//   - the file sink is in Falco's shape (agent.events.format: falco), and so
//     are `kagami events --falco` and `kagami events --follow --falco`;
//   - /metrics has kagami_security_rule_matches_total for the rule, and
//     promtool accepts the exposition;
//   - `kagami apply` of a config whose policy is invalid fails with the
//     policy's line and column, and the old policy goes on matching.
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
#include "support/cgroup.h"
#include "support/netns.h"
#include "support/agent_process.h"
#include "support/shell.h"

namespace kagami {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::Cmd;
using test::sh;

const std::string kKagami = std::string(KAGAMI_BINARY_DIR) + "/src/exe/kagami";
const std::string kUid = "6f1b2c3d-0000-4000-8000-0000000000c1";
const std::string kCid = std::string(56, 'c') + "000000c1";

class SecurityAgentProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::is_root()) GTEST_SKIP() << "needs root (CAP_BPF, CAP_PERFMON, cgroup writes): run the test as root";
    if (bpf::cgroup2_root().empty()) GTEST_SKIP() << "needs a cgroup v2 hierarchy (none mounted)";
    ASSERT_FALSE(base_.path().empty()) << base_.error();
    std::string u = kUid;
    std::replace(u.begin(), u.end(), '-', '_');
    for (const std::string& r : {std::string("/kubepods.slice"), std::string("/kubepods.slice/kubepods-burstable.slice"),
                                 "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + u + ".slice",
                                 "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + u +
                                     ".slice/cri-containerd-" + kCid + ".scope"}) {
      made_.push_back(base_.path() + r);
      ASSERT_EQ(::mkdir(made_.back().c_str(), 0755), 0) << made_.back() << ": " << std::strerror(errno);
    }
    const std::string id = std::to_string(getpid());
    dir_ = fs::temp_directory_path() / ("kagami-sec-it-" + id);
    fs::create_directories(dir_);
    pin_root_ = "/sys/fs/bpf/kagami-test-" + id + "-secit";
    socket_ = (dir_ / "k.sock").string();
    write_policy("watched-open");
    write_config((dir_ / "policy.yaml").string(), (dir_ / "kagami.yaml").string());
  }
  void TearDown() override {
    stop_agent(SIGKILL);
    std::error_code ec;
    for (auto it = made_.rbegin(); it != made_.rend(); ++it)
      for (int i = 0; i < 100 && ::rmdir(it->c_str()) != 0 && errno == EBUSY; i++) ::usleep(10000);
    if (!pin_root_.empty()) fs::remove_all(pin_root_, ec);
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  void write_policy(const std::string& rule) {
    std::ofstream(dir_ / "policy.yaml") << "rules:\n  - name: " << rule
                                        << "\n    severity: error\n    event: open\n    selector: {pod_uid: " << kUid
                                        << "}\n    match: {path: /etc/hostname}\n";
  }
  void write_config(const std::string& policy, const std::string& file) {
    std::ofstream(file) << "agent:\n  http: \"127.0.0.1:0\"\n  socket: " << socket_ << "\n  pin_root: " << pin_root_
                        << "\n  state_file: " << (dir_ / "state.json").string()
                        << "\n  events: {format: falco, file: " << (dir_ / "events.falco").string()
                        << "}\nmodules:\n  security:\n    policy: " << policy << "\n    deny_cgroup: " << base_.path()
                        << "\n";
  }
  void start_agent() {
    agent_ = std::make_unique<test::AgentProcess>(kKagami, socket_, (dir_ / "agent.log").string());
    const std::string why = agent_->start((dir_ / "kagami.yaml").string());
    ASSERT_TRUE(why.empty()) << why;
    http_ = agent_->http();
  }
  int stop_agent(int sig) { return agent_ ? agent_->stop(sig) : -1; }
  Cmd kagami(const std::string& args) const { return sh(kKagami + " --socket " + socket_ + " " + args); }

  // A child in the pod opens /etc/hostname; returns its pid.
  pid_t attack() {
    pid_t p = fork();
    if (p == 0) {
      int fd = ::open((made_.back() + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, "0", 1) != 1) _exit(101);
      ::close(fd);
      _exit(::open("/etc/hostname", O_RDONLY) >= 0 ? 0 : 1);
    }
    int st = 0;
    waitpid(p, &st, 0);
    return p;
  }
  std::vector<json> events_of(pid_t pid) {
    std::vector<json> out;
    for (int i = 0; i < 50 && out.empty(); ++i) {
      auto r = kagami("events --module security --json --limit 0");
      std::istringstream in(r.out);
      std::string line;
      while (std::getline(in, line)) {
        json j = json::parse(line, nullptr, false);
        if (!j.is_discarded() && j.contains("process") && j["process"]["tgid"] == pid) out.push_back(j);
      }
      if (out.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return out;
  }

  test::TestCgroup base_;
  std::vector<std::string> made_;
  fs::path dir_;
  std::string pin_root_, socket_, http_;
  std::unique_ptr<test::AgentProcess> agent_;
};

TEST_F(SecurityAgentProcess, AlertsFalcoSinkMetricsAndBadPolicyKeepsTheOld) {
  ASSERT_NO_FATAL_FAILURE(start_agent());
  const pid_t a = attack();
  auto ev = events_of(a);
  ASSERT_EQ(ev.size(), 1u) << sh("cat " + (dir_ / "agent.log").string()).out;
  EXPECT_EQ(ev[0]["module"], "security");
  EXPECT_EQ(ev[0]["rule"], "watched-open");
  EXPECT_EQ(ev[0]["severity"], "error");
  EXPECT_EQ(ev[0]["file"]["path"], "/etc/hostname");
  EXPECT_EQ(ev[0]["process"]["ppid"], getpid());
  EXPECT_EQ(ev[0]["container"]["id"], kCid);
  EXPECT_EQ(ev[0]["container"]["pod_uid"], kUid);

  // The file sink, in Falco's shape.
  json falco;
  std::ifstream fin(dir_ / "events.falco");
  for (std::string line; std::getline(fin, line);) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("rule", "") == "watched-open") falco = j;
  }
  ASSERT_FALSE(falco.is_null()) << "no Falco-shaped line in the file sink";
  EXPECT_EQ(falco["priority"], "Error");
  EXPECT_EQ(falco["output_fields"]["proc.pid"], a);
  EXPECT_EQ(falco["output_fields"]["container.id"], kCid.substr(0, 12));
  EXPECT_EQ(falco["output_fields"]["k8s.pod.uid"], kUid);

  // `kagami events --falco`: the history in the same shape.
  json hist;
  auto fh = kagami("events --module security --falco --limit 0");
  ASSERT_EQ(fh.rc, 0) << fh.out;
  std::istringstream fin2(fh.out);
  for (std::string line; std::getline(fin2, line);) {
    json j = json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    if (j.value("rule", "") == "watched-open") hist = j;
  }
  ASSERT_FALSE(hist.is_null()) << fh.out;
  for (const char* k : {"rule", "priority", "time", "output", "output_fields", "source", "hostname"})
    EXPECT_TRUE(hist.contains(k)) << k << ": " << hist.dump();
  EXPECT_EQ(hist["priority"], "Error");
  EXPECT_EQ(hist["output_fields"]["proc.pid"], a);
  EXPECT_EQ(hist["output_fields"]["fd.name"], "/etc/hostname");
  EXPECT_EQ(hist["output_fields"]["k8s.pod.uid"], kUid);
  EXPECT_EQ(hist["time"], falco["time"]);
  EXPECT_EQ(hist["hostname"], falco["hostname"]);

  auto m = sh("curl -sf http://" + http_ + "/metrics");
  ASSERT_EQ(m.rc, 0);
  EXPECT_NE(m.out.find("kagami_security_rule_matches_total{action=\"alert\",node="), std::string::npos) << m.out;
  EXPECT_NE(m.out.find("rule=\"watched-open\"} 1"), std::string::npos);
  std::ofstream(dir_ / "metrics.txt") << m.out;
  auto prom = sh("command -v promtool >/dev/null || exit 0; promtool check metrics < " + (dir_ / "metrics.txt").string());
  EXPECT_EQ(prom.rc, 0) << prom.out;

  // An invalid policy: the apply fails naming line and column; the old
  // policy keeps matching.
  std::ofstream(dir_ / "bad.yaml") << "rules:\n  - name: x\n    event: opn\n";
  write_config((dir_ / "bad.yaml").string(), (dir_ / "bad-config.yaml").string());
  auto ap = kagami("apply " + (dir_ / "bad-config.yaml").string());
  EXPECT_NE(ap.rc, 0) << ap.out;
  EXPECT_NE(ap.out.find("bad.yaml:3:12"), std::string::npos) << ap.out;
  const pid_t b = attack();
  auto ev2 = events_of(b);
  ASSERT_EQ(ev2.size(), 1u);
  EXPECT_EQ(ev2[0]["rule"], "watched-open");

  // A valid new policy replaces it.
  write_policy("renamed-open");
  auto ok = kagami("apply " + (dir_ / "kagami.yaml").string());
  EXPECT_EQ(ok.rc, 0) << ok.out;
  const pid_t c = attack();
  auto ev3 = events_of(c);
  ASSERT_EQ(ev3.size(), 1u);
  EXPECT_EQ(ev3[0]["rule"], "renamed-open");

  // `kagami events --follow --falco`: new events streamed in Falco's shape.
  const std::string follow = (dir_ / "follow.falco").string();
  auto bg = sh("timeout 20 " + kKagami + " --socket " + socket_ + " events --follow --falco --module security > " +
               follow + " 2>&1 & echo $!");
  ASSERT_EQ(bg.rc, 0);
  const pid_t follower = std::stoi(bg.out);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // the follower subscribes
  const pid_t d = attack();
  json streamed;
  for (int i = 0; i < 100 && streamed.is_null(); ++i) {
    std::ifstream fs_in(follow);
    for (std::string line; std::getline(fs_in, line);) {
      json j = json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.contains("output_fields") && j["output_fields"].value("proc.pid", 0) == d) streamed = j;
    }
    if (streamed.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(follower, SIGTERM);
  ASSERT_FALSE(streamed.is_null()) << sh("cat " + follow).out;
  EXPECT_EQ(streamed["rule"], "renamed-open");
  EXPECT_EQ(streamed["priority"], "Error");
  EXPECT_EQ(streamed["output_fields"]["container.id"], kCid.substr(0, 12));
  EXPECT_FALSE(streamed["hostname"].get<std::string>().empty());
  EXPECT_EQ(stop_agent(SIGTERM), 0);
}

}  // namespace
}  // namespace kagami
