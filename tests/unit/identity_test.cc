// parse_cgroup_path / parse_proc_cgroup against real-world layouts, the
// Resolver against a plain directory tree (no root needed), and a
// deterministic mutation fuzz of the parser.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>

#include "identity/identity.h"

namespace {

using kagami::identity::parse_cgroup_path;
using kagami::identity::parse_proc_cgroup;
using kagami::identity::Resolver;
using kagami::identity::Workload;

const std::string kCid = "4b7f6c3e1d0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c";
const std::string kCid2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kUid = "8f3c2a1b-4d5e-4f60-9a7b-1c2d3e4f5a6b";
const std::string kUidUnderscore = "8f3c2a1b_4d5e_4f60_9a7b_1c2d3e4f5a6b";

struct Case {
  std::string path;
  std::string runtime, container_id, pod_uid, qos, unit;
};

class ParsePath : public ::testing::TestWithParam<Case> {};

TEST_P(ParsePath, Classifies) {
  const Case& c = GetParam();
  Workload w = parse_cgroup_path(c.path);
  EXPECT_EQ(w.runtime, c.runtime) << c.path;
  EXPECT_EQ(w.container_id, c.container_id) << c.path;
  EXPECT_EQ(w.pod_uid, c.pod_uid) << c.path;
  EXPECT_EQ(w.qos, c.qos) << c.path;
  EXPECT_EQ(w.unit, c.unit) << c.path;
  EXPECT_EQ(w.cgroup_path, c.path);
  EXPECT_EQ(w.is_pod(), !c.pod_uid.empty());
}

// Layouts as kubelet (systemd and cgroupfs drivers), containerd, CRI-O,
// Docker, Podman and systemd write them on real nodes.
INSTANTIATE_TEST_SUITE_P(
    RealWorld, ParsePath,
    ::testing::Values(
        // --- Kubernetes, systemd cgroup driver (cgroup v2 default since 1.22)
        Case{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kUidUnderscore +
                 ".slice/cri-containerd-" + kCid + ".scope",
             "containerd", kCid, kUid, "burstable", ""},
        Case{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + kUidUnderscore +
                 ".slice/crio-" + kCid + ".scope",
             "cri-o", kCid, kUid, "besteffort", ""},
        Case{"/kubepods.slice/kubepods-pod" + kUidUnderscore + ".slice/docker-" + kCid + ".scope",
             "docker", kCid, kUid, "guaranteed", ""},
        Case{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kUidUnderscore +
                 ".slice/crio-conmon-" + kCid + ".scope",
             "cri-o", kCid, kUid, "burstable", ""},
        // pod-level cgroup: the pod but no container
        Case{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kUidUnderscore + ".slice",
             "", "", kUid, "burstable", ""},
        // a process nested below the container's own cgroup
        Case{"/kubepods.slice/kubepods-pod" + kUidUnderscore + ".slice/cri-containerd-" + kCid +
                 ".scope/init.scope",
             "containerd", kCid, kUid, "guaranteed", ""},
        // kind: kubelet runs with --kubelet-cgroups under kubelet.slice
        Case{"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
             "kubelet-kubepods-besteffort-pod" + kUidUnderscore + ".slice/cri-containerd-" + kCid + ".scope",
             "containerd", kCid, kUid, "besteffort", ""},
        // kind seen from the host: the node is itself a docker container
        Case{"/system.slice/docker-" + kCid2 + ".scope/kubelet.slice/kubelet-kubepods.slice/"
             "kubelet-kubepods-pod" + kUidUnderscore + ".slice/cri-containerd-" + kCid + ".scope",
             "containerd", kCid, kUid, "guaranteed", ""},
        // static pod: UID is an md5 of the manifest, 32 hex without dashes
        Case{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6b1c1f0b0d2ee39d3e4b6f2c1d0a9f37"
             ".slice/cri-containerd-" + kCid + ".scope",
             "containerd", kCid, "6b1c1f0b0d2ee39d3e4b6f2c1d0a9f37", "burstable", ""},
        // QoS slices alone
        Case{"/kubepods.slice/kubepods-burstable.slice", "", "", "", "", ""},
        Case{"/kubepods.slice", "", "", "", "", ""},
        // --- Kubernetes, cgroupfs driver (cgroup v1 and v2)
        Case{"/kubepods/burstable/pod" + kUid + "/" + kCid, "", kCid, kUid, "burstable", ""},
        Case{"/kubepods/besteffort/pod" + kUid + "/" + kCid, "", kCid, kUid, "besteffort", ""},
        Case{"/kubepods/pod" + kUid + "/" + kCid, "", kCid, kUid, "guaranteed", ""},
        Case{"/kubepods/burstable/pod" + kUid + "/crio-" + kCid, "cri-o", kCid, kUid, "burstable", ""},
        Case{"/kubepods/pod" + kUid, "", "", kUid, "guaranteed", ""},
        // --- Docker standalone
        Case{"/docker/" + kCid, "docker", kCid, "", "", ""},
        Case{"/system.slice/docker-" + kCid + ".scope", "docker", kCid, "", "", ""},
        // docker-in-docker: the innermost container is the process's
        Case{"/docker/" + kCid2 + "/docker/" + kCid, "docker", kCid, "", "", ""},
        // --- Podman (systemd, cgroupfs, rootless)
        Case{"/machine.slice/libpod-" + kCid + ".scope", "podman", kCid, "", "", ""},
        Case{"/machine.slice/libpod-conmon-" + kCid + ".scope", "podman", kCid, "", "", ""},
        Case{"/libpod_parent/libpod-" + kCid, "podman", kCid, "", "", ""},
        Case{"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + kCid + ".scope",
             "podman", kCid, "", "", ""},
        // --- containerd without Kubernetes
        Case{"/system.slice/nerdctl-" + kCid + ".scope", "containerd", kCid, "", "", ""},
        Case{"/k8s.io/" + kCid, "containerd", kCid, "", "", ""},
        // --- systemd units and the host
        Case{"/system.slice/sshd.service", "systemd", "", "", "", "sshd.service"},
        Case{"/system.slice/containerd.service", "systemd", "", "", "", "containerd.service"},
        Case{"/user.slice/user-1000.slice/session-3.scope", "systemd", "", "", "", "session-3.scope"},
        Case{"/init.scope", "host", "", "", "", "init.scope"},
        Case{"/", "host", "", "", "", ""},
        // --- not containers: near misses must not be taken for one
        Case{"", "", "", "", "", ""},
        Case{"/docker/" + kCid.substr(0, 12), "", "", "", "", ""},  // short id
        Case{"/system.slice/docker-" + kCid + "x.scope", "systemd", "", "", "",
             "docker-" + kCid + "x.scope"},
        Case{"/pod" + kUid + "/" + kCid, "", kCid, "", "", ""},  // pod dir outside kubepods
        Case{"/kubepods/burstable/pod1234/" + kCid, "", kCid, "", "", ""},  // bad uid
        Case{"/process_api/44839119d53bb10732bd2b79a2c973cf", "", "", "", "", ""}));

TEST(ParsePath, DeletedSuffixFromProcIsIgnored) {
  Workload w = parse_cgroup_path("/docker/" + kCid + " (deleted)");
  EXPECT_EQ(w.container_id, kCid);
  EXPECT_EQ(w.runtime, "docker");
}

TEST(ParseProcCgroup, V1LinesPickThePodContainer) {
  std::string content =
      "12:memory:/kubepods/burstable/pod" + kUid + "/" + kCid + "\n"
      "11:cpu,cpuacct:/kubepods/burstable/pod" + kUid + "/" + kCid + "\n"
      "1:name=systemd:/kubepods/burstable/pod" + kUid + "/" + kCid + "\n"
      "0::/\n";
  Workload w = parse_proc_cgroup(content);
  EXPECT_EQ(w.container_id, kCid);
  EXPECT_EQ(w.pod_uid, kUid);
  EXPECT_EQ(w.qos, "burstable");
  EXPECT_EQ(w.cgroup_path, "/kubepods/burstable/pod" + kUid + "/" + kCid);
}

TEST(ParseProcCgroup, V2OnlyLine) {
  Workload w = parse_proc_cgroup("0::/kubepods.slice/kubepods-pod" + kUidUnderscore +
                                 ".slice/cri-containerd-" + kCid + ".scope\n");
  EXPECT_EQ(w.runtime, "containerd");
  EXPECT_EQ(w.pod_uid, kUid);
  EXPECT_EQ(w.qos, "guaranteed");
}

TEST(ParseProcCgroup, TiesGoToV2AndHostIsRecognised) {
  // This CI machine's own /proc/self/cgroup (hybrid layout).
  std::string content =
      "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/44839119d53bb10732bd2b79a2c973cf\n0::/\n";
  Workload w = parse_proc_cgroup(content);
  EXPECT_EQ(w.runtime, "host");
  EXPECT_EQ(w.cgroup_path, "/");
}

TEST(ParseProcCgroup, PathWithColonAndGarbageLines) {
  Workload w = parse_proc_cgroup("garbage\n\n5:devices\n0::/docker/" + kCid + "\n");
  EXPECT_EQ(w.container_id, kCid);
  EXPECT_EQ(parse_proc_cgroup("").runtime, "");
  Workload c = parse_proc_cgroup("0::/system.slice/a:b.service\n");
  EXPECT_EQ(c.unit, "a:b.service");
}

// The Resolver on a plain directory tree: inode numbers stand in for cgroup
// ids exactly as they do on cgroupfs (the kernel test covers the real thing).
class ResolverOnDirs : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("kagami-identity-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::filesystem::path root_;
};

TEST_F(ResolverOnDirs, ResolvesAndRefreshesOnMiss) {
  std::string pod = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kUidUnderscore + ".slice";
  std::string ctr = pod + "/cri-containerd-" + kCid + ".scope";
  std::filesystem::create_directories(root_.string() + ctr);
  Resolver r(root_.string());
  EXPECT_FALSE(r.root_is_cgroup2());
  auto id = r.id_of(ctr);
  ASSERT_TRUE(id) << id.error().message;
  auto w = r.resolve(*id);
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ(w->container_id, kCid);
  EXPECT_EQ(w->pod_uid, kUid);
  EXPECT_EQ(w->cgroup_path, ctr);
  auto root_id = r.id_of("/");
  ASSERT_TRUE(root_id);
  auto host = r.resolve(*root_id);
  ASSERT_TRUE(host);
  EXPECT_EQ(host->runtime, "host");

  // A container created after the first walk is found by the refresh...
  r.set_rescan_interval(std::chrono::milliseconds(0));
  std::string ctr2 = pod + "/cri-containerd-" + kCid2 + ".scope";
  std::filesystem::create_directories(root_.string() + ctr2);
  auto id2 = r.id_of(ctr2);
  ASSERT_TRUE(id2);
  auto w2 = r.resolve(*id2);
  ASSERT_TRUE(w2) << w2.error().message;
  EXPECT_EQ(w2->container_id, kCid2);
  EXPECT_EQ(r.stats().walks, 2u);
}

TEST_F(ResolverOnDirs, MissesAreRateLimited) {
  Resolver r(root_.string());
  r.set_rescan_interval(std::chrono::hours(1));
  auto first = r.resolve(0xdeadbeefULL);  // walks once (initial), then rate-limited
  ASSERT_FALSE(first);
  EXPECT_NE(first.error().message.find("cgroup id 3735928559"), std::string::npos) << first.error().message;
  EXPECT_NE(first.error().message.find("rate-limited"), std::string::npos) << first.error().message;
  for (int i = 0; i < 100; ++i) ASSERT_FALSE(r.resolve(0xdeadbeefULL + i));
  EXPECT_EQ(r.stats().walks, 1u);
  EXPECT_EQ(r.stats().misses, 101u);
}

TEST(Resolver, MissingRootIsAClearError) {
  Resolver r("/nonexistent/kagami-cgroup-root");
  auto w = r.resolve(1);
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message.find("/nonexistent/kagami-cgroup-root"), std::string::npos) << w.error().message;
  EXPECT_NE(w.error().message.find("No such file"), std::string::npos) << w.error().message;
  auto id = r.id_of("/x");
  ASSERT_FALSE(id);
}

// Deterministic mutation fuzz: flips, inserts, deletes and splices around
// real paths must never crash, and whatever comes out must be well-formed.
TEST(ParsePathFuzz, MutationsStayWellFormed) {
  std::vector<std::string> seeds = {
      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kUidUnderscore +
          ".slice/cri-containerd-" + kCid + ".scope",
      "/kubepods/burstable/pod" + kUid + "/" + kCid,
      "/system.slice/docker-" + kCid + ".scope",
      "/docker/" + kCid,
      "12:memory:/kubepods/pod" + kUid + "/crio-" + kCid + "\n0::/\n",
  };
  const std::string alphabet("/-_.:abcdef0123456789podkubeslicescope\n\0 ", 41);
  std::mt19937_64 rng(0x6b6167616d69ULL);  // fixed seed: failures reproduce
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      size_t pos = s.empty() ? 0 : rng() % s.size();
      switch (rng() % 4) {
        case 0: if (!s.empty()) s[pos] = alphabet[rng() % alphabet.size()]; break;
        case 1: s.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
        case 2: if (!s.empty()) s.erase(pos, 1 + rng() % 8); break;
        case 3: s.insert(pos, seeds[rng() % seeds.size()].substr(rng() % 40, rng() % 80)); break;
      }
    }
    Workload w = parse_cgroup_path(s);
    ASSERT_EQ(w.cgroup_path, s);
    if (!w.container_id.empty()) {
      ASSERT_EQ(w.container_id.size(), 64u) << s;
    }
    if (!w.pod_uid.empty()) {
      ASSERT_TRUE(w.pod_uid.size() == 36 || w.pod_uid.size() == 32) << s;
      ASSERT_EQ(w.pod_uid.find('_'), std::string::npos) << s;
      ASSERT_FALSE(w.qos.empty()) << s;
    } else {
      ASSERT_TRUE(w.qos.empty()) << s;
    }
    Workload p = parse_proc_cgroup(s);
    if (!p.container_id.empty()) {
      ASSERT_EQ(p.container_id.size(), 64u) << s;
    }
  }
}

}  // namespace
