// The test-host harness itself: hosts come up reachable and vanish afterwards.
#include <gtest/gtest.h>

#include "support/netns.h"

using kagami::test::TestNetwork;

TEST(Harness, HostIsReachableAndRemoved) {
  KAGAMI_REQUIRE_ROOT();
  std::string ns;
  {
    TestNetwork net;
    auto h = net.add_host();
    ASSERT_TRUE(h) << h.error().message;
    ns = h->ns;
    EXPECT_EQ(TestNetwork::exec_in(*h, "ping -c1 -W2 " + h->host_ip), 0);
    EXPECT_GT(h->host_ifindex, 0);
  }
  auto list = TestNetwork::capture("ip netns list");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->find(ns), std::string::npos) << "namespace " << ns << " left behind";
}
