// SbiModule without a kernel: config validation (errors name the field),
// attach points, CIDR parsing, ring records and the event shape.
#include <linux/types.h>

#include <gtest/gtest.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "modules/sbi/abi.h"
#include "modules/sbi/sbi.h"

namespace {

using namespace kagami::modules;
using nlohmann::json;

std::string plan_error(const json& cfg) {
  SbiModule m;
  auto r = m.plan(cfg, {});
  return r ? "" : r.error().message;
}

TEST(SbiConfig, PlansTcOnBothDirectionsOfEveryInterface) {
  SbiModule m;
  auto r = m.plan(json{{"interfaces", {"eth0", "eth1"}}, {"ports", {7777, "29500-29599"}}}, {});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  std::vector<std::string> got;
  for (const auto& a : (*r)[0].attach) got.push_back(a.to_string());
  EXPECT_EQ(got, (std::vector<std::string>{"tc:eth0:ingress@sbi_tc_ingress", "tc:eth0:egress@sbi_tc_egress",
                                           "tc:eth1:ingress@sbi_tc_ingress", "tc:eth1:egress@sbi_tc_egress"}));
  EXPECT_EQ((*r)[0].source.bytes[1], 'E');
}

TEST(SbiConfig, ErrorsNameTheField) {
  EXPECT_NE(plan_error(json::object()).find("interfaces"), std::string::npos);
  EXPECT_NE(plan_error({{"interfaces", {"eth0"}}, {"ports", {0}}}).find("ports"), std::string::npos);
  EXPECT_NE(plan_error({{"interfaces", {"eth0"}}, {"ports", {"90-80"}}}).find("ends before"), std::string::npos);
  EXPECT_NE(plan_error({{"interfaces", {"eth0"}}, {"ports", {true}}}).find("ports"), std::string::npos);
  EXPECT_NE(plan_error({{"interfaces", {"eth0"}}, {"ports", json::array()}}).find("every TCP"), std::string::npos);
  EXPECT_NE(plan_error({{"interfaces", {"eth0"}}, {"cidrs", {"10.0.0.1/8"}}}).find("host bits"), std::string::npos);
  EXPECT_NE(plan_error({{"interfaces", {"eth0"}}, {"cidrs", {"nope"}}}).find("cidrs"), std::string::npos);
  EXPECT_NE(plan_error({{"interfaces", {"eth0"}}, {"ring_kb", 3000}}).find("power of two"), std::string::npos);
  EXPECT_NE(plan_error({{"interfaces", {"eth0"}}, {"events", "some"}}).find("events"), std::string::npos);
  EXPECT_NE(plan_error({{"interfaces", {"eth0"}}, {"bogus", 1}}).find("bogus"), std::string::npos);
  EXPECT_EQ(plan_error({{"interfaces", {"eth0"}}, {"ports", json::array()}, {"cidrs", {"fd00::/8"}}}), "");
}

TEST(SbiConfig, Cidrs) {
  auto a = parse_cidr("10.1.0.0/16");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->first, 96u + 16);
  EXPECT_EQ(a->second[10], 0xff);
  EXPECT_EQ(a->second[12], 10);
  auto b = parse_cidr("fd00::/8");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->first, 8u);
  EXPECT_EQ(parse_cidr("10.0.0.1")->first, 128u);
  EXPECT_FALSE(parse_cidr("10.0.0.0/33"));
}

TEST(SbiRecord, ShortOrForeignRecordsAreRefused) {
  kagami::sbi::Decoder d;
  std::vector<uint8_t> rec(SBI_SEG_HDR_BYTES + 4, 0);
  EXPECT_FALSE(feed_record(d, std::span<const uint8_t>(rec).subspan(0, 10)));
  sbi_seg h{};
  h.hdr.kind = SBI_KIND_SEG;
  h.hdr.len = rec.size();
  h.data_len = 5;  // disagrees with the record size
  std::memcpy(rec.data(), &h, SBI_SEG_HDR_BYTES);
  EXPECT_FALSE(feed_record(d, rec));
  h.data_len = 4;
  h.flags = SBI_SEG_SYN;
  std::memcpy(rec.data(), &h, SBI_SEG_HDR_BYTES);
  EXPECT_TRUE(feed_record(d, rec));
  EXPECT_EQ(d.stats().tcp.segments, 1u);
}

TEST(SbiEvent, ExchangeShape) {
  kagami::sbi::Exchange e;
  e.transport = "h2c";
  e.method = "GET";
  e.service = "nudm-sdm";
  e.path_template = "/nudm-sdm/v2/{id}/am-data";
  e.status = 404;
  e.request_ns = 10;
  e.response_ns = 25;
  e.client.addr[10] = e.client.addr[11] = 0xff;
  e.client.addr[12] = 10;
  e.client.addr[15] = 1;
  e.client.port = 4000;
  auto j = exchange_event(e);
  EXPECT_EQ(j["kind"], "sbi_request");
  EXPECT_EQ(j["latency_ns"], 15);
  EXPECT_EQ(j["client"], "10.0.0.1:4000");
  EXPECT_EQ(j["status"], 404);
}

}  // namespace
