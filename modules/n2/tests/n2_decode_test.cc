// Unit tests of the n2 userspace decoders (no root): NGAP APER walk and
// NAS-5GS, on messages built here byte by byte from TS 38.413 / TS 24.501,
// and the bad inputs the issue lists (lengths past the end, lying IE
// counts, cut NAS-PDUs, a full per-UE table).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "modules/n2/abi.h"
#include "modules/n2/decode.h"
#include "modules/n2/n2_module.h"
#include "modules/n2/tracker.h"

namespace {

using namespace kagami::n2;
using Bytes = std::vector<uint8_t>;

// One protocol IE: id, criticality, open type.
void ie(Bytes& out, uint16_t id, const Bytes& value) {
  out.push_back(id >> 8);
  out.push_back(id & 0xff);
  out.push_back(0x40);  // criticality ignore
  out.push_back(static_cast<uint8_t>(value.size()));
  for (uint8_t c : value) out.push_back(c);
}

// An NGAP PDU with the given IEs (count as given, so tests can lie).
Bytes ngap(int pdu_type, int proc, const std::vector<std::pair<uint16_t, Bytes>>& ies, int count = -1) {
  Bytes body = {0x00, 0x00, static_cast<uint8_t>(count < 0 ? ies.size() : count)};
  for (const auto& [id, v] : ies) ie(body, id, v);
  Bytes out = {static_cast<uint8_t>(pdu_type << 5), static_cast<uint8_t>(proc), 0x40,
               static_cast<uint8_t>(body.size())};
  for (uint8_t c : body) out.push_back(c);
  return out;
}

Bytes nas_pdu(const Bytes& nas) {
  Bytes v = {static_cast<uint8_t>(nas.size())};
  for (uint8_t c : nas) v.push_back(c);
  return v;
}

// Registration request, initial registration, SUCI of 4 octets.
const Bytes kRegReq = {0x7e, 0x00, 0x41, 0x79, 0x00, 0x04, 0x01, 0x02, 0x03, 0x04};

TEST(N2Decode, NgapWalkFindsIdsAndNas) {
  auto m = ngap(0, 15, {{85, {0x00, 0x07}}, {38, nas_pdu(kRegReq)}});
  auto g = decode_ngap(m);
  EXPECT_EQ(g.error, NGAP_OK);
  EXPECT_EQ(g.pdu_type, 0);
  EXPECT_EQ(g.proc, 15);
  ASSERT_TRUE(g.ran_ue_id);
  EXPECT_EQ(*g.ran_ue_id, 7u);
  EXPECT_FALSE(g.amf_ue_id);
  ASSERT_EQ(g.nas.size(), 1u);
  EXPECT_EQ(g.nas[0].len, kRegReq.size());
  EXPECT_EQ(std::memcmp(m.data() + g.nas[0].off, kRegReq.data(), kRegReq.size()), 0);
}

TEST(N2Decode, AmfIdFiveOctets) {
  auto m = ngap(1, 14, {{10, {0x80, 0x01, 0x02, 0x03, 0x04, 0x05}}, {85, {0x40, 0x01, 0x02}}});
  auto g = decode_ngap(m);
  EXPECT_EQ(g.error, NGAP_OK);
  EXPECT_EQ(*g.amf_ue_id, 0x0102030405ull);
  EXPECT_EQ(*g.ran_ue_id, 0x0102u);
}

TEST(N2Decode, BadInputCountedByReason) {
  auto ok = ngap(0, 46, {{85, {0x00, 0x01}}, {38, nas_pdu(kRegReq)}});
  // IE count says 3, the container holds 2.
  EXPECT_EQ(decode_ngap(ngap(0, 46, {{85, {0x00, 0x01}}, {38, nas_pdu(kRegReq)}}, 3)).error, NGAP_E_IE_COUNT_LIES);
  // IE count says 1, the container holds 2.
  EXPECT_EQ(decode_ngap(ngap(0, 46, {{85, {0x00, 0x01}}, {38, nas_pdu(kRegReq)}}, 1)).error, NGAP_E_IE_COUNT_LIES);
  // The open type's length runs past the message.
  auto past = ok;
  past[3] = 0x7f;
  EXPECT_EQ(decode_ngap(past).error, NGAP_E_LEN_PAST_END);
  // The NAS-PDU's own length runs past its IE.
  auto cut = ngap(0, 46, {{38, Bytes{0x20, 0x7e, 0x00, 0x41}}});
  EXPECT_EQ(decode_ngap(cut).error, NGAP_E_NAS_CUT);
  // An impossible RAN UE NGAP ID (4 octets announced, 1 present).
  EXPECT_EQ(decode_ngap(ngap(0, 46, {{85, {0xc0, 0x01}}})).error, NGAP_E_BAD_ID);
  // Every prefix of a good message decodes without reading past it.
  for (size_t n = 0; n < ok.size(); n++) {
    Bytes pre(ok.begin(), ok.begin() + static_cast<long>(n));
    auto g = decode_ngap(pre);
    EXPECT_NE(g.error, NGAP_OK) << n;
  }
}

TEST(N2Decode, NasPlainProtectedCiphered) {
  auto p = decode_nas(kRegReq, false);
  EXPECT_EQ(p.sht, 0);
  EXPECT_EQ(p.outer_mm, 0x41);
  EXPECT_EQ(p.registration_type, 1);
  EXPECT_EQ(p.suci.size(), 4u);
  // Integrity protected with new context: a Security mode command choosing NEA0/NIA2.
  Bytes smc = {0x7e, 0x03, 1, 2, 3, 4, 0, 0x7e, 0x00, 0x5d, 0x02, 0x01};
  auto s = decode_nas(smc, false);
  EXPECT_EQ(s.sht, 3);
  EXPECT_FALSE(s.ciphered);
  EXPECT_EQ(s.outer_mm, 0x5d);
  EXPECT_EQ(s.selected_nea, 0);
  // Ciphered UL NAS transport carrying a PDU session establishment request.
  Bytes ul = {0x7e, 0x02, 1, 2, 3, 4, 1, 0x7e, 0x00, 0x67, 0x01, 0x00, 0x04, 0x2e, 0x05, 0x01, 0xc1};
  auto c = decode_nas(ul, false);
  EXPECT_TRUE(c.ciphered);
  EXPECT_FALSE(c.plain);
  EXPECT_TRUE(c.mm_all.empty());
  auto d = decode_nas(ul, true);
  EXPECT_EQ(d.outer_mm, 0x67);
  ASSERT_EQ(d.sm_all.size(), 1u);
  EXPECT_EQ(d.sm_all[0], 0xc1);
  EXPECT_EQ(d.pdu_session_id, 5);
  // 5GSM with no security header.
  auto sm = decode_nas(Bytes{0x2e, 0x05, 0x01, 0xc2}, false);
  EXPECT_EQ(sm.sht, -1);
  EXPECT_EQ(sm.outer_sm, 0xc2);
  // Cut short: flagged, never read past.
  EXPECT_TRUE(decode_nas(Bytes{0x7e, 0x02, 1}, true).truncated);
}

Bytes record(const Bytes& msg, uint32_t ran, uint64_t ts) {
  n2_msg_event ev{};
  ev.hdr.kind = N2_EVENT_NGAP;
  ev.hdr.len = N2_EVENT_FIXED + static_cast<uint32_t>(msg.size());
  ev.ts_ns = ts;
  ev.ran_ue_id = ran;
  ev.msg_len = ev.copied = static_cast<uint32_t>(msg.size());
  ev.saddr[10] = ev.saddr[11] = 0xff;
  ev.saddr[15] = 1;
  Bytes out(reinterpret_cast<uint8_t*>(&ev), reinterpret_cast<uint8_t*>(&ev) + N2_EVENT_FIXED);
  for (uint8_t c : msg) out.push_back(c);
  return out;
}

TEST(N2Tracker, Nea0ViewAndKpis) {
  Tracker t;
  Bytes ran = {0x00, 0x09};
  auto r1 = record(ngap(0, 15, {{85, ran}, {38, nas_pdu(kRegReq)}}), 9, 1'000'000'000);
  Bytes smc = {0x7e, 0x03, 1, 2, 3, 4, 0, 0x7e, 0x00, 0x5d, 0x02, 0x01};
  auto r2 = record(ngap(0, 4, {{10, {0x00, 0x01}}, {85, ran}, {38, nas_pdu(smc)}}), 9, 1'100'000'000);
  Bytes acc = {0x7e, 0x02, 1, 2, 3, 4, 1, 0x7e, 0x00, 0x42, 0x01};
  auto r3 = record(ngap(0, 14, {{10, {0x00, 0x01}}, {85, ran}, {38, nas_pdu(acc)}}), 9, 1'300'000'000);
  nlohmann::json line;
  ASSERT_TRUE(t.add(r1, &line));
  EXPECT_EQ(line["ue"]["ran_ue_ngap_id"], 9);
  EXPECT_EQ(line["subscriber"].get<std::string>().size(), 16u);  // hashed, never the SUCI
  ASSERT_TRUE(t.add(r2));
  ASSERT_TRUE(t.add(r3));
  EXPECT_EQ(t.nas().encrypted_undecoded, 1u);      // tshark's default view
  EXPECT_EQ(t.nas_null().encrypted_undecoded, 0u); // NEA0 chosen: decoded
  EXPECT_EQ(t.nas_null().outer_mm.at(0x42), 1u);
  auto k = t.kpis().to_json();
  EXPECT_EQ(k["RM.RegInitReq"], 1);
  EXPECT_EQ(k["RM.RegInitSucc"], 1);
  EXPECT_DOUBLE_EQ(k["RM.RegTimeMean_ms"].get<double>(), 300.0);
  // A record whose len lies is refused, counted.
  auto bad = r1;
  bad.pop_back();
  EXPECT_FALSE(t.add(bad));
  EXPECT_EQ(t.bad().at("bad_record_length"), 1u);
}

TEST(N2Tracker, FullTableEvictsCounted) {
  TrackerOptions o;
  o.max_ues = 8;
  Tracker t(o);
  for (uint32_t i = 0; i < 100; i++) {
    Bytes id = {0x00, static_cast<uint8_t>(i)};
    ASSERT_TRUE(t.add(record(ngap(0, 15, {{85, id}, {38, nas_pdu(kRegReq)}}), i, i)));
  }
  EXPECT_EQ(t.ues(), 8u);
  EXPECT_EQ(t.evictions(), 92u);
}

TEST(N2Config, ErrorsNameTheField) {
  auto c = parse_config(nlohmann::json{{"interfaces", {"eth0"}}, {"order", 0}});
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("order"), std::string::npos);
  auto u = parse_config(nlohmann::json{{"interfaces", {"eth0"}}, {"bogus", 1}});
  ASSERT_FALSE(u);
  EXPECT_NE(u.error().message.find("bogus"), std::string::npos);
  auto ok = parse_config(nlohmann::json{{"interfaces", {"eth0"}}});
  ASSERT_TRUE(ok);
  auto specs = attach_specs(*ok);
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0], "tc:eth0:ingress@n2_tc_ingress#90");
}

}  // namespace
