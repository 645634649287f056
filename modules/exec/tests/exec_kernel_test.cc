// The exec module on the real kernel (root):
//   - Flood: an exec storm of K fork+exec(/bin/true) from a cgroup of the
//     test's own, with a tiny ring and a low rate limit, and the proof that
//     no event is lost silently:
//        received + dropped(ring_full) + dropped(rate_limit) + dropped(decode) == K
//     with both kernel causes non-zero. The module's scope (exec.cgroup) is
//     that cgroup, so execs elsewhere on the machine are out of scope and
//     cannot enter the equation; the children move themselves into it
//     between fork and exec.
//   - The whole agent in process: exec events with the right pid, ppid,
//     filename and uid in the history (control op "events"), in the HTTP
//     stream function and on /metrics.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/event_loop.h"
#include "agent/events.h"
#include "bpf/kernel.h"
#include "bpf/ringbuf.h"
#include "core/probe.h"
#include "core/program_manager.h"
#include "identity/identity.h"
#include "modules/exec/abi.h"
#include "modules/exec/exec.h"
#include "support/pins.h"
#include "support/cgroup.h"
#include "support/netns.h"
#include "support/ring_sources.h"

namespace kagami {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using kagami::test::TestCgroup;

// Forks n children that join `cgroup` and exec `prog`; reaps them all.
// Returns how many exec'd successfully (exit status 0).
int exec_storm(const std::string& cgroup, const std::string& prog, int n) {
  const std::string procs = cgroup + "/cgroup.procs";
  int ok_count = 0;
  for (int i = 0; i < n; ++i) {
    pid_t p = fork();
    if (p == 0) {
      // Only async-signal-safe calls between fork and exec.
      int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, "0", 1) != 1) _exit(101);
      ::close(fd);
      char* const argv[] = {const_cast<char*>(prog.c_str()), nullptr};
      ::execv(prog.c_str(), argv);
      _exit(102);
    }
    if (p < 0) break;
    int st = 0;
    ::waitpid(p, &st, 0);
    ok_count += WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  return ok_count;
}

std::vector<uint64_t> percpu_sum(int fd, uint32_t n) {
  auto d = bpf::map_read_array(fd, n, 8, true);
  EXPECT_TRUE(d) << d.error().message;
  std::vector<uint64_t> out(n, 0);
  if (!d) return out;
  for (uint32_t k = 0; k < n; ++k)
    for (int c = 0; c < d->cpus; ++c) out[k] += *reinterpret_cast<const uint64_t*>(d->at(k, c));
  return out;
}

class ExecKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::is_root()) GTEST_SKIP() << "needs root (CAP_BPF, CAP_PERFMON, cgroup writes): run the test as root";
    if (bpf::cgroup2_root().empty()) GTEST_SKIP() << "needs a cgroup v2 hierarchy (none mounted)";
    auto tf = bpf::ensure_tracefs();
    if (!tf) GTEST_SKIP() << "needs tracefs: " << tf.error().message;
    pin_root_ = test::fresh_pin_root("exec");
    core::ManagerOptions o;
    o.pin_root = pin_root_;
    auto m = core::ProgramManager::create(o);
    ASSERT_TRUE(m) << m.error().message;
    pm_ = std::move(*m);
  }
  void TearDown() override {
    if (pm_) {
      for (const auto& p : pm_->list()) (void)pm_->unload(p.name);
      pm_.reset();
    }
    std::error_code ec;
    if (!pin_root_.empty()) fs::remove_all(pin_root_, ec);
  }

  // Loads the module for `section` and writes its config map.
  void load(modules::ExecModule& mod, const json& section, agent::EventBus& bus) {
    core::ModuleContext ctx;
    ctx.name = "exec";
    ctx.node = "test";
    ctx.events = &bus;
    // The module's needs against this kernel, as the agent resolves them.
    core::ProbeReport probed;
    for (const auto& n : mod.needs()) probed.features.push_back(core::probe_feature(n.feature));
    ctx.features = core::resolve(mod.needs(), probed);
    auto reqs = mod.plan(section, ctx);
    ASSERT_TRUE(reqs) << reqs.error().message;
    ASSERT_EQ(reqs->size(), 1u);
    auto info = pm_->load((*reqs)[0]);
    ASSERT_TRUE(info) << info.error().message;
    auto c = mod.configure(*pm_);
    ASSERT_TRUE(c) << c.error().message;
  }

  std::vector<agent::LoopSource> sources(const modules::ExecModule& mod) {
    auto r = test::ring_sources(*pm_, "exec", mod.event_sources());
    EXPECT_TRUE(r) << r.error().message;
    return r ? std::move(*r) : std::vector<agent::LoopSource>{};
  }

  std::string pin_root_;
  std::unique_ptr<core::ProgramManager> pm_;
};

uint64_t published(const agent::EventBus& bus) {
  return bus.stats_json()["published"].value("exec", json::object()).value("exec", uint64_t{0});
}
uint64_t dropped(const agent::EventBus& bus, const char* cause) {
  return bus.stats_json()["dropped"].value("exec", json::object()).value(cause, uint64_t{0});
}

class ExecFlood : public ExecKernel, public ::testing::WithParamInterface<const char*> {};

TEST_P(ExecFlood, EveryExecIsReceivedOrCountedByCause) {
  const std::string hooks = GetParam();
  if (hooks == "tp_btf" && !core::probe_feature("tp_btf").available)
    GTEST_SKIP() << "needs tp_btf programs (this kernel refuses them)";
  TestCgroup cg;
  ASSERT_FALSE(cg.path().empty()) << "cannot create a test cgroup under " << bpf::cgroup2_root();
  agent::EventsSettings es;
  es.history = 100000;
  agent::EventBus bus(es);
  modules::ExecModule mod;
  // 4 KiB ring: ~12 records of 328 bytes (with the ring's 8-byte header).
  // rate 10/s per CPU with a burst of 100: the first ~100 per CPU pass the
  // limiter and overflow the ring (nothing drains it during the storm), the
  // rest hit the limiter.
  ASSERT_NO_FATAL_FAILURE(
      load(mod, {{"rate", 10}, {"burst", 100}, {"ring_kb", 4}, {"cgroup", cg.path()}, {"hooks", hooks}}, bus));
  EXPECT_STREQ(modules::to_string(mod.hooks()), hooks.c_str());
  agent::EventLoop loop(bus);  // not started: drained once, after the storm
  ASSERT_TRUE(loop.set_sources(sources(mod)));

  constexpr int K = 2000;
  const int execs = exec_storm(cg.path(), "/bin/true", K);
  ASSERT_EQ(execs, K) << "some children failed to join the cgroup or exec";
  auto n = loop.drain();
  ASSERT_TRUE(n) << n.error().message;

  const uint64_t received = published(bus);
  const uint64_t ring_full = dropped(bus, "ring_full"), rate_limit = dropped(bus, "rate_limit"),
                 decode = dropped(bus, "decode");
  std::printf("flood (%s): %d execs -> received %lu, ring_full %lu, rate_limit %lu, decode %lu\n", hooks.c_str(), K,
              (unsigned long)received, (unsigned long)ring_full, (unsigned long)rate_limit, (unsigned long)decode);
  EXPECT_EQ(received + ring_full + rate_limit + decode, uint64_t(K))
      << "received " << received << " ring_full " << ring_full << " rate_limit " << rate_limit << " decode "
      << decode;
  EXPECT_GT(ring_full, 0u);
  EXPECT_GT(rate_limit, 0u);
  EXPECT_GT(received, 0u);
  EXPECT_EQ(decode, 0u);
  // The BPF side agrees: every in-scope exec was seen, sent or dropped.
  auto cfd = pm_->map_fd("exec", EXEC_MAP_COUNTERS);
  ASSERT_TRUE(cfd);
  auto ctr = percpu_sum(cfd->get(), EXEC_CTR_MAX);
  EXPECT_EQ(ctr[EXEC_CTR_SEEN], uint64_t(K));
  EXPECT_EQ(ctr[EXEC_CTR_SENT], received);
  // Every event received is one of ours.
  for (const auto& e : bus.history("exec")) {
    EXPECT_EQ(e["ppid"], getpid());
    EXPECT_EQ(e["filename"], "/bin/true");
  }
  // The drops reach /metrics through the bus.
  bool found = false;
  for (const auto& f : bus.metric_families("test"))
    if (f.name == "kagami_events_dropped_total")
      for (const auto& s : f.samples)
        if (s.labels.at("cause") == "ring_full") found = s.value == double(ring_full);
  EXPECT_TRUE(found);

  // Re-setting the sources (what every apply does, after pause()) must not
  // count the drops twice; a map that goes away keeps its counts.
  loop.pause();
  ASSERT_TRUE(loop.set_sources(sources(mod)));
  EXPECT_EQ(dropped(bus, "ring_full"), ring_full);
  EXPECT_EQ(dropped(bus, "rate_limit"), rate_limit);
  ASSERT_TRUE(loop.set_sources({}));
  EXPECT_EQ(dropped(bus, "ring_full"), ring_full);
  EXPECT_EQ(dropped(bus, "rate_limit"), rate_limit);
}

// The filename edge: a path of exactly 255 bytes fits the record (NUL
// included), one of 256 is cut and flagged, in both variants (the tp_btf
// one cannot ask the tracepoint for the length and checks the next byte).
TEST_P(ExecFlood, LongFilenamesAreFlaggedTruncated) {
  const std::string hooks = GetParam();
  if (hooks == "tp_btf" && !core::probe_feature("tp_btf").available)
    GTEST_SKIP() << "needs tp_btf programs (this kernel refuses them)";
  TestCgroup cg;
  ASSERT_FALSE(cg.path().empty());
  const fs::path dir = fs::temp_directory_path() / ("kagami-exec-long-" + std::to_string(getpid()));
  std::error_code ec;
  fs::remove_all(dir, ec);
  // dir/<pad>/x with pad chosen so the whole path is `len` bytes.
  auto make = [&](size_t len) {
    const size_t base = dir.string().size() + 1 /* / */ + 1 /* / */ + 1 /* x */;
    const fs::path p = dir / std::string(len - base, 'd') / "x";
    fs::create_directories(p.parent_path());
    fs::copy_file("/bin/true", p, fs::copy_options::overwrite_existing);
    fs::permissions(p, fs::perms::owner_all);
    EXPECT_EQ(p.string().size(), len);
    return p.string();
  };
  const std::string fits = make(255), cut = make(256);
  agent::EventBus bus;
  modules::ExecModule mod;
  ASSERT_NO_FATAL_FAILURE(load(mod, {{"rate", 0}, {"cgroup", cg.path()}, {"hooks", hooks}}, bus));
  agent::EventLoop loop(bus);
  ASSERT_TRUE(loop.set_sources(sources(mod)));
  EXPECT_EQ(exec_storm(cg.path(), fits, 1), 1);
  EXPECT_EQ(exec_storm(cg.path(), cut, 1), 1);
  ASSERT_TRUE(loop.drain());
  fs::remove_all(dir, ec);
  auto h = bus.history("exec");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0]["filename"], fits);
  EXPECT_EQ(h[0]["filename_truncated"], false);
  EXPECT_EQ(h[1]["filename"], cut.substr(0, 255));
  EXPECT_EQ(h[1]["filename_truncated"], true);
}

INSTANTIATE_TEST_SUITE_P(Hooks, ExecFlood, ::testing::Values("tracepoint", "tp_btf"),
                         [](const auto& info) { return std::string(info.param); });

TEST_F(ExecKernel, RecordsTheDecoderRefusesAreCountedAsDecodeDrops) {
  TestCgroup cg;
  ASSERT_FALSE(cg.path().empty());
  agent::EventBus bus;
  modules::ExecModule mod;
  ASSERT_NO_FATAL_FAILURE(load(mod, {{"rate", 0}, {"cgroup", cg.path()}}, bus));
  auto srcs = sources(mod);
  ASSERT_EQ(srcs.size(), 1u);
  srcs[0].source.decode = [](std::span<const uint8_t>) -> Result<json> { return make_error("refused"); };
  agent::EventLoop loop(bus);
  ASSERT_TRUE(loop.set_sources(std::move(srcs)));
  ASSERT_EQ(exec_storm(cg.path(), "/bin/true", 4), 4);
  ASSERT_TRUE(loop.drain());
  EXPECT_EQ(published(bus), 0u);
  EXPECT_EQ(dropped(bus, "decode"), 4u);
}

TEST_F(ExecKernel, RingBufferOwnerRefusesAMapThatIsNotARing) {
  agent::EventBus bus;
  modules::ExecModule mod;
  ASSERT_NO_FATAL_FAILURE(load(mod, {{"rate", 0}}, bus));
  auto drops = pm_->map_fd("exec", EXEC_MAP_DROPS);
  ASSERT_TRUE(drops);
  auto rb = bpf::RingBuffer::open({drops->get()}, [](size_t, std::span<const uint8_t>) {});
  ASSERT_FALSE(rb);
  EXPECT_NE(rb.error().message.find("exec_drops"), std::string::npos) << rb.error().message;
  EXPECT_NE(rb.error().message.find("not a ringbuf"), std::string::npos) << rb.error().message;
  auto ring = pm_->map_fd("exec", EXEC_MAP_EVENTS);
  ASSERT_TRUE(ring);
  auto ok_rb = bpf::RingBuffer::open({ring->get()}, [](size_t, std::span<const uint8_t>) {});
  ASSERT_TRUE(ok_rb) << ok_rb.error().message;
  EXPECT_GE(ok_rb->epoll_fd(), 0);
  EXPECT_EQ(ok_rb->rings(), 1u);
  auto n = ok_rb->poll(0);
  ASSERT_TRUE(n) << n.error().message;
}

TEST_F(ExecKernel, LiveLoopUnlimitedLosesNothingAtThisRate) {
  TestCgroup cg;
  ASSERT_FALSE(cg.path().empty());
  agent::EventBus bus;
  modules::ExecModule mod;
  ASSERT_NO_FATAL_FAILURE(load(mod, {{"rate", 0}, {"ring_kb", 1024}, {"cgroup", cg.path()}}, bus));
  agent::EventLoop loop(bus);
  ASSERT_TRUE(loop.set_sources(sources(mod)));
  loop.start();
  constexpr int K = 300;
  ASSERT_EQ(exec_storm(cg.path(), "/bin/true", K), K);
  // The loop drains on its own thread; stop() drains what is left.
  for (int i = 0; i < 50 && published(bus) < K; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  loop.stop();
  const uint64_t total = published(bus) + dropped(bus, "ring_full") + dropped(bus, "rate_limit");
  EXPECT_EQ(total, uint64_t(K));
  EXPECT_EQ(dropped(bus, "rate_limit"), 0u);  // rate 0: unlimited
}

TEST_F(ExecKernel, OutOfScopeExecsAreNotEvents) {
  TestCgroup in, out;
  ASSERT_FALSE(in.path().empty());
  ASSERT_FALSE(out.path().empty());
  agent::EventBus bus;
  modules::ExecModule mod;
  ASSERT_NO_FATAL_FAILURE(load(mod, {{"rate", 0}, {"cgroup", in.path()}}, bus));
  agent::EventLoop loop(bus);
  ASSERT_TRUE(loop.set_sources(sources(mod)));
  ASSERT_EQ(exec_storm(out.path(), "/bin/true", 5), 5);
  ASSERT_EQ(exec_storm(in.path(), "/bin/true", 3), 3);
  ASSERT_TRUE(loop.drain());
  EXPECT_EQ(published(bus), 3u) << [&] {
    std::string all;
    for (const auto& e : bus.history("exec")) all += e.dump() + "\n";
    return all;
  }();
  auto cfd = pm_->map_fd("exec", EXEC_MAP_COUNTERS);
  ASSERT_TRUE(cfd);
  EXPECT_GE(percpu_sum(cfd->get(), EXEC_CTR_MAX)[EXEC_CTR_OUT_OF_SCOPE], 5u);
}

// ---- the agent in process -----------------------------------------------------------

class ExecAgent : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::is_root()) GTEST_SKIP() << "needs root (CAP_BPF, CAP_PERFMON, cgroup writes): run the test as root";
    if (bpf::cgroup2_root().empty()) GTEST_SKIP() << "needs a cgroup v2 hierarchy (none mounted)";
    dir_ = fs::temp_directory_path() / ("kagami-exec-agent-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    pin_root_ = test::fresh_pin_root("execagent");
    // A copy of /bin/true under a name no other process uses.
    marker_ = (dir_ / "kagami-exec-marker").string();
    fs::copy_file("/bin/true", marker_);
    fs::permissions(marker_, fs::perms::owner_all);
  }
  void TearDown() override {
    agent_.reset();
    std::error_code ec;
    if (!pin_root_.empty()) fs::remove_all(pin_root_, ec);
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  fs::path dir_;
  std::string pin_root_, marker_;
  std::unique_ptr<agent::Agent> agent_;
};

TEST_F(ExecAgent, EventsThroughHistoryStreamAndMetrics) {
  TestCgroup cg;
  ASSERT_FALSE(cg.path().empty());
  const std::string cfg = (dir_ / "kagami.yaml").string();
  std::ofstream(cfg) << "agent:\n  http: \"127.0.0.1:0\"\n  socket: " << (dir_ / "k.sock").string()
                     << "\n  pin_root: " << pin_root_ << "\n  state_file: " << (dir_ / "state.json").string()
                     << "\n  events:\n    history: 1000\n    file: " << (dir_ / "events.jsonl").string()
                     << "\nmodules:\n  exec:\n    rate: 0\n    cgroup: " << cg.path() << "\n";
  agent::AgentOptions ao;
  ao.config_path = cfg;
  auto a = agent::Agent::create(ao);
  ASSERT_TRUE(a) << a.error().message;
  agent_ = std::move(*a);
  ASSERT_EQ(agent_->status_json()["modules"], json::array({"exec"})) << agent_->stats_json().dump();
  // hooks: auto picks tp_btf where the kernel has it.
  EXPECT_EQ(agent_->modules_json()["exec"]["hooks"],
            core::probe_feature("tp_btf").available ? "tp_btf" : "tracepoint");

  // A follower from before the execs: it must see them too.
  std::vector<json> streamed;
  std::atomic<bool> stop{false};
  std::thread follower([&] {
    agent::stream_events(agent_->event_bus(), {{"module", "exec"}},
                         [&](std::string_view chunk) {
                           if (chunk != "\n") streamed.push_back(json::parse(chunk));
                           return streamed.size() < 3;
                         },
                         &stop);
  });
  ASSERT_EQ(exec_storm(cg.path(), marker_, 3), 3);

  json events;
  for (int i = 0; i < 50; ++i) {
    auto r = agent_->handle({"events", {{"module", "exec"}, {"limit", 10}, {"stats", true}}});
    ASSERT_TRUE(r) << r.error().message;
    events = (*r)["events"];
    if (events.size() >= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop = true;
  follower.join();
  ASSERT_EQ(events.size(), 3u) << events.dump();
  uint64_t last_seq = 0;
  for (const auto& e : events) {
    EXPECT_EQ(e["module"], "exec");
    EXPECT_EQ(e["kind"], "exec");
    EXPECT_EQ(e["filename"], marker_);
    EXPECT_EQ(e["comm"], "kagami-exec-mar");  // comm is 15 characters
    EXPECT_EQ(e["ppid"], getpid());
    EXPECT_EQ(e["uid"], 0);
    EXPECT_EQ(e["pid"], e["tgid"]);
    EXPECT_GT(e["seq"].get<uint64_t>(), last_seq);
    last_seq = e["seq"].get<uint64_t>();
    EXPECT_TRUE(e["time"].get<std::string>().ends_with("Z"));
    ASSERT_TRUE(e.contains("workload")) << e.dump();
    EXPECT_EQ(e["workload"]["cgroup"].get<std::string>(),
              cg.path().substr(bpf::cgroup2_root().size()));
  }
  ASSERT_EQ(streamed.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(streamed[i]["seq"], events[i]["seq"]);

  // The file sink has the same lines.
  std::ifstream in(dir_ / "events.jsonl");
  std::string line;
  int in_file = 0;
  while (std::getline(in, line)) in_file += json::parse(line).value("filename", "") == marker_;
  EXPECT_EQ(in_file, 3);

  const std::string m = agent_->metrics_text();
  EXPECT_NE(m.find("kagami_events_total{kind=\"exec\",module=\"exec\""), std::string::npos) << m;
  EXPECT_NE(m.find("kagami_events_dropped_total{cause=\"ring_full\",module=\"exec\""), std::string::npos);
  EXPECT_NE(m.find("kagami_exec_execs_total"), std::string::npos);

  // start() ran after the first configure(): its scope watch follows the
  // cgroup when the directory is removed and created again (a new cgroup).
  auto watch = [&] { return agent_->modules_json()["exec"]["scope_watch"]; };
  EXPECT_EQ(watch()["running"], true) << agent_->modules_json().dump();
  ASSERT_EQ(::rmdir(cg.path().c_str()), 0) << std::strerror(errno);
  ASSERT_EQ(::mkdir(cg.path().c_str(), 0755), 0) << std::strerror(errno);
  for (int i = 0; i < 50 && watch()["refreshes"] == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(watch()["refreshes"], 1);
  ASSERT_EQ(exec_storm(cg.path(), marker_, 1), 1);
  size_t after_refresh = 0;
  for (int i = 0; i < 50 && after_refresh < 4; ++i) {
    auto r = agent_->handle({"events", {{"module", "exec"}, {"limit", 0}}});
    ASSERT_TRUE(r);
    after_refresh = 0;
    for (const auto& e : (*r)["events"]) after_refresh += e.value("filename", "") == marker_;
    if (after_refresh < 4) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(after_refresh, 4u);

  // Disabling the module stops it and its source; the history stays.
  std::ofstream(cfg, std::ios::trunc) << "agent:\n  http: \"127.0.0.1:0\"\n  socket: " << (dir_ / "k.sock").string()
                                      << "\n  pin_root: " << pin_root_ << "\n  state_file: "
                                      << (dir_ / "state.json").string() << "\nmodules:\n  exec:\n    enabled: false\n";
  auto r = agent_->reload("");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(agent_->events_stats_json()["sources"], 0);
  auto h = agent_->handle({"events", {{"module", "exec"}}});
  ASSERT_TRUE(h);
  EXPECT_GE((*h)["events"].size(), 3u);
}

}  // namespace
}  // namespace kagami
