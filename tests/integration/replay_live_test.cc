// Live replay: the same captures that replay runs through BPF_PROG_TEST_RUN
// are sent as real frames through a veth test host while the obs TC ingress
// program is attached to it, and the live counters must equal replay's.
//
//   netns kgt-*  peer_if --(AF_PACKET, every normalized frame)--> host_if
//                                                       obs_tc_ingress (live mode)
//
// Compared: GTP-U packets in all and per TEID, PFCP messages in all and per
// type, and, for Ethernet captures (where the frame on the veth is the frame
// of the capture), GTP-U frame bytes. Not compared: frame bytes of cooked
// captures (live mode counts skb->len, the synthesized 14-byte Ethernet
// header, not the 16-byte SLL header tshark counts; docs/replay.md).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/pcaps.h"
#include "common/fd.h"
#include "modules/obs/obs_object.h"
#include "replay/pcap_reader.h"
#include "replay/replay.h"
#include "support/netns.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using kagami::test::pcaps_dir;

// TC clsact ingress attachment through libbpf's netlink API (libbpf 1.1 has
// no tcx), detached and the clsact qdisc removed on destruction.
class TcIngress {
 public:
  static kagami::Result<std::unique_ptr<TcIngress>> attach(int ifindex, int prog_fd) {
    std::unique_ptr<TcIngress> t(new TcIngress());
    t->hook_.sz = sizeof(t->hook_);
    t->hook_.ifindex = ifindex;
    t->hook_.attach_point = BPF_TC_INGRESS;
    int err = bpf_tc_hook_create(&t->hook_);
    if (err && err != -EEXIST) return kagami::errno_error(err, "tc hook on ifindex {}", ifindex);
    t->opts_.sz = sizeof(t->opts_);
    t->opts_.handle = 1;
    t->opts_.priority = 1;
    t->opts_.prog_fd = prog_fd;
    err = bpf_tc_attach(&t->hook_, &t->opts_);
    if (err) return kagami::errno_error(err, "tc attach on ifindex {}", ifindex);
    t->attached_ = true;
    return t;
  }
  ~TcIngress() {
    if (attached_) {
      opts_.prog_fd = opts_.prog_id = opts_.flags = 0;
      bpf_tc_detach(&hook_, &opts_);
    }
    hook_.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    bpf_tc_hook_destroy(&hook_);
  }

 private:
  TcIngress() = default;
  bpf_tc_hook hook_{};
  bpf_tc_opts opts_{};
  bool attached_ = false;
};

struct Sent {
  uint64_t frames = 0;
  std::string error;
};

// Sends every normalized frame of `cap` out of `peer_if` inside netns `ns`.
// A separate thread enters the namespace, so the test's own thread (and the
// netlink calls above) stay in the root namespace.
Sent inject(const std::string& cap, const std::string& ns, const std::string& peer_if) {
  Sent s;
  std::thread t([&] {
    kagami::Fd nsfd(::open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC));
    if (!nsfd.valid() || ::setns(nsfd.get(), CLONE_NEWNET) != 0) {
      s.error = "enter netns " + ns + ": " + std::strerror(errno);
      return;
    }
    kagami::Fd sock(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
    if (!sock.valid()) {
      s.error = std::string("AF_PACKET socket: ") + std::strerror(errno);
      return;
    }
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = static_cast<int>(if_nametoindex(peer_if.c_str()));
    to.sll_halen = ETH_ALEN;
    auto r = kagami::replay::PcapReader::open(cap);
    if (!r) {
      s.error = r.error().message;
      return;
    }
    kagami::replay::Frame f;
    while (true) {
      auto more = (*r)->next(f);
      if (!more) {
        s.error = more.error().message;
        return;
      }
      if (!*more) break;
      if (::sendto(sock.get(), f.data.data(), f.data.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0) {
        s.error = "send frame " + std::to_string(f.number) + " (" + std::to_string(f.data.size()) +
                  " bytes): " + std::strerror(errno);
        return;
      }
      s.frames++;
      // veth hands each frame to the per-CPU backlog (netdev_max_backlog,
      // 1000 by default); a short pause every 64 frames keeps it from
      // overflowing and dropping frames before TC ingress sees them.
      if (s.frames % 64 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  t.join();
  return s;
}

uint64_t num(const json& j, std::initializer_list<const char*> path) {
  const json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return 0;
    p = &(*p)[k];
  }
  return p->is_number() ? p->get<uint64_t>() : 0;
}

std::map<std::string, uint64_t> per_key(const json& j, const char* field) {
  std::map<std::string, uint64_t> out;
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    uint64_t v = field ? num(*it, {field}) : num(*it, {"count"});
    if (v) out[it.key()] = v;
  }
  return out;
}

const std::vector<std::string> kCaptures = {"open5gs_testattach.pcapng", "telekom_n3_example.pcap",
                                            "5greplay_oai.pcap", "zeek_gtp1_gn_normal_incl_fragmentation.pcap"};

class ReplayLive : public ::testing::TestWithParam<std::string> {};

TEST_P(ReplayLive, LiveCountersEqualReplay) {
  KAGAMI_REQUIRE_ROOT();
  fs::path cap = fs::path(pcaps_dir()) / GetParam();
  if (!fs::exists(cap)) GTEST_SKIP() << "capture " << cap << " absent (set KAGAMI_PCAPS)";

  auto rep = kagami::replay::run({cap.string(), {}});
  ASSERT_TRUE(rep) << rep.error().message;

  kagami::test::TestNetwork net;
  auto host = net.add_host();
  ASSERT_TRUE(host) << host.error().message;
  // Jumbo MTU on both ends: some captures hold frames above 1500 bytes
  // (loopback/GRO captures), and veth drops what exceeds the peer's MTU.
  ASSERT_TRUE(kagami::test::TestNetwork::capture("ip link set dev " + host->host_if + " mtu 9000"));
  ASSERT_EQ(kagami::test::TestNetwork::exec_in(*host, "ip link set dev " + host->peer_if + " mtu 9000"), 0);

  auto obs = kagami::obs::ObsObject::open(/*replay_mode=*/false);
  ASSERT_TRUE(obs) << obs.error().message;
  auto tc = TcIngress::attach(host->host_ifindex, (*obs)->tc_ingress_fd());
  ASSERT_TRUE(tc) << tc.error().message;

  Sent s = inject(cap.string(), host->ns, host->peer_if);
  ASSERT_TRUE(s.error.empty()) << s.error;
  EXPECT_EQ(s.frames, num(*rep, {"replayed_frames"}));

  // Frames are processed asynchronously (backlog softirq): wait until the
  // GTP-U + PFCP totals reach replay's, or give up after 5 s and compare.
  const uint64_t want = num(*rep, {"gtpu", "packets"}) + num(*rep, {"pfcp", "messages"});
  json live;
  for (int i = 0; i < 100; i++) {
    auto c = (*obs)->counters();
    ASSERT_TRUE(c) << c.error().message;
    live = *c;
    if (num(live, {"gtpu", "packets"}) + num(live, {"pfcp", "messages"}) >= want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  const json& rg = (*rep)["gtpu"];
  const json& lg = live["gtpu"];
  EXPECT_EQ(num(lg, {"packets"}), num(rg, {"packets"})) << "gtpu.packets";
  EXPECT_EQ(per_key(lg["by_teid"], "packets"), per_key(rg["by_teid"], "packets")) << "gtpu.by_teid.*.packets";
  EXPECT_EQ(per_key(lg["by_message_type"], nullptr), per_key(rg["by_message_type"], nullptr));
  EXPECT_EQ(num(lg, {"udp_payload_bytes"}), num(rg, {"udp_payload_bytes"}));
  EXPECT_EQ(num(live, {"pfcp", "messages"}), num(*rep, {"pfcp", "messages"})) << "pfcp.messages";
  EXPECT_EQ(per_key(live["pfcp"]["by_msg_type"], nullptr), per_key((*rep)["pfcp"]["by_msg_type"], nullptr))
      << "pfcp.by_msg_type";
  if ((*rep)["link_type"] == "EN10MB" && num(*rep, {"cut_frames"}) == 0 && num(*rep, {"snapped_frames"}) == 0) {
    EXPECT_EQ(num(lg, {"frame_bytes"}), num(rg, {"frame_bytes"})) << "gtpu.frame_bytes (Ethernet capture)";
    EXPECT_EQ(per_key(lg["by_teid"], "frame_bytes"), per_key(rg["by_teid"], "frame_bytes"));
  }
  // Something was compared at all.
  EXPECT_GT(want, 0u);
}

INSTANTIATE_TEST_SUITE_P(Captures, ReplayLive, ::testing::ValuesIn(kCaptures),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string n = i.param;
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

}  // namespace
