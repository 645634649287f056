// replay::render_text (tables from counter JSON, replay/table.h) and the
// parts of replay::run that need no root.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "replay/replay.h"
#include "replay/table.h"

namespace {

using nlohmann::json;

// The line of `t` that starts (after indentation) with `first`, split on runs of spaces.
std::vector<std::string> row(const std::string& t, const std::string& first) {
  std::istringstream in(t);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::vector<std::string> w;
    std::string x;
    while (words >> x) w.push_back(x);
    if (!w.empty() && w[0] == first) return w;
  }
  return {};
}

// The whole line of `t` starting (after indentation) with `first`.
std::string line_of(const std::string& t, const std::string& first) {
  std::istringstream in(t);
  std::string line;
  while (std::getline(in, line)) {
    auto p = line.find_first_not_of(' ');
    if (p != std::string::npos && line.compare(p, first.size(), first) == 0 &&
        (line.size() == p + first.size() || line[p + first.size()] == ' '))
      return line;
  }
  return {};
}

const json kReport = json::parse(R"({
  "capture": "telekom_n3_example.pcap", "file": "/x/telekom_n3_example.pcap", "link_type": "EN10MB",
  "total_frames": 92, "replayed_frames": 91, "snapped_frames": 0, "cut_frames": 0,
  "skipped": {"non_ip_payload": 1}, "verdicts": {"2": 91}, "test_runs": 4,
  "duration_ms": 1.25, "ns_per_frame": 13736.3, "kernel_ns_per_frame": 900.0, "modules": ["obs"],
  "gtpu": {"packets": 92, "frame_bytes": 86000, "distinct_teids": 3,
           "by_teid": {"0x00000001": {"packets": 46, "frame_bytes": 43000, "udp_payload_bytes": 40000,
                                      "ingress_packets": 46, "egress_packets": 0,
                                      "by_message_type": {"0xff": {"name": "T-PDU", "count": 46}}},
                       "0x00000002": {"packets": 1000000, "frame_bytes": 1500000000, "udp_payload_bytes": 1400000000,
                                      "ingress_packets": 0, "egress_packets": 1000000,
                                      "by_message_type": {"0xff": {"name": "T-PDU", "count": 1000000}}},
                       "0x00000003": {"packets": 0, "frame_bytes": 0, "udp_payload_bytes": 0,
                                      "ingress_packets": 0, "egress_packets": 0, "by_message_type": {}}},
           "qfi": {"9": 92, "5": 0},
           "teid_map": {"entries": 3, "capacity": 65536, "evicted": 0}},
  "counters": {"packets": {"ingress": 92, "egress": 0}},
  "malformed_total": 3,
  "pfcp": {"messages": 0, "by_msg_type": {}},
  "transport": {"interfaces": [{"slot": 0, "direction": "ingress", "protocol": "udp", "packets": 90, "bytes": 9000},
                               {"slot": 0, "direction": "ingress", "protocol": "tcp", "packets": 2, "bytes": 120}]}
})");

TEST(ReplayRender, SummaryThenSectionsInReportOrder) {
  std::string t = kagami::replay::render_text(kReport);
  EXPECT_NE(t.find("capture telekom_n3_example.pcap (EN10MB)"), std::string::npos) << t;
  EXPECT_NE(t.find("92 total, 91 replayed"), std::string::npos) << t;
  EXPECT_FALSE(row(t, "non_ip_payload").empty()) << t;
  EXPECT_NE(t.find("1.250 ms"), std::string::npos) << t;
  EXPECT_NE(t.find("[pfcp]\n  (all zero)"), std::string::npos) << t;  // zeros are omitted from tables
  EXPECT_NE(t.find("malformed_total: 3"), std::string::npos) << t;
  // Sections in the report's order (nlohmann::json keeps keys sorted), none
  // singled out by name: counters, gtpu, malformed_total, pfcp, transport.
  EXPECT_LT(t.find("[counters]"), t.find("[gtpu]")) << t;
  EXPECT_LT(t.find("[gtpu]"), t.find("malformed_total")) << t;
  EXPECT_LT(t.find("malformed_total"), t.find("[pfcp]")) << t;
  EXPECT_LT(t.find("[pfcp]"), t.find("[transport]")) << t;
  // Replay's own keys are in the summary, not repeated as sections.
  EXPECT_EQ(t.find("[skipped]"), std::string::npos) << t;
  EXPECT_EQ(t.find("[verdicts]"), std::string::npos) << t;
  // No flat dump of dotted keys any more.
  EXPECT_EQ(t.find("by_teid.0x00000001"), std::string::npos) << t;
}

TEST(ReplayRender, ObjectOfObjectsIsATableWithOneRowPerKey) {
  std::string t = kagami::replay::render_text(kReport);
  // Header: the key column, then counter nouns first (packets), the other
  // numeric columns, the nested summary last.
  auto h = row(t, "by_teid");
  ASSERT_FALSE(h.empty()) << t;
  EXPECT_EQ(h[1], "packets") << t;
  EXPECT_NE(std::find(h.begin(), h.end(), "frame_bytes"), h.end()) << t;
  EXPECT_NE(std::find(h.begin(), h.end(), "udp_payload_bytes"), h.end()) << t;
  EXPECT_EQ(h.back(), "by_message_type") << t;
  EXPECT_EQ(std::find(h.begin(), h.end(), "packets/s"), h.end()) << "no duration, no rates\n" << t;
  // One row per TEID, cells under their columns.
  auto r1 = row(t, "0x00000001");
  auto r2 = row(t, "0x00000002");
  ASSERT_EQ(r1.size(), h.size()) << t;
  ASSERT_EQ(r2.size(), h.size()) << t;
  auto col = [&](const std::string& name) { return std::find(h.begin(), h.end(), name) - h.begin(); };
  EXPECT_EQ(r1[col("packets")], "46");
  EXPECT_EQ(r1[col("frame_bytes")], "43000");
  EXPECT_EQ(r2[col("frame_bytes")], "1500000000");
  EXPECT_EQ(r1.back(), "T-PDU=46");
  // An all-zero row is left out.
  EXPECT_TRUE(row(t, "0x00000003").empty()) << t;
  // Numbers are right-aligned: a column's last character is at the same
  // offset in the header and in every row.
  std::string hl = line_of(t, "by_teid"), l1 = line_of(t, "0x00000001"), l2 = line_of(t, "0x00000002");
  auto end_of = [](const std::string& line, const std::string& cell, size_t from) {
    return line.find(cell, from) + cell.size();
  };
  size_t ph = end_of(hl, "packets", 0), p1 = end_of(l1, " 46", 10), p2 = end_of(l2, " 1000000", 10);
  EXPECT_EQ(ph, p1) << t;
  EXPECT_EQ(ph, p2) << t;
  size_t fh = end_of(hl, "frame_bytes", 0), f1 = end_of(l1, "43000", 0), f2 = end_of(l2, "1500000000", 0);
  EXPECT_EQ(fh, f1) << t;
  EXPECT_EQ(fh, f2) << t;
}

TEST(ReplayRender, NameColumnArraysOfObjectsAndScalarMaps) {
  json r = kReport;
  r["pfcp"] = json::parse(R"({"messages": 24, "by_msg_type": {
      "50": {"name": "PFCP Session Establishment Request", "count": 4},
      "51": {"name": "PFCP Session Establishment Response", "count": 4},
      "1": {"name": "PFCP Heartbeat Request", "count": 16}}})");
  std::string t = kagami::replay::render_text(r);
  // {name, count} values: the name column comes first, then count.
  std::string h = line_of(t, "by_msg_type");
  ASSERT_FALSE(h.empty()) << t;
  EXPECT_LT(h.find("name"), h.find("count")) << t;
  std::string l51 = line_of(t, "51");
  EXPECT_NE(l51.find("PFCP Session Establishment Response"), std::string::npos) << t;
  EXPECT_EQ(row(t, "51").back(), "4") << t;
  // An array of objects is a table too, with its string fields as columns.
  auto ih = row(t, "interfaces");
  ASSERT_FALSE(ih.empty()) << t;
  EXPECT_NE(std::find(ih.begin(), ih.end(), "direction"), ih.end()) << t;
  EXPECT_NE(std::find(ih.begin(), ih.end(), "protocol"), ih.end()) << t;
  auto i0 = row(t, "0");
  ASSERT_EQ(i0.size(), ih.size()) << t;
  EXPECT_EQ(i0[std::find(ih.begin(), ih.end(), "protocol") - ih.begin()], "udp") << t;
  EXPECT_EQ(i0[std::find(ih.begin(), ih.end(), "bytes") - ih.begin()], "9000") << t;
  // Scalars are "key  value" lines; a map of scalars a titled block; zeros left out.
  EXPECT_EQ(row(t, "distinct_teids").at(1), "3") << t;
  EXPECT_NE(t.find("qfi:\n"), std::string::npos) << t;
  EXPECT_EQ(row(t, "9").at(1), "92") << t;
  EXPECT_TRUE(row(t, "5").empty()) << t;
  EXPECT_TRUE(row(t, "evicted").empty()) << t;
}

TEST(ReplayTable, RatesWhenADurationIsKnown) {
  kagami::replay::TableStyle style;
  style.seconds = 2;
  json prev = kReport["gtpu"];
  json cur = prev;
  cur["packets"] = 292;
  cur["by_teid"]["0x00000001"]["packets"] = 246;
  cur["by_teid"]["0x00000001"]["frame_bytes"] = 43000 + 200000;
  std::string avg = kagami::replay::render_section(cur, style);
  auto h = row(avg, "by_teid");
  ASSERT_FALSE(h.empty()) << avg;
  auto rate_col = std::find(h.begin(), h.end(), "packets/s");
  ASSERT_NE(rate_col, h.end()) << avg;
  auto bytes_rate = std::find(h.begin(), h.end(), "frame_bytes/s");
  ASSERT_NE(bytes_rate, h.end()) << avg;
  // Without a previous document: totals over the duration.
  EXPECT_EQ(row(avg, "0x00000001")[rate_col - h.begin()], "123") << avg;
  EXPECT_NE(line_of(avg, "packets").find("(146/s)"), std::string::npos) << avg;
  // With one: the difference over the duration.
  style.previous = &prev;
  std::string diff = kagami::replay::render_section(cur, style);
  EXPECT_EQ(row(diff, "0x00000001")[rate_col - h.begin()], "100") << diff;
  EXPECT_EQ(row(diff, "0x00000001")[bytes_rate - h.begin()], "100.0k") << diff;
  EXPECT_EQ(row(diff, "0x00000002")[rate_col - h.begin()], "0.0") << diff;
  EXPECT_NE(line_of(diff, "packets").find("(100/s)"), std::string::npos) << diff;
}

TEST(ReplayTable, HostileShapesStayBounded) {
  // Deep nesting ends in compact JSON at the depth bound.
  json deep = 1;
  for (int i = 0; i < 200; i++) deep = json{{"k", deep}};
  std::string d = kagami::replay::render_section(deep);
  EXPECT_LT(d.size(), 20000u);
  EXPECT_NE(d.find("{\"k\""), std::string::npos) << d;
  // Too many distinct fields: not a table (the column cap), still rendered.
  json wide = json::object();
  for (int i = 0; i < 40; i++) wide["row" + std::to_string(i)]["f" + std::to_string(i)] = i + 1;
  std::string w = kagami::replay::render_section(wide);
  EXPECT_EQ(row(w, "row0").size(), 0u) << "a 40-column table";
  EXPECT_NE(w.find("f39"), std::string::npos);
  // Mixed kinds in one column, invalid UTF-8, floats: no throw.
  json mixed = json::parse(R"({"a": {"n": 1, "s": "x"}, "b": {"n": "two", "s": 3.5}, "c": {"n": null}})");
  mixed["d"]["n"] = std::string("\xff\xfe");
  EXPECT_NO_THROW(kagami::replay::render_section(mixed));
  EXPECT_NO_THROW(kagami::replay::render_section(json::array({json::array({1, json::object()}), nullptr})));
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
