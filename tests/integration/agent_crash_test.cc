// Crash consistency of an apply (docs/program-manager.md, "Crash
// consistency"): the real `kagami agent` is killed (SIGKILL, through the
// test-only KAGAMI_TEST_CRASH_AFTER=N hook) right after the Nth change of
// kernel or state-file state of an apply that loads, replaces and unloads,
// for N = 1, 2, ... until the apply finishes. After each kill the agent is
// restarted and must converge without any manual step: `prog list`, the pin
// tree and the kernel agree, every program is labelled with its true origin,
// no program runs unlisted, and applying again works.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "support/netns.h"
#include "support/shell.h"

namespace kagami {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kKagami = std::string(KAGAMI_BINARY_DIR) + "/src/exe/kagami";

using test::Cmd;
using test::sh;

// Every program in the kernel whose name starts with "kcrash_" (only this
// test loads kcrash objects): id -> name.
std::map<uint32_t, std::string> kernel_kcrash_progs() {
  std::map<uint32_t, std::string> out;
  uint32_t id = 0;
  while (bpf_prog_get_next_id(id, &id) == 0) {
    Fd fd(bpf_prog_get_fd_by_id(id));
    if (!fd.valid()) continue;  // freed meanwhile
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
    const std::string name = info.name;
    if (name.rfind("kcrash_", 0) == 0) out[id] = name;
  }
  return out;
}

// Kernel prog ids that some link runs.
std::set<uint32_t> linked_prog_ids() {
  std::set<uint32_t> out;
  uint32_t id = 0;
  while (bpf_link_get_next_id(id, &id) == 0) {
    Fd fd(bpf_link_get_fd_by_id(id));
    if (!fd.valid()) continue;
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0) out.insert(info.prog_id);
  }
  return out;
}

std::string sha256_of(const std::string& path) {
  auto r = sh("sha256sum " + path);
  return r.out.substr(0, 64);
}

class AgentCrash : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::is_root()) GTEST_SKIP() << "needs root (CAP_BPF, CAP_NET_ADMIN): run the test as root";
    const std::string id = std::to_string(getpid());
    dir_ = fs::temp_directory_path() / ("kagami-crash-" + id);
    fs::create_directories(dir_);
    pin_root_ = "/sys/fs/bpf/kagami-test-" + id + "-crash";
    socket_ = (dir_ / "run" / "k.sock").string();
    for (const char* o : {"kcrash_v1", "kcrash_v2"})
      fs::copy_file(std::string(KAGAMI_BPF_DIR) + "/" + o + ".bpf.o", dir_ / (std::string(o) + ".bpf.o"));
    auto h1 = net_.add_host();
    ASSERT_TRUE(h1.has_value()) << h1.error().message;
    auto h2 = net_.add_host();
    ASSERT_TRUE(h2.has_value()) << h2.error().message;
    if1_ = h1->host_if;
    if2_ = h2->host_if;
  }

  void TearDown() override {
    stop_agent(SIGKILL);
    // Unload through a clean agent where possible, so raw_tp links (which
    // no interface takes down) go too; then remove whatever is left.
    if (!pin_root_.empty() && fs::exists(pin_root_)) {
      write_config(agent_section());
      start_agent("");
      stop_agent(SIGTERM);
    }
    std::error_code ec;
    if (!pin_root_.empty()) fs::remove_all(pin_root_, ec);
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  std::string agent_section() const {
    return "agent:\n  http: \"127.0.0.1:0\"\n  socket: " + socket_ + "\n  pin_root: " + pin_root_ + "\n";
  }
  // A: a (XDP link), b (TC filter), c (TC, v1), r (raw_tp link).
  std::string config_a() const {
    return agent_section() + "programs:\n" +
           "  - {name: a, object: kcrash_v1.bpf.o, attach: [\"xdp:" + if1_ + "@kcrash_xdp\"]}\n" +
           "  - {name: b, object: kcrash_v1.bpf.o, attach: [\"tc:" + if1_ + ":ingress@kcrash_tc\"]}\n" +
           "  - {name: c, object: kcrash_v1.bpf.o, attach: [\"tc:" + if1_ + ":egress@kcrash_tc\"]}\n" +
           "  - {name: r, object: kcrash_v1.bpf.o, attach: [\"raw_tp:sys_enter@kcrash_raw_tp\"]}\n" +
           "  - {name: q, object: kcrash_v1.bpf.o, attach: [\"raw_tp:sys_enter@kcrash_raw_tp\"]}\n";
  }
  // B: loads d (XDP link) and t (raw_tp link), replaces c (TC filter, in
  // place) and q (raw_tp: new link staged, old one detached at commit) with
  // v2, unloads a, b, r.
  std::string config_b() const {
    return agent_section() + "programs:\n" +
           "  - {name: c, object: kcrash_v2.bpf.o, attach: [\"tc:" + if1_ + ":egress@kcrash_tc\"]}\n" +
           "  - {name: d, object: kcrash_v1.bpf.o, attach: [\"xdp:" + if2_ + "@kcrash_xdp\"]}\n" +
           "  - {name: t, object: kcrash_v1.bpf.o, attach: [\"raw_tp:sys_enter@kcrash_raw_tp\"]}\n" +
           "  - {name: q, object: kcrash_v2.bpf.o, attach: [\"raw_tp:sys_enter@kcrash_raw_tp\"]}\n";
  }
  void write_config(const std::string& text) const { std::ofstream(dir_ / "kagami.yaml", std::ios::trunc) << text; }

  // Starts the agent; with crash_after set, returns once it died (true) or
  // came up (false: the apply finished before the Nth step).
  bool start_agent(const std::string& crash_after, const std::string& step_delay_ms = "") {
    const std::string log = (dir_ / "agent.log").string();
    pid_ = fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      dup2(fd, 1);
      dup2(fd, 2);
      if (!crash_after.empty()) setenv("KAGAMI_TEST_CRASH_AFTER", crash_after.c_str(), 1);
      if (!step_delay_ms.empty()) setenv("KAGAMI_TEST_STEP_DELAY_MS", step_delay_ms.c_str(), 1);
      execl(kKagami.c_str(), "kagami", "agent", "--config", (dir_ / "kagami.yaml").c_str(), nullptr);
      _exit(127);
    }
    for (int i = 0; i < 300; ++i) {  // up to 30 s for start-up on a busy VM
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) return true;
        ADD_FAILURE() << "agent exited (status " << st << "); log:\n" << sh("tail -30 " + log).out;
        return true;
      }
      if (auto st = kagami("status --json"); st.rc == 0) {
        http_ = json::parse(st.out)["http"].get<std::string>();
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "agent did not come up; log:\n" << sh("tail -30 " + log).out;
    return false;
  }

  void stop_agent(int sig) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  Cmd kagami(const std::string& args) const { return sh(kKagami + " --socket " + socket_ + " " + args); }

  // The agent's list, its pins and the kernel agree, and the running set is
  // exactly `want` (name -> object variant) with origin config.
  void expect_consistent(const std::map<std::string, std::string>& want, const std::string& when) {
    SCOPED_TRACE(when);
    auto r = kagami("prog list --json");
    ASSERT_EQ(r.rc, 0) << r.out;
    const json list = json::parse(r.out);
    std::set<std::string> names;
    std::set<uint32_t> listed;
    for (const auto& p : list) {
      const std::string n = p["name"].get<std::string>();
      names.insert(n);
      EXPECT_EQ(p["origin"], "config") << n;
      if (want.count(n)) {
        EXPECT_EQ(p["sha256"], sha256_of((dir_ / (want.at(n) + ".bpf.o")).string())) << n;
      }
      for (const auto& pr : p["progs"]) listed.insert(pr["id"].get<uint32_t>());
      // Every listed program is pinned where the layout says.
      for (const auto& pr : p["progs"]) {
        Fd fd(bpf_obj_get((pin_root_ + "/" + n + "/progs/" + pr["name"].get<std::string>()).c_str()));
        ASSERT_TRUE(fd.valid()) << n << "/" << pr["name"];
        bpf_prog_info info{};
        uint32_t len = sizeof(info);
        ASSERT_EQ(bpf_obj_get_info_by_fd(fd.get(), &info, &len), 0);
        EXPECT_EQ(info.id, pr["id"].get<uint32_t>()) << n;
      }
    }
    std::set<std::string> want_names;
    for (const auto& [n, o] : want) want_names.insert(n);
    EXPECT_EQ(names, want_names);
    // The pin tree holds exactly the listed programs, none half-removed or
    // with a replace still staged.
    std::set<std::string> dirs;
    for (const auto& e : fs::directory_iterator(pin_root_)) {
      const std::string n = e.path().filename().string();
      if (n == "_xdp_chain") continue;
      dirs.insert(n);
      EXPECT_TRUE(fs::exists(e.path() / "meta")) << n;
      EXPECT_FALSE(fs::exists(e.path() / "next")) << n;
    }
    EXPECT_EQ(dirs, want_names);
    // No kcrash program runs unlisted: every one attached through a link
    // or a TC filter (which holds it alive) is one the agent lists. A
    // program freed a moment ago may linger in the id table, so unlisted
    // ones get a short grace period to go.
    std::map<uint32_t, std::string> stray;
    for (int i = 0; i < 30; ++i) {
      stray.clear();
      for (const auto& [id, name] : kernel_kcrash_progs())
        if (!listed.count(id)) stray[id] = name;
      if (stray.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (const auto& [id, name] : stray)
      ADD_FAILURE() << "kernel program " << id << " (" << name << ") is not listed"
                    << (linked_prog_ids().count(id) ? " and a link runs it" : "");
    // XDP: each interface runs exactly what the list says.
    auto xdp_id = [](const std::string& ifname) {
      LIBBPF_OPTS(bpf_xdp_query_opts, o);
      bpf_xdp_query(static_cast<int>(if_nametoindex(ifname.c_str())), 0, &o);
      return o.prog_id ? o.prog_id : (o.drv_prog_id ? o.drv_prog_id : o.skb_prog_id);
    };
    auto prog_id_named = [&](const std::string& n, const std::string& prog) -> uint32_t {
      for (const auto& p : list)
        if (p["name"] == n)
          for (const auto& pr : p["progs"])
            if (pr["name"] == prog) return pr["id"].get<uint32_t>();
      return 0;
    };
    EXPECT_EQ(xdp_id(if1_), want.count("a") ? prog_id_named("a", "kcrash_xdp") : 0u);
    EXPECT_EQ(xdp_id(if2_), want.count("d") ? prog_id_named("d", "kcrash_xdp") : 0u);
  }

  fs::path dir_;
  std::string pin_root_, socket_, if1_, if2_, http_;
  test::TestNetwork net_;
  pid_t pid_ = -1;
};

TEST_F(AgentCrash, KillAfterEachStepOfAnApplyRecoversOnRestart) {
  const std::map<std::string, std::string> want_a = {
      {"a", "kcrash_v1"}, {"b", "kcrash_v1"}, {"c", "kcrash_v1"}, {"r", "kcrash_v1"}, {"q", "kcrash_v1"}};
  const std::map<std::string, std::string> want_b = {
      {"c", "kcrash_v2"}, {"d", "kcrash_v1"}, {"t", "kcrash_v1"}, {"q", "kcrash_v2"}};
  write_config(config_a());
  ASSERT_FALSE(start_agent(""));
  expect_consistent(want_a, "initial config A");
  stop_agent(SIGTERM);

  int kills = 0;
  for (int n = 1; n <= 200; ++n) {
    // From A, apply B and die after the nth step.
    write_config(config_b());
    const bool died = start_agent(std::to_string(n));
    if (!died) {
      // The apply finished before step n: every step has been covered.
      expect_consistent(want_b, "apply B ran to the end with KAGAMI_TEST_CRASH_AFTER=" + std::to_string(n));
      stop_agent(SIGTERM);
      break;
    }
    ++kills;
    // Restart with the new config on odd steps and with the OLD config on
    // even ones: both must converge, whatever the kill interrupted (a
    // program the killed apply loaded is not mistaken for an ad hoc one
    // and kept under the old config).
    const bool to_b = n % 2 == 1;
    write_config(to_b ? config_b() : config_a());
    ASSERT_FALSE(start_agent("")) << "agent died on restart after a kill at step " << n;
    expect_consistent(to_b ? want_b : want_a,
                      "restart with config " + std::string(to_b ? "B" : "A") + " after a kill at step " +
                          std::to_string(n));
    if (HasFatalFailure() || HasFailure()) {
      ADD_FAILURE() << "agent log:\n" << sh("grep -v '^$' " + (dir_ / "agent.log").string() + " | tail -40").out;
      return;
    }
    // Applying again works, and brings the node back to A for the next kill.
    auto a = kagami("apply " + (dir_ / "kagami.yaml").string());
    EXPECT_EQ(a.rc, 0) << a.out;
    write_config(config_a());
    a = kagami("apply " + (dir_ / "kagami.yaml").string());
    ASSERT_EQ(a.rc, 0) << a.out;
    expect_consistent(want_a, "re-applied A after a kill at step " + std::to_string(n));
    stop_agent(SIGTERM);
  }
  // The apply has loads (2), replaces (2) and unloads (3) with several
  // kernel steps each: far more than a handful of crash points.
  EXPECT_GT(kills, 20);
  std::cout << "killed the agent at " << kills << " points of one apply\n";
}

// A state file that cannot be written fails the apply (it used to be
// logged and ignored, so a restart would label config programs as ad hoc),
// and, because the record is written before the load, nothing is loaded.
TEST_F(AgentCrash, UnwritableStateFileFailsTheApply) {
  write_config(agent_section() + "  state_file: /proc/kagami-no-such-dir/agent-state.json\n" +
               config_a().substr(agent_section().size()));
  ASSERT_FALSE(start_agent(""));
  auto st = kagami("status --json");
  ASSERT_EQ(st.rc, 0) << st.out;
  const json j = json::parse(st.out);
  const json last = j["stats"]["last_apply"];
  EXPECT_EQ(last["ok"], false) << last.dump();
  EXPECT_THAT(last.value("error", ""), ::testing::HasSubstr("writing state file")) << last.dump();
  auto r = kagami("prog list --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(json::parse(r.out).empty()) << r.out;
  EXPECT_TRUE(kernel_kcrash_progs().empty());
  stop_agent(SIGTERM);
}

// /metrics does not wait for an apply (issue 7): with every kernel step of
// an apply slowed down (KAGAMI_TEST_STEP_DELAY_MS, test-only), a scrape in
// the middle of it answers, and with the counts from before the apply.
TEST_F(AgentCrash, MetricsAnswerWhileAnApplyRuns) {
  write_config(agent_section());
  ASSERT_FALSE(start_agent("", "250"));
  auto scrape = [&] { return sh("curl -sf --max-time 5 http://" + http_ + "/metrics"); };
  const std::string applied_once = "kagami_agent_config_applies_total{result=\"ok\"} 1";
  auto m = scrape();
  ASSERT_EQ(m.rc, 0) << m.out;
  ASSERT_THAT(m.out, ::testing::HasSubstr(applied_once));
  // Four loads of several steps each: the apply takes many seconds.
  write_config(config_a());
  ASSERT_EQ(kill(pid_, SIGHUP), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  m = scrape();
  ASSERT_EQ(m.rc, 0) << "/metrics did not answer during the apply: " << m.out;
  EXPECT_THAT(m.out, ::testing::HasSubstr(applied_once)) << "the scrape waited for the apply";
  EXPECT_THAT(m.out, ::testing::HasSubstr("kagami_agent_uptime_seconds"));
  // The apply finishes, and the next scrape sees it.
  bool done = false;
  for (int i = 0; i < 120 && !done; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    done = scrape().out.find("kagami_agent_config_applies_total{result=\"ok\"} 2") != std::string::npos;
  }
  EXPECT_TRUE(done) << "the apply did not finish";
  stop_agent(SIGTERM);
}

}  // namespace
}  // namespace kagami
