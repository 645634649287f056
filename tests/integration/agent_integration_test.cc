// The agent end to end, as an operator runs it: the real `kagami` binary as a
// subprocess, a temporary config, a test-only pin root, a temp socket, HTTP on
// a free port (port 0, read back from `kagami status --json`), and programs
// attached to TestNetwork host interfaces. promtool judges /metrics.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/agent_process.h"
#include "support/netns.h"
#include "support/shell.h"

namespace kagami {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using nlohmann::json;

const std::string kKagami = std::string(KAGAMI_BINARY_DIR) + "/src/exe/kagami";

using test::Cmd;
using test::sh;

class AgentIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::is_root()) GTEST_SKIP() << "needs root (CAP_BPF, CAP_NET_ADMIN): run the test as root";
    const std::string id = std::to_string(getpid());
    dir_ = fs::temp_directory_path() / ("kagami-agent-it-" + id);
    fs::create_directories(dir_);
    pin_root_ = "/sys/fs/bpf/kagami-test-" + id + "-agent";
    socket_ = (dir_ / "run" / "k.sock").string();
    fs::copy_file(std::string(KAGAMI_BPF_DIR) + "/platform.bpf.o", dir_ / "platform.bpf.o");
    auto h1 = net_.add_host();
    ASSERT_TRUE(h1.has_value()) << h1.error().message;
    auto h2 = net_.add_host();
    ASSERT_TRUE(h2.has_value()) << h2.error().message;
    h1_ = *h1;
    h2_ = *h2;
  }

  void TearDown() override {
    stop_agent(SIGKILL);
    // Everything the agent pinned lives under the test pin root; the hooks
    // themselves die with the veth interfaces (TestNetwork's destructor).
    std::error_code ec;
    if (!pin_root_.empty()) fs::remove_all(pin_root_, ec);
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  std::string config(const std::string& b_attach, const std::string& a_attach = "") const {
    // bpf_stats: always, because the test reads run counts (the default,
    // on_demand, counts only inside a sampling window).
    return "agent:\n  http: \"127.0.0.1:0\"\n  socket: " + socket_ + "\n  pin_root: " + pin_root_ +
           "\n  bpf_stats: always" +
           "\nprograms:\n"
           "  - name: a\n    object: platform.bpf.o\n    attach: [\"" +
           (a_attach.empty() ? "xdp:" + h1_.host_if + "@empty_xdp" : a_attach) +
           "\"]\n"
           "  - name: b\n    object: platform.bpf.o\n    attach: [\"" + b_attach + "\"]\n";
  }
  void write_config(const std::string& text) const { std::ofstream(dir_ / "kagami.yaml", std::ios::trunc) << text; }

  void start_agent() {
    agent_ = std::make_unique<test::AgentProcess>(kKagami, socket_, (dir_ / "agent.log").string());
    const std::string why = agent_->start((dir_ / "kagami.yaml").string());
    ASSERT_TRUE(why.empty()) << why;
    http_ = agent_->http();
  }

  void stop_agent(int sig) {
    if (agent_) agent_->stop(sig);
  }

  Cmd kagami(const std::string& args) const { return sh(kKagami + " --socket " + socket_ + " " + args); }

  json programs() const {
    auto r = kagami("prog list --json");
    EXPECT_EQ(r.rc, 0) << r.out;
    json by_name = json::object();
    for (const auto& p : json::parse(r.out)) by_name[p["name"].get<std::string>()] = p;
    return by_name;
  }
  static uint32_t first_id(const json& p) { return p["progs"][0]["id"].get<uint32_t>(); }
  static std::vector<uint32_t> ids(const json& p) {
    std::vector<uint32_t> v;
    for (const auto& pr : p["progs"]) v.push_back(pr["id"].get<uint32_t>());
    return v;
  }
  static uint64_t runs(const json& p) {
    uint64_t n = 0;
    for (const auto& pr : p["progs"]) n += pr["run_cnt"].get<uint64_t>();
    return n;
  }
  Cmd http(const std::string& path) const { return sh("curl -sf http://" + http_ + path); }

  void reload(const std::string& text) {
    write_config(text);
    if (agent_ && agent_->running()) kill(agent_->pid(), SIGHUP);
    // SIGHUP is asynchronous: wait until the agent counts the apply.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  }

  test::TestNetwork net_;
  test::TestHost h1_, h2_;
  fs::path dir_;
  std::string pin_root_, socket_, http_;
  std::unique_ptr<test::AgentProcess> agent_;
};

TEST_F(AgentIntegration, LifecycleDiffApplyAdoptionAndUnload) {
  const std::string b_ingress = "tc:" + h1_.host_if + ":ingress@empty_tc";
  const std::string b_egress = "tc:" + h1_.host_if + ":egress@empty_tc";
  write_config(config(b_ingress));
  start_agent();
  ASSERT_FALSE(HasFailure());

  // Config programs are up; an ad hoc program joins through the CLI.
  auto load = kagami("prog load " + (dir_ / "platform.bpf.o").string() + " --name c --attach xdp:" +
                     h2_.host_if + "@empty_xdp");
  ASSERT_EQ(load.rc, 0) << load.out;
  json p = programs();
  ASSERT_TRUE(p.contains("a") && p.contains("b") && p.contains("c")) << p.dump();
  EXPECT_EQ(p["a"]["origin"], "config");
  EXPECT_EQ(p["c"]["origin"], "cli");
  EXPECT_TRUE(fs::exists(pin_root_ + "/c"));
  const auto a_ids = ids(p["a"]), b_ids = ids(p["b"]), c_ids = ids(p["c"]);

  // Traffic from the namespace crosses h1's XDP hook: program a runs.
  test::TestNetwork::exec_in(h1_, "ping -c 5 -i 0.2 -W 1 " + h1_.host_ip);
  p = programs();
  const uint64_t a_runs = runs(p["a"]);
  EXPECT_GE(a_runs, 5u) << p["a"].dump();

  // HTTP: health, API, and /metrics accepted by promtool.
  EXPECT_EQ(http("/healthz").out, "ok\n");
  auto api = http("/api/v1/programs");
  ASSERT_EQ(api.rc, 0);
  EXPECT_EQ(json::parse(api.out).size(), 3u);
  auto one = http("/api/v1/programs/a");
  ASSERT_EQ(one.rc, 0);
  EXPECT_EQ(json::parse(one.out)["name"], "a");
  EXPECT_NE(http("/api/v1/programs/nope").rc, 0);  // 404
  for (const char* ep : {"/api/v1/attachments", "/api/v1/maps", "/api/v1/stats", "/api/v1/modules"})
    EXPECT_EQ(http(ep).rc, 0) << ep;
  auto metrics = http("/metrics");
  ASSERT_EQ(metrics.rc, 0);
  EXPECT_THAT(metrics.out, HasSubstr("kagami_program_run_count_total{id=\"" + std::to_string(a_ids[0])));
  std::ofstream(dir_ / "metrics.txt") << metrics.out;
  auto prom = sh("promtool check metrics < " + (dir_ / "metrics.txt").string());
  EXPECT_EQ(prom.rc, 0) << prom.out;

  // SIGHUP with b's attach list changed: only b is touched.
  reload(config(b_egress));
  p = programs();
  EXPECT_EQ(ids(p["a"]), a_ids) << "unchanged program a was reloaded";
  EXPECT_EQ(ids(p["c"]), c_ids) << "ad hoc program c was touched by apply";
  ASSERT_EQ(p["b"]["attachments"].size(), 1u);
  EXPECT_EQ(p["b"]["attachments"][0]["point"], b_egress);
  (void)b_ids;

  // An invalid config is rejected whole, over SIGHUP and over `kagami apply`.
  const std::string bad = config(b_ingress, "xpd:" + h1_.host_if);
  reload(bad);
  auto status = json::parse(kagami("status --json").out);
  EXPECT_FALSE(status["stats"]["last_apply"]["ok"].get<bool>());
  EXPECT_THAT(status["stats"]["last_apply"]["error"].get<std::string>(),
              HasSubstr("programs[0].attach[0]: "));
  auto apply = kagami("apply " + (dir_ / "kagami.yaml").string());
  EXPECT_EQ(apply.rc, 1);
  EXPECT_THAT(apply.out, HasSubstr("kagami: "));
  EXPECT_THAT(apply.out, HasSubstr("unknown hook kind 'xpd'"));
  p = programs();
  EXPECT_EQ(ids(p["a"]), a_ids);
  EXPECT_EQ(p["b"]["attachments"][0]["point"], b_egress);  // still the last good config
  EXPECT_EQ(ids(p["c"]), c_ids);

  // A good config through `kagami apply` works and reports what it did.
  write_config(config(b_egress));
  auto good = kagami("apply --json");
  ASSERT_EQ(good.rc, 0) << good.out;
  EXPECT_EQ(json::parse(good.out)["unchanged"].size(), 2u);

  // kill -9: programs keep running; a restarted agent adopts them (same ids)
  // and the kernel's counters continue.
  stop_agent(SIGKILL);
  test::TestNetwork::exec_in(h1_, "ping -c 3 -i 0.2 -W 1 " + h1_.host_ip);
  start_agent();
  ASSERT_FALSE(HasFailure());
  p = programs();
  EXPECT_EQ(ids(p["a"]), a_ids);
  EXPECT_EQ(ids(p["c"]), c_ids);
  EXPECT_EQ(p["c"]["origin"], "cli");  // origin survives through the state file
  EXPECT_TRUE(p["a"]["adopted"].get<bool>());
  // Kernel run-time stats are only gathered while someone holds
  // BPF_ENABLE_STATS (the manager does), so packets while no agent ran are not
  // counted; what matters is that the counters were not reset.
  EXPECT_GE(runs(p["a"]), a_runs);
  test::TestNetwork::exec_in(h1_, "ping -c 3 -i 0.2 -W 1 " + h1_.host_ip);
  EXPECT_GE(runs(programs()["a"]), a_runs + 3);

  // Unload removes the pins.
  auto un = kagami("prog unload c");
  ASSERT_EQ(un.rc, 0) << un.out;
  EXPECT_FALSE(fs::exists(pin_root_ + "/c"));
  EXPECT_FALSE(programs().contains("c"));
  // Unknown names are an error naming the program.
  auto missing = kagami("prog unload nope");
  EXPECT_EQ(missing.rc, 1);
  EXPECT_THAT(missing.out, HasSubstr("nope"));
}

// A module's kernel needs are probed at apply and shown in `kagami status`;
// its series carry the interface and the pod_uid of the interface's owner.
TEST_F(AgentIntegration, ModuleFeaturesInStatusAndInterfaceLabels) {
  write_config("agent:\n  http: \"127.0.0.1:0\"\n  socket: " + socket_ + "\n  pin_root: " + pin_root_ +
               "\nmodules:\n  obs:\n    enabled: true\n    interfaces: [" + h2_.host_if + "]\n");
  start_agent();
  ASSERT_FALSE(HasFailure());
  auto status = json::parse(kagami("status --json").out);
  const auto& obs = status["module_features"]["obs"];
  ASSERT_TRUE(obs.is_object()) << status.dump();
  EXPECT_TRUE(obs["ok"].get<bool>()) << obs.dump();
  bool tc = false;
  for (const auto& n : obs["needs"]) tc = tc || (n["feature"] == "tc" && n["state"] == "available");
  EXPECT_TRUE(tc) << obs.dump();

  test::TestNetwork::exec_in(h2_, "ping -c 3 -i 0.2 -W 1 " + h2_.host_ip);
  auto metrics = http("/metrics");
  ASSERT_EQ(metrics.rc, 0);
  EXPECT_THAT(metrics.out, HasSubstr("interface=\"" + h2_.host_if + "\""));
  EXPECT_THAT(metrics.out, HasSubstr("pod_uid=\"\""));  // a test host's namespace runs no pod
  std::ofstream(dir_ / "metrics.txt") << metrics.out;
  auto prom = sh("promtool check metrics < " + (dir_ / "metrics.txt").string());
  EXPECT_EQ(prom.rc, 0) << prom.out;
}

TEST_F(AgentIntegration, CliWithoutAgentAndSocketPermissions) {
  auto r = kagami("prog list");
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "kagami: agent not running (no socket at " + socket_ + ")\n");
  write_config(config("tc:" + h1_.host_if + ":ingress@empty_tc"));
  start_agent();
  ASSERT_FALSE(HasFailure());
  struct stat st{};
  ASSERT_EQ(stat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, 0u);
  ASSERT_EQ(stat(fs::path(socket_).parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // A second agent on the same socket refuses to start.
  auto second = sh(kKagami + " agent --config " + (dir_ / "kagami.yaml").string());
  EXPECT_NE(second.rc, 0);
  EXPECT_THAT(second.out, HasSubstr("another agent is already listening on " + socket_));
  stop_agent(SIGTERM);
  EXPECT_FALSE(fs::exists(socket_));  // removed on a clean stop
  // Stopping the agent leaves the programs pinned.
  EXPECT_TRUE(fs::exists(pin_root_ + "/a"));
}

}  // namespace
}  // namespace kagami
