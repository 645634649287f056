// Workload identity against the real cgroup v2 hierarchy (root): a pod
// container's cgroup made the way kubelet + containerd make it (systemd
// driver), resolved by id, and the id BPF reports for a process moved into
// it. Every cgroup created here lives under <v2 root>/kagami-test-<pid> and
// is removed in a destructor, so a failed assertion leaves nothing behind.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>
#include <string>
#include <vector>

#include "core/probe.h"
#include "identity/identity.h"
#include "identity/netns.h"
#include "support/netns.h"

namespace {

using kagami::identity::Resolver;

const std::string kCid = "9c1e5b7a3f2d4e6c8b0a1f3e5d7c9b2a4f6e8d0c2b4a6f8e0d2c4b6a8f0e2d4c";
const std::string kUid = "5d3c1b2a-7e6f-4a8b-9c0d-1e2f3a4b5c6d";
const std::string kUidUnderscore = "5d3c1b2a_7e6f_4a8b_9c0d_1e2f3a4b5c6d";

// Creates nested cgroups and removes them (deepest first) on destruction.
class TestCgroups {
 public:
  explicit TestCgroups(std::string root) : root_(std::move(root)) {}
  ~TestCgroups() {
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) ::rmdir(it->c_str());
  }
  // mkdir -p of rel (relative to root); returns false with errno set.
  bool make(const std::string& rel) {
    std::string path = root_;
    size_t i = 1;
    while (i <= rel.size()) {
      size_t j = rel.find('/', i);
      if (j == std::string::npos) j = rel.size();
      path += "/" + rel.substr(i, j - i);
      if (::mkdir(path.c_str(), 0755) == 0) made_.push_back(path);
      else if (errno != EEXIST) return false;
      i = j + 1;
    }
    return true;
  }
  std::string abs(const std::string& rel) const { return root_ + rel; }

 private:
  std::string root_;
  std::vector<std::string> made_;
};

std::string test_base() { return "/kagami-test-" + std::to_string(::getpid()); }

std::string pod_container_path() {
  return test_base() + "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kUidUnderscore +
         ".slice/cri-containerd-" + kCid + ".scope";
}

class IdentityKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    KAGAMI_REQUIRE_ROOT();
    if (!resolver_.root_is_cgroup2()) GTEST_SKIP() << "no cgroup v2 hierarchy mounted";
  }
  Resolver resolver_;
};

TEST_F(IdentityKernel, ResolvesAPodContainerCgroupById) {
  TestCgroups cg(resolver_.root());
  const std::string rel = pod_container_path();
  ASSERT_TRUE(cg.make(rel)) << cg.abs(rel) << ": " << std::strerror(errno);
  struct stat st{};
  ASSERT_EQ(::stat(cg.abs(rel).c_str(), &st), 0);
  auto id = resolver_.id_of(rel);
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(*id, static_cast<uint64_t>(st.st_ino));

  auto w = resolver_.resolve(*id);
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ(w->runtime, "containerd");
  EXPECT_EQ(w->container_id, kCid);
  EXPECT_EQ(w->pod_uid, kUid);
  EXPECT_EQ(w->qos, "burstable");
  EXPECT_EQ(w->cgroup_path, rel);
  EXPECT_EQ(resolver_.stats().walks, 1u);  // first resolve walks the tree once
}

TEST_F(IdentityKernel, ContainerCreatedAfterTheWalkIsFoundOnMiss) {
  TestCgroups cg(resolver_.root());
  ASSERT_TRUE(cg.make(test_base()));
  auto base = resolver_.id_of(test_base());
  ASSERT_TRUE(base);
  ASSERT_TRUE(resolver_.resolve(*base));  // walks now, before the container exists
  resolver_.set_rescan_interval(std::chrono::hours(1));  // a miss may not re-walk...
  const std::string rel = pod_container_path();
  ASSERT_TRUE(cg.make(rel));
  auto id = resolver_.id_of(rel);
  ASSERT_TRUE(id);
  auto w = resolver_.resolve(*id);  // ...so this is open_by_handle_at's answer
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ(w->container_id, kCid);
  EXPECT_EQ(w->cgroup_path, rel);
  auto s = resolver_.stats();
  EXPECT_EQ(s.walks, 1u);
  EXPECT_EQ(s.handle_lookups, 1u);
  // Cached now: a second resolve is a hit.
  ASSERT_TRUE(resolver_.resolve(*id));
  EXPECT_EQ(resolver_.stats().hits, s.hits + 1);
}

TEST_F(IdentityKernel, RemovedCgroupIsAClearError) {
  uint64_t gone = 0;
  {
    TestCgroups cg(resolver_.root());
    ASSERT_TRUE(cg.make(test_base() + "/short-lived"));
    auto id = resolver_.id_of(test_base() + "/short-lived");
    ASSERT_TRUE(id);
    gone = *id;
  }
  auto w = resolver_.resolve(gone);
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message.find("cgroup id " + std::to_string(gone)), std::string::npos)
      << w.error().message;
  EXPECT_NE(w.error().message.find("no such cgroup"), std::string::npos) << w.error().message;
}

TEST_F(IdentityKernel, BpfSeesTheSameIdForAProcessInTheCgroup) {
  TestCgroups cg(resolver_.root());
  const std::string rel = pod_container_path();
  ASSERT_TRUE(cg.make(rel));
  auto expect = resolver_.id_of(rel);
  ASSERT_TRUE(expect);

  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Child: join the container's cgroup ("0" = the writing process), then
    // ask BPF which cgroup it is in. Report 0 on any failure.
    ::close(pipefd[0]);
    uint64_t id = 0;
    int fd = ::open(cg.abs(rel + "/cgroup.procs").c_str(), O_WRONLY);
    if (fd >= 0 && ::write(fd, "0", 1) == 1) {
      auto r = kagami::core::probe_detail::bpf_current_cgroup_id();
      if (r) id = *r;
    }
    if (::write(pipefd[1], &id, sizeof(id)) != sizeof(id)) ::_exit(2);
    ::_exit(0);
  }
  ::close(pipefd[1]);
  uint64_t seen = 0;
  ssize_t n = ::read(pipefd[0], &seen, sizeof(seen));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(child, &status, 0);  // reaped: the cgroup is empty again and can go
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof(seen)));
  ASSERT_NE(seen, 0u) << "child could not join the cgroup or run the BPF program";
  EXPECT_EQ(seen, *expect);

  auto w = resolver_.resolve(seen);
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ(w->pod_uid, kUid);
  EXPECT_EQ(w->container_id, kCid);
}

TEST_F(IdentityKernel, ProcSelfCgroupOfThisProcessResolves) {
  // The resolver and /proc/<pid>/cgroup agree on where this process lives.
  auto id = kagami::core::probe_detail::bpf_current_cgroup_id();
  ASSERT_TRUE(id) << id.error().message;
  auto path = resolver_.path_of(*id);
  ASSERT_TRUE(path) << path.error().message;
  FILE* f = std::fopen("/proc/self/cgroup", "r");
  ASSERT_NE(f, nullptr);
  char buf[4096];
  size_t n = std::fread(buf, 1, sizeof(buf), f);
  std::fclose(f);
  std::string content(buf, n);
  size_t at = content.find("0::");
  ASSERT_NE(at, std::string::npos) << content;
  std::string v2 = content.substr(at + 3, content.find('\n', at) - at - 3);
  EXPECT_EQ(*path, v2);
}

// A child process, killed and reaped on destruction.
class Child {
 public:
  explicit Child(std::vector<std::string> argv) {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      ::execvp(a[0], a.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

uint64_t netns_ino(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

// A pod's host-side veth: its peer is in a namespace where a process of the
// pod's container cgroup runs, and interface_owner() finds that pod.
TEST_F(IdentityKernel, InterfaceOwnerIsThePodInThePeerNamespace) {
  kagami::test::TestNetwork net;
  auto h = net.add_host();
  ASSERT_TRUE(h) << h.error().message;
  TestCgroups cg(resolver_.root());
  const std::string rel = pod_container_path();
  ASSERT_TRUE(cg.make(rel)) << std::strerror(errno);
  {
    Child c({"ip", "netns", "exec", h->ns, "sleep", "60"});
    ASSERT_GT(c.pid(), 0);
    const std::string procs = cg.abs(rel) + "/cgroup.procs";
    { std::ofstream(procs) << c.pid() << "\n"; }
    const uint64_t own = netns_ino("/proc/self/ns/net");
    for (int i = 0; i < 200 && netns_ino("/proc/" + std::to_string(c.pid()) + "/ns/net") == own; i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_NE(netns_ino("/proc/" + std::to_string(c.pid()) + "/ns/net"), own) << "the child never entered " << h->ns;

    auto o = kagami::identity::interface_owner(h->host_if);
    ASSERT_TRUE(o) << o.error().message;
    EXPECT_TRUE(o->peer_elsewhere);
    EXPECT_GE(o->peer_nsid, 0);
    EXPECT_EQ(o->pid, c.pid());
    EXPECT_EQ(o->workload.pod_uid, kUid);
    EXPECT_EQ(o->workload.container_id, kCid);
  }  // the child is gone before its cgroup is removed

  // With no process in the namespace, the peer is still known, its owner not.
  auto o = kagami::identity::interface_owner(h->host_if);
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_TRUE(o->peer_elsewhere);
  EXPECT_EQ(o->pid, 0);
  // A device with no peer elsewhere, and no device at all.
  auto lo = kagami::identity::interface_owner("lo");
  ASSERT_TRUE(lo) << lo.error().message;
  EXPECT_FALSE(lo->peer_elsewhere);
  auto none = kagami::identity::interface_owner("kg-no-such0");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("kg-no-such0"), std::string::npos);
}

}  // namespace
