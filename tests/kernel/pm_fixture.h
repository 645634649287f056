// Shared fixture for the program-manager kernel tests: a unique pin root per
// test (/sys/fs/bpf/kagami-test-<pid>-<n>), test hosts, and cleanup that
// runs even when an assertion fails (unload everything, then remove the pin
// root recursively), so nothing is left in the kernel.
#pragma once

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "common/fd.h"

#include "core/program_manager.h"
#include "support/pins.h"
#include "support/netns.h"

namespace kagami::test {

inline std::string bpf_obj(const std::string& name) {
  return std::string(KAGAMI_BPF_DIR) + "/" + name + ".bpf.o";
}

inline core::LoadRequest request(const std::string& name, const std::string& obj,
                                 const std::vector<std::string>& points) {
  core::LoadRequest r;
  r.name = name;
  r.source.path = bpf_obj(obj);
  for (const auto& p : points) {
    auto ap = core::AttachPoint::parse(p);
    EXPECT_TRUE(ap) << (ap ? "" : ap.error().message);
    if (ap) r.attach.push_back(*ap);
  }
  return r;
}

class PmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "needs root (CAP_BPF, CAP_NET_ADMIN): run the test as root";
    pin_root_ = test::fresh_pin_root("pm");
    core::ManagerOptions o;
    o.pin_root = pin_root_;
    auto m = core::ProgramManager::create(o);
    ASSERT_TRUE(m) << m.error().message;
    pm_ = std::move(*m);
  }

  void TearDown() override {
    if (pm_) {
      for (const auto& p : pm_->list()) {
        auto r = pm_->unload(p.name);
        EXPECT_TRUE(r) << r.error().message;
      }
      pm_.reset();
    }
    if (!pin_root_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(pin_root_, ec);
    }
  }

  // A new manager on the same pin root (an agent restart).
  void restart() {
    pm_.reset();
    core::ManagerOptions o;
    o.pin_root = pin_root_;
    auto m = core::ProgramManager::create(o);
    ASSERT_TRUE(m) << m.error().message;
    pm_ = std::move(*m);
  }

  uint64_t read_u64(const std::string& prog, const std::string& map, uint32_t key) {
    auto fd = pm_->map_fd(prog, map);
    EXPECT_TRUE(fd) << fd.error().message;
    if (!fd) return 0;
    uint64_t v = 0;
    if (bpf_lookup(fd->get(), &key, &v) != 0) return 0;
    return v;
  }

  static int bpf_lookup(int fd, const void* key, void* value) { return bpf_map_lookup_elem(fd, key, value); }

  std::string pin_root_;
  std::unique_ptr<core::ProgramManager> pm_;
  TestNetwork net_;
};

// A socket that lives in namespace `ns` (created by a thread that joined
// it; the socket keeps its namespace after the thread is gone).
inline Fd socket_in_ns(const std::string& ns, int type) {
  Fd out;
  std::thread t([&] {
    Fd nsfd(::open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC));
    if (!nsfd.valid() || ::setns(nsfd.get(), CLONE_NEWNET) != 0) return;
    out.reset(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  });
  t.join();
  return out;
}

inline sockaddr_in addr4(const std::string& ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

// Sends n datagrams from inside the host's namespace to the root side
// (they cross host_if on ingress, where XDP runs).
inline void send_from_ns(const TestHost& h, int port, int n) {
  Fd s = socket_in_ns(h.ns, SOCK_DGRAM);
  ASSERT_TRUE(s.valid());
  auto a = addr4(h.host_ip, port);
  for (int i = 0; i < n; i++)
    ASSERT_GE(::sendto(s.get(), "kagami", 6, 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
}

}  // namespace kagami::test
