// The security module on the real kernel (root), with real attacks run as
// root inside test pods: cgroups named as kubelet + containerd name them
// (kagami-test-<pid>-*/kubepods.slice/kubepods-besteffort.slice/
// kubepods-besteffort-pod<uid>.slice/cri-containerd-<64hex>.scope), the
// attack in a child that joined the pod's cgroup. The module is loaded
// through the program manager, its ring drained through the agent's event
// loop into an EventBus, exactly as in the agent.
//
//   - every default-policy rule, each from its own attacker process, with
//     the right process, ancestry, container and pod; benign activity from
//     the same pod raises nothing;
//   - every event kind the module reports (a policy with one rule per kind);
//   - kill: the process dies by SIGKILL and never acts on the result;
//   - deny: connect, bind and socket fail with EPERM in the pod only;
//   - policy replacement: an invalid policy keeps the old one; switches
//     under a steady stream of matching opens lose and double nothing;
//   - hostile input: PATH_MAX paths, a path read at sys_exit, huge argv,
//     deep ancestry, an exec storm with a flood of events that leaves the
//     other pods seen.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent/event_loop.h"
#include "agent/events.h"
#include "bpf/kernel.h"
#include "core/probe.h"
#include "core/program_manager.h"
#include "identity/identity.h"
#include "modules/security/abi.h"
#include "modules/security/security.h"
#include "support/pins.h"
#include "support/cgroup.h"
#include "support/netns.h"
#include "support/ring_sources.h"

namespace kagami {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using modules::security::SecurityModule;

// A pod's container cgroup under a test cgroup, named as containerd names
// it; removed (children first) even when the test fails.
class TestPod {
 public:
  TestPod(const test::TestCgroup& base, const std::string& uid, const std::string& cid) : uid_(uid), cid_(cid) {
    std::string u = uid;
    std::replace(u.begin(), u.end(), '-', '_');
    const std::string rel[] = {"/kubepods.slice", "/kubepods.slice/kubepods-besteffort.slice",
                               "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + u + ".slice",
                               "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + u +
                                   ".slice/cri-containerd-" + cid + ".scope"};
    for (const auto& r : rel) {
      const std::string p = base.path() + r;
      if (::mkdir(p.c_str(), 0755) != 0 && errno != EEXIST) return;
      made_.push_back(p);
    }
    path_ = made_.back();
  }
  ~TestPod() {
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
      std::ifstream procs(*it + "/cgroup.procs");
      std::string pid;
      while (procs >> pid) ::kill(std::stoi(pid), SIGKILL);
      for (int i = 0; i < 100 && ::rmdir(it->c_str()) != 0 && errno == EBUSY; i++) ::usleep(10000);
    }
  }
  const std::string& path() const { return path_; }
  const std::string& uid() const { return uid_; }
  const std::string& cid() const { return cid_; }

 private:
  std::string uid_, cid_, path_;
  std::vector<std::string> made_;
};

const std::string kUidA = "6f1b2c3d-0000-4000-8000-00000000000a";
const std::string kCidA = std::string(56, 'a') + "0000000a";
const std::string kUidB = "6f1b2c3d-0000-4000-8000-00000000000b";
const std::string kCidB = std::string(56, 'b') + "0000000b";

struct Child {
  pid_t pid = -1;
  int status = 0;
  bool killed_by_sigkill() const { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }
  int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
};

// Forks a child that joins `cgroup` and runs `fn` (its return is the exit
// code); waits for it.
Child in_pod(const std::string& cgroup, const std::function<int()>& fn) {
  Child r;
  r.pid = fork();
  if (r.pid == 0) {
    int fd = ::open((cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "0", 1) != 1) _exit(120);
    ::close(fd);
    _exit(fn());
  }
  ::waitpid(r.pid, &r.status, 0);
  return r;
}

int exec_in(const char* path, std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(path, argv.data());
  return 127;
}

bool has_tracepoint(const std::string& kind) {
  if (kind != "init_module" && kind != "finit_module") return true;
  return fs::exists("/sys/kernel/tracing/events/syscalls/sys_enter_" + kind);
}

class SecurityKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::is_root()) GTEST_SKIP() << "needs root (CAP_BPF, CAP_PERFMON, cgroup writes): run the test as root";
    if (bpf::cgroup2_root().empty()) GTEST_SKIP() << "needs a cgroup v2 hierarchy (none mounted)";
    auto tf = bpf::ensure_tracefs();
    if (!tf) GTEST_SKIP() << "needs tracefs: " << tf.error().message;
    ASSERT_FALSE(base_.path().empty()) << base_.error();
    pin_root_ = test::fresh_pin_root("sec");
    core::ManagerOptions o;
    o.pin_root = pin_root_;
    auto m = core::ProgramManager::create(o);
    ASSERT_TRUE(m) << m.error().message;
    pm_ = std::move(*m);
    agent::EventsSettings es;
    es.history = 200000;
    es.rule_rate = 0;  // the bus limit has its own test (security_pipeline_test)
    bus_ = std::make_unique<agent::EventBus>(es);
    resolver_ = std::make_unique<identity::Resolver>();
  }
  void TearDown() override {
    mod_.stop();  // the refresh thread, where a test started it
    if (pm_) {
      for (const auto& p : pm_->list()) (void)pm_->unload(p.name);
      pm_.reset();
    }
    std::error_code ec;
    if (!pin_root_.empty()) fs::remove_all(pin_root_, ec);
    if (!policy_file_.empty()) fs::remove(policy_file_, ec);
  }

  // Loads the module with `policy` ("" = the default) and the deny hooks on
  // the test's own cgroup.
  void load(const std::string& policy, json extra = json::object()) {
    json section = extra;
    section["deny_cgroup"] = base_.path();
    if (!policy.empty()) {
      policy_file_ = fs::temp_directory_path() / ("kagami-test-sec-" + std::to_string(getpid()) + ".yaml");
      std::ofstream(policy_file_) << policy;
      section["policy"] = policy_file_.string();
    }
    core::ModuleContext ctx;
    ctx.name = "security";
    ctx.node = "test";
    ctx.events = bus_.get();
    ctx.identity = resolver_.get();
    core::ProbeReport probed;
    for (const auto& n : mod_.needs()) probed.features.push_back(core::probe_feature(n.feature));
    ctx.features = core::resolve(mod_.needs(), probed);
    auto reqs = mod_.plan(section, ctx);
    ASSERT_TRUE(reqs) << reqs.error().message;
    ASSERT_EQ(reqs->size(), 1u);
    auto info = pm_->load((*reqs)[0]);
    ASSERT_TRUE(info) << info.error().message;
    auto c = mod_.configure(*pm_);
    ASSERT_TRUE(c) << c.error().message;
    loop_ = std::make_unique<agent::EventLoop>(*bus_);
    auto srcs = test::ring_sources(*pm_, "security", mod_.event_sources());
    ASSERT_TRUE(srcs) << srcs.error().message;
    ASSERT_TRUE(loop_->set_sources(std::move(*srcs)));
  }

  std::vector<json> drain() {
    auto n = loop_->drain();
    EXPECT_TRUE(n) << n.error().message;
    return bus_->history("security");
  }

  // Events of one process (its tgid).
  std::vector<json> of(const std::vector<json>& evs, pid_t pid) {
    std::vector<json> out;
    for (const auto& e : evs)
      if (e["process"]["tgid"] == static_cast<uint32_t>(pid)) out.push_back(e);
    return out;
  }

  static bool has_rule(const json& e, const std::string& rule) {
    for (const auto& r : e["rules"])
      if (r == rule) return true;
    return false;
  }

  // The event of `pid` that `rule` matched, checked for process, ancestry,
  // container and pod.
  void expect_detected(const std::vector<json>& evs, const Child& run, const std::string& rule, const TestPod& pod,
                       const std::string& kind) {
    bool found = false;
    for (const auto& e : of(evs, run.pid)) {
      if (!has_rule(e, rule) || e["kind"] != kind) continue;
      found = true;
      EXPECT_EQ(e["kind"], kind) << rule << ": " << e.dump();
      EXPECT_EQ(e["process"]["ppid"], static_cast<uint32_t>(getpid())) << rule;
      ASSERT_FALSE(e["ancestry"].empty()) << rule << ": " << e.dump();
      EXPECT_EQ(e["ancestry"][0]["pid"], static_cast<uint32_t>(getpid())) << rule;
      EXPECT_EQ(e["container"]["id"], pod.cid()) << rule << ": " << e.dump();
      EXPECT_EQ(e["container"]["pod_uid"], pod.uid()) << rule;
      EXPECT_EQ(e["container"]["runtime"], "containerd") << rule;
      EXPECT_FALSE(e["time"].get<std::string>().empty());
      EXPECT_GT(e["mono_ns"].get<uint64_t>(), 0u);
      break;
    }
    EXPECT_TRUE(found) << "rule " << rule << " did not fire for pid " << run.pid;
  }

  test::TestCgroup base_;
  std::string pin_root_;
  fs::path policy_file_;
  std::unique_ptr<core::ProgramManager> pm_;
  std::unique_ptr<agent::EventBus> bus_;
  std::unique_ptr<identity::Resolver> resolver_;
  std::unique_ptr<agent::EventLoop> loop_;
  SecurityModule mod_;
};

TEST_F(SecurityKernel, DefaultPolicyDetectsEveryRuleInAPodAndNothingBenign) {
  TestPod pod(base_, kUidA, kCidA);
  ASSERT_FALSE(pod.path().empty());
  ASSERT_NO_FATAL_FAILURE(load(""));
  const std::string tmp = "/tmp/kagami-test-sec-" + std::to_string(getpid());
  ::mkdir(tmp.c_str(), 0755);

  struct Attack {
    const char* rule;
    const char* kind;
    std::function<int()> fn;
  };
  const std::string etc_file = "/etc/kagami-test-sec-" + std::to_string(getpid());
  const std::string usr_file = "/usr/kagami-test-sec-" + std::to_string(getpid());
  std::vector<Attack> attacks = {
      {"shell-in-container", "exec", [] { return exec_in("/bin/sh", {"sh", "-c", "exit 0"}); }},
      {"package-manager-in-container", "exec", [] { return exec_in("/usr/bin/dpkg", {"dpkg", "--version"}); }},
      {"service-account-token-read", "open",
       [] { return ::open("/var/run/secrets/kubernetes.io/serviceaccount/token", O_RDONLY) >= 0 ? 0 : 0; }},
      {"write-below-etc", "open",
       [&] {
         int fd = ::open(etc_file.c_str(), O_WRONLY | O_CREAT, 0600);
         ::unlink(etc_file.c_str());
         return fd >= 0 ? 0 : 1;
       }},
      {"write-below-binary-dirs", "open",
       [&] {
         int fd = ::open(usr_file.c_str(), O_WRONLY | O_CREAT, 0600);
         ::unlink(usr_file.c_str());
         return fd >= 0 ? 0 : 1;
       }},
      {"read-shadow", "open", [] { return ::open("/etc/shadow", O_RDONLY) >= 0 ? 0 : 1; }},
      {"raw-socket-outside-upf", "socket", [] { return ::socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) >= 0 ? 0 : 1; }},
      {"packet-socket-outside-upf", "socket", [] { return ::socket(AF_PACKET, SOCK_RAW, 0) >= 0 ? 0 : 1; }},
      {"namespace-change-in-container", "unshare", [] { return ::unshare(CLONE_NEWUTS); }},
      {"namespace-change-in-container", "setns",
       [] {
         int fd = ::open("/proc/self/ns/uts", O_RDONLY);
         return ::setns(fd, CLONE_NEWUTS);
       }},
      {"kernel-module-load", "finit_module",
       [] { return ::syscall(SYS_finit_module, -1, "", 0) == 0 ? 1 : 0; }},  // EBADF: nothing loads
      {"kernel-module-load", "init_module", [] { return ::syscall(SYS_init_module, nullptr, 0, "") == 0 ? 1 : 0; }},
      {"bpf-outside-agent", "bpf", [] { return ::syscall(SYS_bpf, 0xffff, nullptr, 0) == 0 ? 1 : 0; }},
      {"ptrace", "ptrace", [] { return ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) == 0 ? 0 : 1; }},
      {"setuid-to-root", "setuid",
       [] {
         if (::setresuid(65534, 65534, 0) != 0) return 2;
         return ::setuid(0) == 0 ? 0 : 1;
       }},
      {"setresuid-to-root", "setresuid",
       [] {
         if (::setresuid(65534, 65534, 0) != 0) return 2;
         return ::setresuid(-1, 0, -1) == 0 ? 0 : 1;
       }},
      {"mount-in-container", "mount",
       [&] {
         if (::unshare(CLONE_NEWNS) != 0) return 2;
         ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
         return ::mount("none", tmp.c_str(), "tmpfs", 0, nullptr);
       }},
      {"mount-in-container", "umount",
       [&] {
         if (::unshare(CLONE_NEWNS) != 0) return 2;
         ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
         ::mount("none", tmp.c_str(), "tmpfs", 0, nullptr);
         return ::umount(tmp.c_str());
       }},
  };
  std::vector<Child> runs;
  for (auto& a : attacks) runs.push_back(in_pod(pod.path(), a.fn));
  // Benign, same pod: reads of ordinary files, a loopback connect, an exec
  // of a non-shell, a socket of the usual kind.
  Child benign = in_pod(pod.path(), [] {
    ::close(::open("/etc/hostname", O_RDONLY));
    ::close(::open("/tmp", O_RDONLY | O_DIRECTORY));
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(9);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
    ::close(s);
    pid_t p = fork();
    if (p == 0) _exit(exec_in("/bin/true", {"true"}));
    int st = 0;
    ::waitpid(p, &st, 0);
    return 0;
  });
  ::rmdir(tmp.c_str());
  auto evs = drain();
  for (size_t i = 0; i < attacks.size(); ++i) {
    if (!has_tracepoint(attacks[i].kind)) {
      std::printf("rule %s (%s): no tracepoint on this kernel (no module support: nothing can load)\n",
                  attacks[i].rule, attacks[i].kind);
      continue;
    }
    expect_detected(evs, runs[i], attacks[i].rule, pod, attacks[i].kind);
  }
  EXPECT_TRUE(of(evs, benign.pid).empty()) << of(evs, benign.pid).front().dump();
  // The agent's own bpf() calls (this process drains and reads maps) are not events.
  for (const auto& e : of(evs, getpid())) EXPECT_NE(e["kind"], "bpf") << e.dump();
  // The exec event names the binary and its arguments.
  for (const auto& e : of(evs, runs[0].pid))
    if (e["kind"] == "exec") {
      EXPECT_EQ(e["process"]["exe"], "/bin/sh");
      EXPECT_EQ(e["process"]["args"], json({"sh", "-c", "exit 0"}));
    }
}

class SecurityHooks : public SecurityKernel, public ::testing::WithParamInterface<const char*> {};

TEST_P(SecurityHooks, EveryEventKindIsReported) {
  const std::string hooks = GetParam();
  if (hooks == "tp_btf" && !core::probe_feature("tp_btf").available)
    GTEST_SKIP() << "needs tp_btf programs (this kernel refuses them)";
  TestPod pod(base_, kUidA, kCidA);
  ASSERT_FALSE(pod.path().empty());
  std::string policy = "rules:\n";
  for (uint32_t k = 1; k < SEC_KIND_MAX; ++k)
    policy += fmt::format("  - {{name: k-{0}, event: {0}, selector: {{pod_uid: {1}}}}}\n",
                          modules::security::kind_name(k), kUidA);
  ASSERT_NO_FATAL_FAILURE(load(policy, json{{"hooks", hooks}}));
  EXPECT_EQ(mod_.tp_btf(), hooks == "tp_btf");
  const int port = 40000 + getpid() % 20000;
  Child r = in_pod(pod.path(), [&] {
    int l = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    ::setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(l, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || ::listen(l, 4) != 0) return 3;
    int c = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return 4;
    sockaddr_in peer{};
    socklen_t pl = sizeof(peer);
    if (::accept(l, reinterpret_cast<sockaddr*>(&peer), &pl) < 0) return 5;
    ::close(::open("/etc/hostname", O_RDONLY));
    (void)::setgid(0);
    (void)::setuid(0);
    (void)::setresuid(-1, -1, -1);
    (void)::syscall(SYS_capset, nullptr, nullptr);
    (void)::ptrace(PTRACE_PEEKDATA, 999999999, nullptr, nullptr);
    (void)::umount("/nonexistent-kagami");
    (void)::mount("none", "/nonexistent-kagami", "tmpfs", 0, nullptr);
    (void)::unshare(0);
    (void)::setns(-1, 0);
    (void)::syscall(SYS_init_module, nullptr, 0, "");
    (void)::syscall(SYS_finit_module, -1, "", 0);
    (void)::syscall(SYS_bpf, 0xffff, nullptr, 0);
    pid_t p = fork();
    if (p == 0) _exit(exec_in("/bin/true", {"true"}));
    int st = 0;
    ::waitpid(p, &st, 0);
    return 0;
  });
  ASSERT_EQ(r.exit_code(), 0);
  auto evs = drain();
  std::set<std::string> kinds;
  for (const auto& e : evs) {
    const auto& p = e["process"];
    if (p["tgid"] == uint32_t(r.pid) || p["ppid"] == uint32_t(r.pid)) kinds.insert(e["kind"].get<std::string>());
  }
  for (uint32_t k = 1; k < SEC_KIND_MAX; ++k) {
    const std::string name = modules::security::kind_name(k);
    if (!has_tracepoint(name)) {
      // CONFIG_MODULES=n: the syscall is ENOSYS and has no tracepoint.
      std::printf("kind %s: no tracepoint on this kernel (the syscall does not exist here)\n", name.c_str());
      continue;
    }
    EXPECT_TRUE(kinds.count(name)) << "no " << name << " event";
  }
  for (const auto& e : of(evs, r.pid)) {
    if (e["kind"] == "connect" || e["kind"] == "bind") {
      EXPECT_EQ(e["net"]["addr"], "127.0.0.1");
      EXPECT_EQ(e["net"]["port"], port);
    }
    if (e["kind"] == "accept") {
      EXPECT_EQ(e["net"]["addr"], "127.0.0.1") << e.dump();
    }
    if (e["kind"] == "open") {
      EXPECT_EQ(e["file"]["path"], "/etc/hostname");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Hooks, SecurityHooks, ::testing::Values("tracepoint", "tp_btf"),
                         [](const auto& info) { return std::string(info.param); });

TEST_F(SecurityKernel, KillLandsBeforeTheProcessActsOnTheResult) {
  TestPod pod(base_, kUidA, kCidA);
  ASSERT_FALSE(pod.path().empty());
  const std::string dir = "/tmp/kagami-test-sec-kill-" + std::to_string(getpid());
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  struct Cleanup {
    std::string d;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  } cleanup{dir};
  ASSERT_NO_FATAL_FAILURE(load(fmt::format(R"(rules:
  - name: no-writes-here
    event: open
    selector: {{container: {0}}}
    match: {{path_prefix: {1}/, open: write}}
    actions: [alert, kill]
  - name: no-shell
    event: exec
    selector: {{container: {0}, binary: [sh, dash]}}
    actions: [kill]
)",
                                           kCidA.substr(0, 12), dir)));
  // The open succeeds in the kernel (O_CREAT makes the file), but the
  // process never returns to write into it.
  const std::string file = dir + "/loot";
  Child w = in_pod(pod.path(), [&] {
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT, 0600);
    if (fd >= 0 && ::write(fd, "pwned", 5) == 5) return 0;
    return 1;
  });
  EXPECT_TRUE(w.killed_by_sigkill()) << "status " << w.status;
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0) {
    EXPECT_EQ(st.st_size, 0) << "the killed process wrote into the file";
  }
  // A shell killed at exec never runs its command.
  const std::string marker = dir + "/shell-ran";
  Child sh = in_pod(pod.path(), [&] { return exec_in("/bin/sh", {"sh", "-c", "echo ran > " + marker}); });
  EXPECT_TRUE(sh.killed_by_sigkill()) << "status " << sh.status;
  EXPECT_FALSE(fs::exists(marker));
  // Reads there, and the same write outside the pod, go on.
  Child r = in_pod(pod.path(), [&] { return ::open(dir.c_str(), O_RDONLY | O_DIRECTORY) >= 0 ? 0 : 1; });
  EXPECT_EQ(r.exit_code(), 0);
  Child outside = in_pod(base_.path(), [&] {
    int fd = ::open((dir + "/ok").c_str(), O_WRONLY | O_CREAT, 0600);
    return fd >= 0 && ::write(fd, "x", 1) == 1 ? 0 : 1;
  });
  EXPECT_EQ(outside.exit_code(), 0);
  auto evs = drain();
  auto we = of(evs, w.pid);
  ASSERT_FALSE(we.empty());
  EXPECT_EQ(we[0]["rule"], "no-writes-here");
  EXPECT_EQ(we[0]["killed"], true);
  EXPECT_EQ(we[0]["actions"], json({"alert", "kill"}));
  auto se = of(evs, sh.pid);
  ASSERT_FALSE(se.empty());
  EXPECT_EQ(se[0]["rule"], "no-shell");
  EXPECT_EQ(se[0]["killed"], true);
  EXPECT_TRUE(of(evs, outside.pid).empty());
}

TEST_F(SecurityKernel, DenyFailsWithEpermInThePodOnly) {
  if (!core::probe_feature("cgroup_sock_addr").available) GTEST_SKIP() << "needs cgroup sock_addr hooks";
  TestPod pod(base_, kUidA, kCidA);
  ASSERT_FALSE(pod.path().empty());
  const int port = 41000 + getpid() % 20000;
  ASSERT_NO_FATAL_FAILURE(load(fmt::format(R"(rules:
  - name: no-egress-outside-10
    event: connect
    selector: {{pod_uid: {0}}}
    match: {{not_cidr: 10.0.0.0/8}}
    actions: [alert, deny]
  - name: no-listen-port
    event: bind
    selector: {{pod_uid: {0}}}
    match: {{port: {1}}}
    actions: [deny]
  - name: no-raw-inet
    event: socket
    selector: {{pod_uid: {0}}}
    match: {{arg: {{index: 1, equals: 3, mask: 0xf}}}}
    actions: [deny]
)",
                                           kUidA, port)));
  auto attempt = [&](const std::string& cg) {
    return in_pod(cg, [&] {
      int rc = 0;
      int s = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(9);
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 && errno == EPERM) rc |= 1;
      int b = ::socket(AF_INET, SOCK_STREAM, 0);
      sa.sin_port = htons(port);
      if (::bind(b, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 && errno == EPERM) rc |= 2;
      if (::socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) < 0 && errno == EPERM) rc |= 4;
      return rc;
    });
  };
  Child in = attempt(pod.path());
  EXPECT_EQ(in.exit_code(), 7) << "connect, bind and raw socket must all fail with EPERM in the pod";
  Child out = attempt(base_.path());
  EXPECT_EQ(out.exit_code(), 0) << "nothing is denied outside the pod";
  auto evs = drain();
  std::set<std::string> rules;
  for (const auto& e : of(evs, in.pid)) {
    EXPECT_EQ(e["denied"], true);
    EXPECT_EQ(e["container"]["pod_uid"], kUidA);
    rules.insert(e["rule"].get<std::string>());
  }
  EXPECT_EQ(rules, (std::set<std::string>{"no-egress-outside-10", "no-listen-port", "no-raw-inet"}));
  EXPECT_TRUE(of(evs, out.pid).empty());
}

TEST_F(SecurityKernel, InvalidPolicyKeepsTheOldOneAndSwitchesLoseOrDoubleNothing) {
  TestPod pod(base_, kUidA, kCidA);
  ASSERT_FALSE(pod.path().empty());
  const std::string target = "/etc/hostname";
  auto policy = [&](const char* name) {
    return fmt::format("rules:\n  - name: {}\n    event: open\n    selector: {{pod_uid: {}}}\n    match: {{path: {}}}\n",
                       name, kUidA, target);
  };
  // No rate limit and a ring for every event: any difference from N is a
  // miss or a double, not a drop.
  constexpr int N = 5000;
  ASSERT_NO_FATAL_FAILURE(load(policy("gen-a"), json{{"rate", 0}, {"ring_kb", 8192}}));
  const uint32_t g0 = mod_.generation();
  auto bad = mod_.replace_policy(*pm_, "rules:\n  - name: x\n    event: open\n    match: {port: 1}\n", "bad.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("bad.yaml:4:"), std::string::npos) << bad.error().message;
  EXPECT_EQ(mod_.generation(), g0);
  Child one = in_pod(pod.path(), [&] { return ::open(target.c_str(), O_RDONLY) >= 0 ? 0 : 1; });
  auto evs = drain();
  ASSERT_EQ(of(evs, one.pid).size(), 1u);
  EXPECT_EQ(of(evs, one.pid)[0]["rule"], "gen-a");

  // N opens in the pod while the policy switches between two that both
  // match them: exactly N events, each named by one of the two.
  std::atomic<bool> done{false};
  int switches = 0;
  // The storm opens in kChunks chunks and starts each one only after a
  // switch (one byte on `go` per switch), so the switches fall between and
  // during its opens however slow a switch is on a loaded machine.
  constexpr int kChunks = 10;
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  std::thread switcher([&] {
    for (int i = 0; !done && i < 40; ++i) {
      auto r = mod_.replace_policy(*pm_, policy(i % 2 ? "gen-a" : "gen-b"), "p.yaml");
      EXPECT_TRUE(r) << r.error().message;
      ++switches;
      char b = 1;
      if (i < kChunks) (void)!::write(go[1], &b, 1);
    }
  });
  std::atomic<uint64_t> drained{0};
  std::thread drainer([&] {
    while (!done) {
      auto n = loop_->drain();
      if (n) drained += *n;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  Child storm = in_pod(pod.path(), [&] {
    for (int i = 0; i < N; ++i) {
      char b;
      if (i % (N / kChunks) == 0 && ::read(go[0], &b, 1) != 1) return 2;
      int fd = ::open(target.c_str(), O_RDONLY);
      if (fd < 0) return 1;
      ::close(fd);
      if (i % 100 == 0) ::usleep(5000);  // spread over the switches
    }
    return 0;
  });
  done = true;
  switcher.join();
  drainer.join();
  ::close(go[0]);
  ::close(go[1]);
  ASSERT_EQ(storm.exit_code(), 0);
  evs = drain();
  auto se = of(evs, storm.pid);
  std::map<std::string, int> by_rule;
  for (const auto& e : se) {
    ++by_rule[e["rule"].get<std::string>()];
    EXPECT_EQ(e["rules"].size(), 1u);
  }
  std::printf("switches %d, events %zu (gen-a %d, gen-b %d)\n", switches, se.size(), by_rule["gen-a"],
              by_rule["gen-b"]);
  EXPECT_GE(switches, kChunks);
  EXPECT_EQ(se.size(), size_t(N)) << "an open was missed or reported twice across policy switches";
  EXPECT_GT(by_rule["gen-a"], 0);
  EXPECT_GT(by_rule["gen-b"], 0);
  auto stats = bus_->stats_json();
  EXPECT_EQ(stats["dropped"].value("security", json::object()).value("ring_full", uint64_t{0}), 0u);
  EXPECT_EQ(stats["dropped"].value("security", json::object()).value("rate_limit", uint64_t{0}), 0u);
}

TEST_F(SecurityKernel, HostilePathsArgvAncestryAndFloods) {
  TestPod noisy(base_, kUidA, kCidA), quiet(base_, kUidB, kCidB);
  ASSERT_FALSE(noisy.path().empty());
  ASSERT_FALSE(quiet.path().empty());
  ASSERT_NO_FATAL_FAILURE(load(fmt::format(R"(rules:
  - {{name: tmp-open, event: open, selector: {{pod_uid: [{0}, {1}]}}, match: {{path_prefix: /tmp/kagami-hostile}}}}
  - {{name: execs, event: exec, selector: {{pod_uid: [{0}, {1}]}}}}
)",
                                           kUidA, kUidB),
                               json{{"rate", 1}, {"burst", 20}, {"ring_kb", 64}}));
  // PATH_MAX: 4095 bytes; the prefix rule still matches, the path is
  // reported truncated, never wrong.
  std::string longp = "/tmp/kagami-hostile/" + std::string(4095 - 20, 'x');
  Child lp = in_pod(noisy.path(), [&] { return ::open(longp.c_str(), O_RDONLY) < 0 ? 0 : 1; });
  // A path in a file-backed page not yet faulted in: unreadable at
  // sys_enter, read at sys_exit.
  const std::string pf = "/tmp/kagami-test-sec-pathfile-" + std::to_string(getpid());
  {
    std::string content = "/tmp/kagami-hostile-reread";
    content.resize(4096, '\0');
    std::ofstream(pf, std::ios::binary) << content;
  }
  Child rr = in_pod(noisy.path(), [&] {
    int fd = ::open(pf.c_str(), O_RDONLY);
    void* p = ::mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) return 2;
    ::posix_fadvise(fd, 0, 4096, POSIX_FADV_DONTNEED);
    return ::open(static_cast<const char*>(p), O_RDONLY) < 0 ? 0 : 1;
  });
  ::unlink(pf.c_str());
  // Huge argv: 5000 arguments.
  Child hv = in_pod(noisy.path(), [] {
    std::vector<std::string> args = {"true"};
    for (int i = 0; i < 5000; ++i) args.push_back("argument-" + std::to_string(i));
    return exec_in("/bin/true", args);
  });
  // Deep ancestry: 40 nested forks, the deepest opens the watched path.
  Child deep = in_pod(noisy.path(), [] {
    for (int d = 0; d < 40; ++d) {
      pid_t p = fork();
      if (p != 0) {
        int st = 0;
        ::waitpid(p, &st, 0);
        _exit(0);
      }
    }
    ::open("/tmp/kagami-hostile-deep", O_RDONLY);
    _exit(0);
    return 0;
  });
  ASSERT_EQ(deep.exit_code(), 0);
  auto evs = drain();
  auto l = of(evs, lp.pid);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0]["file"]["truncated"], true);
  EXPECT_EQ(l[0]["file"]["path"], longp.substr(0, SEC_PATH_LEN - 1));
  auto r = of(evs, rr.pid);
  bool reread = false;
  for (const auto& e : r)
    if (e["kind"] == "open" && e["file"]["path"] == "/tmp/kagami-hostile-reread") reread = true;
  EXPECT_TRUE(reread) << "the path of an unfaulted page was not reported (read at exit)";
  auto h = of(evs, hv.pid);
  ASSERT_FALSE(h.empty());
  EXPECT_EQ(h[0]["process"]["args_truncated"], true);
  EXPECT_EQ(h[0]["process"]["args"][0], "true");
  EXPECT_EQ(h[0]["process"]["args"][1], "argument-0");
  bool deep_seen = false;
  for (const auto& e : evs) {
    if (e["kind"] != "open" || e["file"]["path"] != "/tmp/kagami-hostile-deep") continue;
    deep_seen = true;
    ASSERT_EQ(e["ancestry"].size(), 8u) << e.dump();  // bounded by ancestry_depth
    // The parents, in order, though all are gone by now: each is the
    // parent of the one before.
    EXPECT_EQ(e["ancestry"][0]["pid"], e["process"]["ppid"]);
    for (int i = 0; i + 1 < 8; ++i) EXPECT_EQ(e["ancestry"][i]["ppid"], e["ancestry"][i + 1]["pid"]);
  }
  EXPECT_TRUE(deep_seen);

  // An exec storm in the noisy pod floods the pipeline while the event
  // loop drains, as in the agent; every exec is received or counted by
  // cause, and the quiet pod, exec'ing meanwhile, is still seen.
  auto dropped = [&](const char* cause) {
    return bus_->stats_json()["dropped"].value("security", json::object()).value(cause, uint64_t{0});
  };
  const uint64_t rl0 = dropped("rate_limit"), rf0 = dropped("ring_full");
  const size_t before = bus_->history("security").size();
  constexpr int K = 1000;
  std::atomic<bool> done{false};
  std::thread drainer([&] {
    while (!done) {
      (void)loop_->drain();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  Child storm;
  std::thread storm_thread([&] {
    storm = in_pod(noisy.path(), [] {
      for (int i = 0; i < K; ++i) {
        pid_t p = fork();
        if (p == 0) _exit(exec_in("/bin/true", {"true"}));
        int st = 0;
        ::waitpid(p, &st, 0);
      }
      return 0;
    });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::vector<Child> quiet_runs;
  for (int i = 0; i < 3; ++i) quiet_runs.push_back(in_pod(quiet.path(), [] { return exec_in("/bin/true", {"true"}); }));
  storm_thread.join();
  done = true;
  drainer.join();
  ASSERT_EQ(storm.exit_code(), 0);
  evs = drain();
  uint64_t storm_events = 0;
  for (size_t i = before; i < evs.size(); ++i)
    if (evs[i]["kind"] == "exec" && evs[i]["process"]["ppid"] == uint32_t(storm.pid)) ++storm_events;
  const uint64_t rl = dropped("rate_limit") - rl0, rf = dropped("ring_full") - rf0;
  std::printf("storm: %d execs -> %lu events, rate_limit %lu, ring_full %lu\n", K, (unsigned long)storm_events,
              (unsigned long)rl, (unsigned long)rf);
  EXPECT_GT(rl, 0u);
  EXPECT_EQ(storm_events + rl + rf, uint64_t(K)) << "an exec was lost without being counted";
  for (const auto& q : quiet_runs)
    EXPECT_FALSE(of(evs, q.pid).empty()) << "the quiet pod was blinded by the noisy one";
}

// match.args: exec argument patterns, matched in userspace on the record's
// arguments (alert only); real execs of curl and of a shell running nc.
TEST_F(SecurityKernel, ExecArgumentPatternsMatchRealCommandLines) {
  TestPod pod(base_, kUidA, kCidA);
  ASSERT_FALSE(pod.path().empty());
  ASSERT_NO_FATAL_FAILURE(load(fmt::format(R"(rules:
  - name: curl-plain-http
    event: exec
    selector: {{container: {0}, binary: [curl]}}
    match: {{args: {{prefix: "http://"}}}}
  - name: shell-runs-nc
    event: exec
    selector: {{container: {0}}}
    match:
      args:
        - {{index: 1, equals: "-c"}}
        - {{contains: "nc "}}
)",
                                           kCidA.substr(0, 12))));
  auto run = [&](std::vector<std::string> argv) {
    return in_pod(pod.path(), [argv] {
      int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      return exec_in(argv[0].c_str(), argv);
    });
  };
  Child curl_http = run({"/usr/bin/curl", "-s", "-m", "1", "http://127.0.0.1:9/"});
  Child curl_file = run({"/usr/bin/curl", "-s", "-m", "1", "file:///etc/hostname"});
  Child sh_nc = run({"/bin/sh", "-c", "nc -z -w 1 127.0.0.1 9; exit 0"});
  Child sh_other = run({"/bin/sh", "-c", "echo nc; exit 0"});   // "nc" but not "nc "
  Child sh_no_c = run({"/bin/sh", "-e", "-c", "nc -h; exit 0"});  // -c is not argv[1]
  auto evs = drain();
  auto rules_of = [&](const Child& c) {
    std::set<std::string> r;
    for (const auto& e : of(evs, c.pid))
      if (e["kind"] == "exec")
        for (const auto& x : e["rules"]) r.insert(x.get<std::string>());
    return r;
  };
  EXPECT_EQ(rules_of(curl_http), std::set<std::string>{"curl-plain-http"});
  EXPECT_TRUE(rules_of(curl_file).empty());
  EXPECT_EQ(rules_of(sh_nc), std::set<std::string>{"shell-runs-nc"});
  EXPECT_TRUE(rules_of(sh_other).empty());
  EXPECT_TRUE(rules_of(sh_no_c).empty());
  for (const auto& e : of(evs, sh_nc.pid)) {
    if (e["kind"] != "exec") continue;
    EXPECT_EQ(e["process"]["args"], json({"/bin/sh", "-c", "nc -z -w 1 127.0.0.1 9; exit 0"}));
  }
  // Filtered records are neither events nor drops.
  EXPECT_EQ(bus_->stats_json()["dropped"].value("security", json::object()).value("decode", 0), 0);
}

// openat(dirfd, "shadow") under /etc: resolved from /proc while the dirfd
// is still the directory the kernel saw (same inode), else marked
// unresolved; never a wrong path. The read-shadow rule of the default
// policy matches the path as given, so a relative open is caught here by a
// rule without a path.
TEST_F(SecurityKernel, RelativeOpensResolveFromTheDirfdOrSayWhyNot) {
  TestPod pod(base_, kUidA, kCidA);
  ASSERT_FALSE(pod.path().empty());
  ASSERT_NO_FATAL_FAILURE(load(fmt::format(R"(rules:
  - name: any-open-in-pod
    event: open
    selector: {{container: {0}, binary: [security_kernel]}}
)",
                                           kCidA.substr(0, 12))));
  // Each child opens relative to a dirfd, then waits for the drain (a: the
  // fd stays; b: the fd is replaced by /tmp's under the same number; c: it
  // exits at once; d: relative to its cwd).
  struct Waiter {
    pid_t pid = -1;
    int go[2] = {-1, -1}, ready[2] = {-1, -1};
  };
  auto start = [&](int mode) {
    Waiter w;
    EXPECT_EQ(::pipe(w.go), 0);
    EXPECT_EQ(::pipe(w.ready), 0);
    w.pid = fork();
    if (w.pid == 0) {
      int fd = ::open((pod.path() + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, "0", 1) != 1) _exit(120);
      ::close(fd);
      int dfd = ::open("/etc", O_RDONLY | O_DIRECTORY);
      if (dfd < 0) _exit(121);
      if (mode == 3) {
        if (::fchdir(dfd) != 0) _exit(122);
        ::openat(AT_FDCWD, "shadow", O_RDONLY);
      } else {
        ::openat(dfd, "shadow", O_RDONLY);
      }
      if (mode == 1) {
        int t = ::open("/tmp", O_RDONLY | O_DIRECTORY);
        ::dup2(t, dfd);  // the same number, another directory
      }
      if (mode == 2) _exit(0);
      char c = 1;
      if (::write(w.ready[1], &c, 1) != 1 || ::read(w.go[0], &c, 1) != 1) _exit(123);
      _exit(0);
    }
    if (mode != 2) {
      char c;
      EXPECT_EQ(::read(w.ready[0], &c, 1), 1);
    } else {
      ::waitpid(w.pid, nullptr, 0);
    }
    return w;
  };
  Waiter a = start(0), b = start(1), c = start(2), d = start(3);
  auto evs = drain();  // decoded while a, b and d still run
  for (Waiter* w : {&a, &b, &d}) {
    char x = 1;
    EXPECT_EQ(::write(w->go[1], &x, 1), 1);
    ::waitpid(w->pid, nullptr, 0);
  }
  for (Waiter* w : {&a, &b, &c, &d})
    for (int fd : {w->go[0], w->go[1], w->ready[0], w->ready[1]}) ::close(fd);
  auto shadow_of = [&](pid_t pid) {
    for (const auto& e : of(evs, pid))
      if (e["kind"] == "open" && e["file"]["path"] == "shadow") return e["file"];
    return json();
  };
  json fa = shadow_of(a.pid), fb = shadow_of(b.pid), fc = shadow_of(c.pid), fd = shadow_of(d.pid);
  ASSERT_FALSE(fa.is_null());
  EXPECT_EQ(fa["resolved"], "/etc/shadow") << fa.dump();
  EXPECT_EQ(fa["resolved_late"], true);
  EXPECT_GE(fa["dirfd"].get<int>(), 0);
  ASSERT_FALSE(fb.is_null());
  EXPECT_TRUE(fb["resolved"].is_null()) << "a reused dirfd gave a path: " << fb.dump();
  EXPECT_EQ(fb["unresolved"], "the dirfd now refers to another directory");
  ASSERT_FALSE(fc.is_null());
  EXPECT_TRUE(fc["resolved"].is_null()) << fc.dump();
  EXPECT_TRUE(fc.contains("unresolved"));
  ASSERT_FALSE(fd.is_null());
  EXPECT_EQ(fd["dirfd"], -100);
  EXPECT_EQ(fd["resolved"], "/etc/shadow") << fd.dump();
}

// Selectors by Kubernetes namespace and pod labels, resolved against the
// declared workloads (the config's `workloads:`): a cgroup workload is its
// pod's cgroup and below; a netns workload is the cgroups of the processes
// in that namespace, found again by the 1-second refresh, so a pod whose
// process enters the namespace after the policy is in force is covered.
TEST_F(SecurityKernel, NamespaceAndLabelSelectorsFollowDeclaredWorkloads) {
  TestPod amf(base_, kUidA, kCidA), smf(base_, kUidB, kCidB);
  ASSERT_FALSE(amf.path().empty());
  ASSERT_FALSE(smf.path().empty());
  test::TestNetwork net;
  auto host = net.add_host();
  ASSERT_TRUE(host) << host.error().message;
  const std::string kUidC = "6f1b2c3d-0000-4000-8000-00000000000c";
  const std::string kCidC = std::string(56, 'c') + "0000000c";
  TestPod upf(base_, kUidC, kCidC);
  ASSERT_FALSE(upf.path().empty());
  auto pod_slice = [](const TestPod& p) { return fs::path(p.path()).parent_path().string(); };
  json workloads = json::array({
      {{"name", "amf"}, {"namespace", "core5g"}, {"labels", {{"app", "amf"}, {"tier", "cp"}}}, {"cgroup", pod_slice(amf)}},
      {{"name", "smf"}, {"namespace", "core5g"}, {"labels", {{"app", "smf"}, {"tier", "cp"}}}, {"cgroup", pod_slice(smf)}},
      {{"name", "upf"}, {"namespace", "edge"}, {"labels", {{"app", "upf"}}}, {"netns", host->ns}},
  });
  ASSERT_NO_FATAL_FAILURE(load(R"(rules:
  - name: shell-in-amf
    event: exec
    selector: {pod_labels: {app: amf}, binary: [sh]}
  - name: cp-but-smf
    event: exec
    selector:
      namespace: [core5g]
      pod_label_expressions:
        - {key: tier, operator: In, values: [cp]}
        - {key: app, operator: NotIn, values: [smf]}
  - name: hostname-read-at-edge
    event: open
    selector: {namespace: edge}
    match: {path: /etc/hostname}
)",
                               {{"workloads", workloads}}));
  ASSERT_TRUE(mod_.start(*pm_));
  Child sa = in_pod(amf.path(), [] { return exec_in("/bin/sh", {"sh", "-c", "exit 0"}); });
  Child sb = in_pod(smf.path(), [] { return exec_in("/bin/sh", {"sh", "-c", "exit 0"}); });
  Child ha = in_pod(amf.path(), [] { return ::open("/etc/hostname", O_RDONLY) >= 0 ? 0 : 1; });
  ASSERT_EQ(sa.exit_code(), 0);
  ASSERT_EQ(sb.exit_code(), 0);
  ASSERT_EQ(ha.exit_code(), 0);

  // The UPF's process enters its pod and its namespace only now; it opens
  // once told to, after two refresh periods.
  int go[2], ready[2];
  ASSERT_EQ(::pipe(go), 0);
  ASSERT_EQ(::pipe(ready), 0);
  const std::string nspath = "/run/netns/" + host->ns;
  pid_t late = fork();
  if (late == 0) {
    int fd = ::open((upf.path() + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "0", 1) != 1) _exit(120);
    ::close(fd);
    int ns = ::open(nspath.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) _exit(121);
    char c = 1;
    if (::write(ready[1], &c, 1) != 1 || ::read(go[0], &c, 1) != 1) _exit(122);
    _exit(::open("/etc/hostname", O_RDONLY) >= 0 ? 0 : 1);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  ASSERT_EQ(::write(go[1], &c, 1), 1);
  Child lr;
  lr.pid = late;
  ::waitpid(late, &lr.status, 0);
  for (int fd : {go[0], go[1], ready[0], ready[1]}) ::close(fd);
  ASSERT_EQ(lr.exit_code(), 0);

  auto evs = drain();
  auto rules_of = [&](pid_t pid) {
    std::set<std::string> r;
    for (const auto& e : of(evs, pid))
      for (const auto& x : e["rules"]) r.insert(x.get<std::string>());
    return r;
  };
  EXPECT_EQ(rules_of(sa.pid), (std::set<std::string>{"shell-in-amf", "cp-but-smf"}));
  EXPECT_TRUE(rules_of(sb.pid).empty()) << "the smf pod matched a rule selecting others";
  EXPECT_TRUE(rules_of(ha.pid).empty()) << "an open outside the edge namespace matched";
  EXPECT_EQ(rules_of(late), (std::set<std::string>{"hostname-read-at-edge"}))
      << "the netns workload's process was not covered within the refresh";
  for (const auto& e : of(evs, late)) EXPECT_EQ(e["container"]["pod_uid"], kUidC);
  mod_.stop();
}

}  // namespace
}  // namespace kagami
