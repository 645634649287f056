// Program manager: atomic replace under traffic, map state carried over or
// migrated (Extend/Reset), refused layout changes, full maps, rollback.
#include <bpf/bpf.h>
#include <gmock/gmock.h>
#include <poll.h>

#include <thread>

#include "pm_fixture.h"

using ::testing::HasSubstr;

namespace kagami::test {
namespace {

class PmReplace : public PmTest {
 public:
  uint64_t packets(const std::string& name, uint32_t port) {
    auto fd = pm_->map_fd(name, "counts");
    if (!fd) return ~0ull;
    uint64_t v[2] = {0, 0};  // v3's value is {packets, bytes}
    if (bpf_map_lookup_elem(fd->get(), &port, v) != 0) return 0;
    return v[0];
  }
  uint32_t version(const std::string& name) { return static_cast<uint32_t>(read_u64(name, "version", 0)); }
};

// Drains a UDP socket until told to stop, counting datagrams.
class Receiver {
 public:
  explicit Receiver(Fd s) : s_(std::move(s)), t_([this] { run(); }) {}
  ~Receiver() {
    stop_ = true;
    t_.join();
  }
  uint64_t count() const { return n_; }
  bool wait_for(uint64_t n, std::chrono::milliseconds max) {
    auto end = std::chrono::steady_clock::now() + max;
    while (n_ < n && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return n_ >= n;
  }

 private:
  void run() {
    char buf[256];
    while (!stop_) {
      pollfd p{s_.get(), POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      while (recv(s_.get(), buf, sizeof(buf), MSG_DONTWAIT) > 0) n_++;
    }
  }
  Fd s_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> n_{0};
  std::thread t_;
};

// THE test of atomic replace: 100 swaps under continuous traffic lose no
// packet, and the counter carried across them never goes backwards.
void replace_under_traffic(PmReplace* t, core::ProgramManager& pm, const TestHost& h, bool xdp,
                           int replaces) {
  const int port = 9000;
  Fd rs = xdp ? Fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) : socket_in_ns(h.ns, SOCK_DGRAM);
  ASSERT_TRUE(rs.valid());
  int big = 8 << 20;
  setsockopt(rs.get(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
  auto ba = addr4(xdp ? h.host_ip : h.peer_ip, port);
  ASSERT_EQ(bind(rs.get(), reinterpret_cast<sockaddr*>(&ba), sizeof(ba)), 0) << strerror(errno);
  Receiver rx(std::move(rs));

  Fd ss = xdp ? socket_in_ns(h.ns, SOCK_DGRAM) : Fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(ss.valid());
  auto da = addr4(xdp ? h.host_ip : h.peer_ip, port);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> sent{0};
  std::thread tx([&] {
    // Paced (a burst of 10 every 500us, at most 20k/s) so neither the veth
    // backlog (net.core.netdev_max_backlog) nor the receiver's socket buffer
    // can overflow on a loaded 2-core machine: a loss must mean the replace
    // lost it.
    while (!done) {
      for (int i = 0; i < 10; i++)
        if (sendto(ss.get(), "kagami", 6, 0, reinterpret_cast<sockaddr*>(&da), sizeof(da)) == 6) sent++;
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  });

  uint64_t last = 0;
  for (int i = 0; i < replaces; i++) {
    auto r = pm.replace("cnt", request("cnt", i % 2 == 0 ? "count_v2" : "count_v1", {}));
    ASSERT_TRUE(r) << "replace " << i << ": " << r.error().message;
    const uint64_t now = t->packets("cnt", port);
    EXPECT_GE(now, last) << "counter went backwards at replace " << i;
    last = now;
  }
  // Let traffic reach the final version before stopping it, so "the last
  // version runs" is observed rather than raced.
  for (int w = 0; w < 500 && t->packets("cnt", port) < last + 20; w++)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  done = true;
  tx.join();
  EXPECT_TRUE(rx.wait_for(sent, std::chrono::seconds(5)));
  EXPECT_GT(sent.load(), 1000u) << "traffic must overlap the replaces";
  EXPECT_EQ(rx.count(), sent.load()) << "packets lost during replace";
  ::testing::Test::RecordProperty("packets_sent", std::to_string(sent.load()));
  EXPECT_EQ(t->packets("cnt", port), sent.load()) << "counter must carry every packet";
  auto g = pm.get("cnt");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->generation, static_cast<uint32_t>(replaces + 1));
  EXPECT_EQ(t->version("cnt"), replaces % 2 == 0 ? 1u : 2u) << "the last version runs";
}

TEST_F(PmReplace, TcEgress100ReplacesUnderTrafficLoseNothing) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  ASSERT_TRUE(pm_->load(request("cnt", "count_v1", {"tc:" + h->host_if + ":egress"})));
  replace_under_traffic(this, *pm_, *h, false, 100);
}

TEST_F(PmReplace, XdpLinkReplacesUnderTrafficLoseNothing) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  ASSERT_TRUE(pm_->load(request("cnt", "count_v1", {"xdp:" + h->host_if})));
  replace_under_traffic(this, *pm_, *h, true, 100);
}

TEST_F(PmReplace, ExtendMigratesChangedValueLayout) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  ASSERT_TRUE(pm_->load(request("cnt", "count_v1", {"tc:" + h->host_if + ":egress"})));
  ASSERT_TRUE(send_udp(h->peer_ip, 9001, "x", 7));
  ASSERT_TRUE(send_udp(h->peer_ip, 9002, "x", 3));
  auto req = request("cnt", "count_v3", {});
  req.migrations.push_back({"counts", core::MapMigration::Rule::Extend});
  auto r = pm_->replace("cnt", req);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->generation, 2u);
  for (const auto& m : r->maps) {
    if (m.name == "counts") {
      EXPECT_EQ(m.value_size, 16u);
    }
  }
  auto fd = pm_->map_fd("cnt", "counts");
  ASSERT_TRUE(fd);
  uint64_t v[2];
  uint32_t k = 9001;
  ASSERT_EQ(bpf_map_lookup_elem(fd->get(), &k, v), 0);
  EXPECT_EQ(v[0], 7u);
  EXPECT_EQ(v[1], 0u) << "the new tail starts zeroed";
  k = 9002;
  ASSERT_EQ(bpf_map_lookup_elem(fd->get(), &k, v), 0);
  EXPECT_EQ(v[0], 3u);
  ASSERT_TRUE(send_udp(h->peer_ip, 9001, "x", 2));
  k = 9001;
  ASSERT_EQ(bpf_map_lookup_elem(fd->get(), &k, v), 0);
  EXPECT_EQ(v[0], 9u);
  EXPECT_GT(v[1], 0u) << "v3 counts bytes";
  EXPECT_EQ(version("cnt"), 3u);
}

TEST_F(PmReplace, LayoutChangeIsRefusedByDefaultAndOldKeepsRunning) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  auto l = pm_->load(request("cnt", "count_v1", {"tc:" + h->host_if + ":egress"}));
  ASSERT_TRUE(l);
  ASSERT_TRUE(send_udp(h->peer_ip, 9003, "x", 4));
  auto r = pm_->replace("cnt", request("cnt", "count_v3", {}));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("map counts changed layout"));
  EXPECT_THAT(r.error().message, HasSubstr("hash key 4 value 8 max_entries 1024"));
  EXPECT_THAT(r.error().message, HasSubstr("hash key 4 value 16 max_entries 1024"));
  auto g = pm_->get("cnt");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->generation, 1u);
  EXPECT_EQ(g->progs[0].id, l->progs[0].id) << "the old program still runs";
  ASSERT_TRUE(send_udp(h->peer_ip, 9003, "x", 4));
  EXPECT_EQ(packets("cnt", 9003), 8u);
  EXPECT_EQ(version("cnt"), 1u);
}

TEST_F(PmReplace, FullTargetMapFailsAndRollsBack) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  ASSERT_TRUE(pm_->load(request("cnt", "count_v1", {"tc:" + h->host_if + ":egress"})));
  auto fd = pm_->map_fd("cnt", "counts");
  ASSERT_TRUE(fd);
  for (uint32_t k = 1; k <= 10; k++) {
    uint64_t v = k;
    ASSERT_EQ(bpf_map_update_elem(fd->get(), &k, &v, BPF_ANY), 0);
  }
  auto req = request("cnt", "count_small", {});  // max_entries 4
  req.migrations.push_back({"counts", core::MapMigration::Rule::Extend});
  auto r = pm_->replace("cnt", req);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("map counts is full"));
  EXPECT_EQ(pm_->get("cnt")->generation, 1u);
  ASSERT_TRUE(send_udp(h->peer_ip, 9004, "x", 3));
  EXPECT_EQ(packets("cnt", 9004), 3u);
  EXPECT_EQ(packets("cnt", 7), 7u) << "old map untouched";
}

TEST_F(PmReplace, ResetStartsTheMapEmpty) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  ASSERT_TRUE(pm_->load(request("cnt", "count_v1", {"tc:" + h->host_if + ":egress"})));
  ASSERT_TRUE(send_udp(h->peer_ip, 9005, "x", 5));
  auto req = request("cnt", "count_v3", {});
  req.migrations.push_back({"counts", core::MapMigration::Rule::Reset});
  auto r = pm_->replace("cnt", req);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(packets("cnt", 9005), 0u);
  ASSERT_TRUE(send_udp(h->peer_ip, 9005, "x", 2));
  EXPECT_EQ(packets("cnt", 9005), 2u);
}

TEST_F(PmReplace, ReplaceWithUnfitObjectChangesNothing) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  ASSERT_TRUE(pm_->load(request("cnt", "count_v1", {"tc:" + h->host_if + ":egress"})));
  auto r = pm_->replace("cnt", request("cnt", "rejected", {}));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("no program of a type that fits a tc hook"));
  auto r2 = pm_->replace("nosuch", request("nosuch", "count_v2", {}));
  ASSERT_FALSE(r2);
  EXPECT_THAT(r2.error().message, HasSubstr("no program named nosuch"));
  EXPECT_EQ(pm_->get("cnt")->generation, 1u);
  ASSERT_TRUE(send_udp(h->peer_ip, 9006, "x", 2));
  EXPECT_EQ(packets("cnt", 9006), 2u);
}

}  // namespace
}  // namespace kagami::test
