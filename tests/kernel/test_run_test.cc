// BPF_PROG_TEST_RUN wrapper against the platform's empty baseline programs.
#include <gtest/gtest.h>

#include <vector>

#include "bpf/test_run.h"
#include "platform.skel.h"
#include "support/netns.h"

namespace {

std::vector<uint8_t> udp_frame() {
  // Ethernet + IPv4 + UDP, 64 bytes; contents do not matter to the empty programs.
  std::vector<uint8_t> f(64, 0);
  f[12] = 0x08;
  f[14] = 0x45;
  return f;
}

TEST(TestRun, EmptyProgramsReturnTheirVerdict) {
  KAGAMI_REQUIRE_ROOT();
  platform_bpf* skel = platform_bpf__open_and_load();
  ASSERT_NE(skel, nullptr);
  auto frame = udp_frame();
  kagami::bpf::TestRunInput in;
  in.packet = frame;
  in.repeat = 10;
  auto x = kagami::bpf::test_run_xdp(bpf_program__fd(skel->progs.empty_xdp), in);
  ASSERT_TRUE(x) << x.error().message;
  EXPECT_EQ(x->retval, 2u);  // XDP_PASS
  in.set_skb_ctx = true;
  in.tstamp_ns = 12345;
  auto t = kagami::bpf::test_run_skb(bpf_program__fd(skel->progs.empty_tc), in);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->retval, 0u);  // TC_ACT_OK
  // An empty packet is a clear error, not a kernel EINVAL.
  in.packet = {};
  auto e = kagami::bpf::test_run_skb(bpf_program__fd(skel->progs.empty_tc), in);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("empty packet"), std::string::npos);
  platform_bpf__destroy(skel);
}

}  // namespace
