// ObsModule without a kernel: config validation, attach points, and the
// metric families built from a snapshot (bounded labels, top-N folding).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/module.h"
#include "core/probe.h"
#include "modules/obs/obs_module.h"

namespace {

using namespace kagami::obs;
using nlohmann::json;

std::string plan_error(const json& cfg) {
  ObsModule m;
  auto r = m.plan(cfg, {});
  return r ? "" : r.error().message;
}

TEST(ObsConfig, ValidSectionPlansOneBuiltinObjectOnEveryHook) {
  ObsModule m;
  kagami::core::ModuleContext ctx;
  ctx.node = "n1";
  auto r = m.plan(json{{"interfaces", {"eth0", "eth1"}}, {"top_n_teids", 5}}, ctx);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  const auto& req = (*r)[0];
  EXPECT_EQ(req.name, "obs");
  EXPECT_TRUE(req.builtin);
  // The embedded ELF, not a path: the agent needs no file on disk.
  ASSERT_GT(req.source.bytes.size(), 4u);
  EXPECT_EQ(req.source.bytes[1], 'E');
  EXPECT_EQ(req.source.bytes[2], 'L');
  std::vector<std::string> got;
  for (const auto& a : req.attach) got.push_back(a.to_string());
  EXPECT_EQ(got, (std::vector<std::string>{
                     "tc:eth0:ingress@obs_tc_ingress", "tc:eth0:egress@obs_tc_egress",
                     "tc:eth1:ingress@obs_tc_ingress", "tc:eth1:egress@obs_tc_egress"}));
}

TEST(ObsConfig, XdpAndDirectionChooseTheHooks) {
  auto cfg = parse_config(json{{"interfaces", {"eth0"}}, {"xdp", true}, {"direction", "ingress"}});
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(attach_specs(*cfg), std::vector<std::string>{"xdp:eth0@obs_xdp"});
  cfg = parse_config(json{{"interfaces", {"eth0"}}, {"direction", "egress"}});
  ASSERT_TRUE(cfg);
  EXPECT_EQ(attach_specs(*cfg), std::vector<std::string>{"tc:eth0:egress@obs_tc_egress"});
}

// The agent resolves needs() once; obs takes its hook from that answer and
// its node label from the context, never from a probe or a name of its own.
TEST(ObsConfig, ContextGivesTheNodeAndTheXdpFallback) {
  ObsModule m;
  kagami::core::ModuleContext ctx;
  ctx.node = "node-7";
  ctx.features = kagami::core::resolve(m.needs(), kagami::core::ProbeReport{{{"tc", "prog_type", true, ""},
                                                                           {"xdp", "prog_type", false, "no"}}});
  auto r = m.plan(json{{"interfaces", {"eth0"}}, {"xdp", true}, {"direction", "ingress"}}, ctx);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ((*r)[0].attach.size(), 1u);
  EXPECT_EQ((*r)[0].attach[0].to_string(), "tc:eth0:ingress@obs_tc_ingress");
  ctx.features = kagami::core::resolve(m.needs(), kagami::core::ProbeReport{{{"tc", "prog_type", true, ""},
                                                                           {"xdp", "prog_type", true, ""}}});
  r = m.plan(json{{"interfaces", {"eth0"}}, {"xdp", true}, {"direction", "ingress"}}, ctx);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ((*r)[0].attach[0].to_string(), "xdp:eth0@obs_xdp");
  // A module section no longer names the node: one name per agent.
  EXPECT_NE(plan_error(json{{"interfaces", {"eth0"}}, {"node", "x"}}).find("obs.node: unknown key"),
            std::string::npos);
}

// A chain's slot and prog_array are per interface: each XDP interface after
// the first gets a load of its own that shares obs's maps.
TEST(ObsConfig, EachXdpInterfaceAfterTheFirstSharesObsMaps) {
  ObsModule m;
  auto r = m.plan(json{{"interfaces", {"eth0", "eth1", "eth2"}}, {"xdp", true}}, {});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 3u);
  std::vector<std::string> obs;
  for (const auto& a : (*r)[0].attach) obs.push_back(a.to_string());
  EXPECT_EQ(obs, (std::vector<std::string>{"xdp:eth0@obs_xdp", "tc:eth0:egress@obs_tc_egress",
                                           "tc:eth1:egress@obs_tc_egress", "tc:eth2:egress@obs_tc_egress"}));
  EXPECT_TRUE((*r)[0].share_maps_with.empty());
  for (size_t i = 1; i < 3; i++) {
    EXPECT_EQ((*r)[i].name, "obs-xdp-" + std::to_string(i + 1));
    EXPECT_EQ((*r)[i].share_maps_with, "obs");
    ASSERT_EQ((*r)[i].attach.size(), 1u);
    EXPECT_EQ((*r)[i].attach[0].to_string(), "xdp:eth" + std::to_string(i) + "@obs_xdp");
    EXPECT_EQ((*r)[i].source.bytes, (*r)[0].source.bytes);
  }
}

TEST(ObsConfig, BadSectionsAreErrorsNamingTheField) {
  EXPECT_NE(plan_error(json::object()).find("obs.interfaces"), std::string::npos);
  EXPECT_NE(plan_error(json{{"interfaces", json::array()}}).find("obs.interfaces"), std::string::npos);
  EXPECT_NE(plan_error(json{{"interfaces", {"eth0", "eth0"}}}).find("listed twice"), std::string::npos);
  json many = json::array();
  for (int i = 0; i < 16; i++) many.push_back("eth" + std::to_string(i));
  EXPECT_NE(plan_error(json{{"interfaces", many}}).find("at most 15 entries"), std::string::npos);
  EXPECT_NE(plan_error(json{{"interfaces", {"a:b"}}}).find("not a valid interface"), std::string::npos);
  EXPECT_NE(plan_error(json{{"interfaces", {"eth0"}}, {"direction", "up"}}).find("obs.direction"),
            std::string::npos);
  EXPECT_NE(plan_error(json{{"interfaces", {"eth0"}}, {"top_n_teids", -1}}).find("obs.top_n_teids"),
            std::string::npos);
  EXPECT_NE(plan_error(json{{"interfaces", {"eth0"}}, {"xdp", "yes"}}).find("obs.xdp"), std::string::npos);
  EXPECT_NE(plan_error(json{{"interfaces", {"eth0"}}, {"xdp", true}, {"direction", "egress"}})
                .find("XDP only sees ingress"),
            std::string::npos);
  EXPECT_NE(plan_error(json{{"interfaces", {"eth0"}}, {"intefaces", 1}}).find("obs.intefaces: unknown key"),
            std::string::npos);
}

TEST(ObsRegistry, ObsIsABuiltinModule) {
  auto m = kagami::core::make_module("obs");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->name(), "obs");
  EXPECT_EQ(kagami::core::make_module("nope"), nullptr);
  auto names = kagami::core::builtin_module_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "obs"), names.end());
}

// The agent probes every need of an enabled module and refuses to apply when
// a required one is missing, so a misspelt need would disable the module on
// every kernel: each must be a feature the probe knows (or its alias).
TEST(ObsModule, EveryBuiltinModuleNeedsOnlyFeaturesTheProbeKnows) {
  kagami::core::ProbeReport all;
  for (const auto& n : kagami::core::feature_names()) all.features.push_back({n, "", true, ""});
  for (const auto& name : kagami::core::builtin_module_names()) {
    auto m = kagami::core::make_module(name);
    ASSERT_NE(m, nullptr) << name;
    for (const auto& need : m->needs()) EXPECT_NE(all.find(need.feature), nullptr) << name << " needs " << need.feature;
  }
}

const kagami::core::MetricFamily* find(const std::vector<kagami::core::MetricFamily>& fams,
                                       const std::string& name) {
  for (const auto& f : fams)
    if (f.name == name) return &f;
  return nullptr;
}

TEST(ObsMetrics, TeidsBeyondTopNAreFoldedIntoOtherAndCounted) {
  ObsSnapshot s;
  for (uint32_t teid = 1; teid <= 5; teid++) {
    auto& t = s.teids[teid];
    t.packets = teid * 10;  // TEID 5 has the most
    t.frame_bytes = teid * 1000;
    t.by_msg_type[255] = t.packets;
  }
  ObsConfig cfg;
  cfg.interfaces = {"eth0"};
  cfg.top_n_teids = 2;
  cfg.node = "n1";
  IfaceStats ifs;
  ifs.pod_uid = {"", "5d3c1b2a-7e6f-4a8b-9c0d-1e2f3a4b5c6d"};  // eth0 (slot 1) is a pod's veth
  ifs.drops = [](const std::string&, uint64_t& rx, uint64_t& tx) {
    rx = 7;
    tx = 9;
    return true;
  };
  s.iface[IfaceKey{1, OBS_DIR_INGRESS, OBS_L4_UDP}] = {4, 400};
  s.iface[IfaceKey{0, OBS_DIR_EGRESS, OBS_L4_ESP}] = {2, 300};
  s.gtpu_msg_by_slot[1][255] = 11;
  s.pfcp_msg_by_slot[0][50] = 3;
  // TEID 5 crossed two interfaces.
  s.teids[5].by_slot[1] = {30, 3000};
  s.teids[5].by_slot[0] = {20, 2000};
  auto fams = build_metrics(s, cfg, ifs);

  const auto* tp = find(fams, "kagami_obs_gtpu_teid_packets_total");
  ASSERT_NE(tp, nullptr);
  ASSERT_EQ(tp->samples.size(), 4u);  // top 2 (TEID 5 on two interfaces) + other
  EXPECT_EQ(tp->samples[0].labels.at("teid"), "0x00000005");
  EXPECT_EQ(tp->samples[0].labels.at("interface"), "other");
  EXPECT_EQ(tp->samples[0].value, 20);
  EXPECT_EQ(tp->samples[1].labels.at("teid"), "0x00000005");
  EXPECT_EQ(tp->samples[1].labels.at("interface"), "eth0");
  EXPECT_EQ(tp->samples[1].labels.at("pod_uid"), "5d3c1b2a-7e6f-4a8b-9c0d-1e2f3a4b5c6d");
  EXPECT_EQ(tp->samples[0].labels.at("pod_uid"), "");  // "other"
  EXPECT_EQ(tp->samples[1].value, 30);
  EXPECT_EQ(tp->samples[2].labels.at("teid"), "0x00000004");
  EXPECT_EQ(tp->samples[3].labels.at("teid"), "other");
  EXPECT_EQ(tp->samples[3].value, 10 + 20 + 30);
  EXPECT_EQ(tp->samples[3].labels.at("node"), "n1");
  const auto* folded = find(fams, "kagami_obs_series_folded");
  ASSERT_NE(folded, nullptr);
  EXPECT_EQ(folded->samples.at(0).value, 3);

  const auto* pk = find(fams, "kagami_obs_packets_total");
  ASSERT_NE(pk, nullptr);
  ASSERT_EQ(pk->samples.size(), 2u);
  EXPECT_EQ(pk->samples[0].labels.at("interface"), "other");
  EXPECT_EQ(pk->samples[0].labels.at("protocol"), "esp");
  EXPECT_EQ(pk->samples[0].labels.at("direction"), "egress");
  EXPECT_EQ(pk->samples[1].labels.at("interface"), "eth0");
  EXPECT_EQ(pk->samples[1].labels.at("protocol"), "udp");
  EXPECT_EQ(pk->samples[1].value, 4);
  const auto* gm = find(fams, "kagami_obs_gtpu_messages_total");
  ASSERT_NE(gm, nullptr);
  ASSERT_EQ(gm->samples.size(), 1u);
  EXPECT_EQ(gm->samples[0].labels.at("interface"), "eth0");
  EXPECT_EQ(gm->samples[0].labels.at("type"), "T-PDU");
  const auto* pm = find(fams, "kagami_obs_pfcp_messages_total");
  ASSERT_NE(pm, nullptr);
  ASSERT_EQ(pm->samples.size(), 1u);
  EXPECT_EQ(pm->samples[0].labels.at("interface"), "other");
  const auto* dr = find(fams, "kagami_obs_interface_drops_total");
  ASSERT_NE(dr, nullptr);
  ASSERT_EQ(dr->samples.size(), 2u);
  EXPECT_EQ(dr->samples[0].value, 7);
  EXPECT_EQ(dr->samples[1].value, 9);
}

// The 5G context join (core::SessionDirectory, written by n2): a per-TEID
// series carries the session's labels when every known end with that TEID
// agrees, none otherwise; the series count does not change.
TEST(ObsMetrics, TeidSeriesCarryTheSessionFromTheDirectory) {
  ObsSnapshot s;
  for (uint32_t teid : {0x11u, 0x22u, 0x33u}) {
    s.teids[teid].packets = teid;
    s.teids[teid].frame_bytes = teid * 100;
  }
  ObsConfig cfg;
  cfg.interfaces = {"eth0"};
  cfg.node = "n1";
  kagami::core::SessionDirectory dir;
  const kagami::core::SessionDirectory::Labels sess = {
      {"seid", "0x000000000000001f"}, {"pdu_session_id", "5"}, {"supi_hash", "0123456789abcdef"}};
  dir.put("n2", 0x11, {10, 2, 0, 7}, sess);
  dir.put("n2", 0x22, {10, 2, 0, 2}, sess);
  dir.put("n2", 0x33, {10, 2, 0, 2}, {{"seid", "0x0000000000000001"}});
  dir.put("n2", 0x33, {10, 2, 0, 7}, {{"seid", "0x0000000000000002"}});  // two sessions: no label
  const auto without = build_metrics(s, cfg, IfaceStats{});
  const auto fams = build_metrics(s, cfg, IfaceStats{}, &dir);
  for (const char* name : {"kagami_obs_gtpu_teid_packets_total", "kagami_obs_gtpu_teid_bytes_total"}) {
    SCOPED_TRACE(name);
    const auto* f = find(fams, name);
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(f->samples.size(), find(without, name)->samples.size());
    ASSERT_EQ(f->samples.size(), 3u);
    for (const auto& smp : f->samples) {
      const std::string teid = smp.labels.at("teid");
      if (teid == "0x00000033") {
        EXPECT_EQ(smp.labels.count("seid"), 0u);
        EXPECT_EQ(smp.labels.count("supi_hash"), 0u);
      } else {
        EXPECT_EQ(smp.labels.at("seid"), "0x000000000000001f") << teid;
        EXPECT_EQ(smp.labels.at("pdu_session_id"), "5");
        EXPECT_EQ(smp.labels.at("supi_hash"), "0123456789abcdef");
      }
    }
  }
  auto j = teid_session_labels(s, dir);
  EXPECT_EQ(j["by_teid"]["0x00000011"]["seid"], "0x000000000000001f");
  EXPECT_EQ(j["by_teid"]["0x00000011"]["packets"], 0x11);
  EXPECT_FALSE(j["by_teid"].contains("0x00000033"));
  EXPECT_EQ(j["teids_unlabelled"], 1);
}

TEST(ObsMetrics, LatencyHistogramIsCumulativeWithInf) {
  ObsSnapshot s;
  LatencyHist h;
  h.count = 3;
  h.sum_ns = 3'000'000;
  h.buckets[9] = 2;   // [512, 1024) us
  h.buckets[10] = 1;  // [1024, 2048) us
  s.pfcp_latency[51] = h;
  s.pfcp_latency_by_slot[{1, 51}] = h;  // all of it on the N4 interface
  ObsConfig cfg;
  cfg.node = "n";
  cfg.interfaces = {"n4"};
  auto fams = build_metrics(s, cfg, IfaceStats{});
  const auto* lat = find(fams, "kagami_obs_pfcp_response_latency_seconds");
  ASSERT_NE(lat, nullptr);
  EXPECT_EQ(lat->type, "histogram");
  double le_1024us = -1, inf = -1, count = -1, sum = -1;
  for (const auto& smp : lat->samples) {
    if (smp.suffix == "_bucket" && smp.labels.at("le") == "0.001024") le_1024us = smp.value;
    if (smp.suffix == "_bucket" && smp.labels.at("le") == "+Inf") inf = smp.value;
    if (smp.suffix == "_count") count = smp.value;
    if (smp.suffix == "_sum") sum = smp.value;
  }
  for (const auto& smp : lat->samples) EXPECT_EQ(smp.labels.at("interface"), "n4");
  EXPECT_EQ(le_1024us, 2);
  EXPECT_EQ(inf, 3);
  EXPECT_EQ(count, 3);
  EXPECT_DOUBLE_EQ(sum, 0.003);
}

}  // namespace
