// replay::render_text and the parts of replay::run that need no root.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "replay/replay.h"

namespace {

using nlohmann::json;

TEST(ReplayRender, SummaryThenOneTablePerSection) {
  json r = json::parse(R"({
    "capture": "telekom_n3_example.pcap", "file": "/x/telekom_n3_example.pcap", "link_type": "EN10MB",
    "total_frames": 92, "replayed_frames": 91, "snapped_frames": 0, "cut_frames": 0,
    "skipped": {"non_ip_payload": 1}, "verdicts": {"2": 91}, "test_runs": 4,
    "duration_ms": 1.25, "ns_per_frame": 13736.3, "kernel_ns_per_frame": 900.0, "modules": ["obs"],
    "gtpu": {"packets": 92, "by_teid": {"0x00000001": {"packets": 46, "frame_bytes": 43000}}},
    "counters": {"packets": {"ingress": 92, "egress": 0}},
    "malformed_total": 3,
    "pfcp": {"messages": 0, "by_msg_type": {}}
  })");
  std::string t = kagami::replay::render_text(r);
  EXPECT_NE(t.find("capture telekom_n3_example.pcap (EN10MB)"), std::string::npos) << t;
  EXPECT_NE(t.find("92 total, 91 replayed"), std::string::npos) << t;
  EXPECT_NE(t.find("non_ip_payload"), std::string::npos) << t;
  EXPECT_NE(t.find("1.250 ms"), std::string::npos) << t;
  EXPECT_NE(t.find("[gtpu]"), std::string::npos) << t;
  EXPECT_NE(t.find("by_teid.0x00000001.frame_bytes"), std::string::npos) << t;
  EXPECT_NE(t.find("43000"), std::string::npos) << t;
  EXPECT_NE(t.find("[pfcp]\n  (all zero)"), std::string::npos) << t;  // zeros are omitted from tables
  EXPECT_LT(t.find("[gtpu]"), t.find("[pfcp]")) << t;
  EXPECT_NE(t.find("malformed_total: 3"), std::string::npos) << t;
  EXPECT_GT(t.find("[counters]"), t.find("malformed_total")) << t;  // raw counters last
  // Replay's own keys are in the summary, not repeated as sections.
  EXPECT_EQ(t.find("[skipped]"), std::string::npos) << t;
  EXPECT_EQ(t.find("[verdicts]"), std::string::npos) << t;
}

TEST(ReplayRender, NonObjectIsSaidPlainly) {
  EXPECT_EQ(kagami::replay::render_text(json::array({1, 2})), "not a replay report: [1,2]\n");
}

TEST(ReplayRun, MissingCaptureAndUnknownModuleFailBeforeLoadingBpf) {
  auto r = kagami::replay::run({"/nonexistent/x.pcapng", {}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/nonexistent/x.pcapng"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("No such file"), std::string::npos) << r.error().message;
  auto m = kagami::replay::run({"/nonexistent/x.pcapng", {"obs", "warp-drive"}});
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("unknown module 'warp-drive'"), std::string::npos) << m.error().message;
  EXPECT_NE(m.error().message.find("obs"), std::string::npos);
}

}  // namespace
