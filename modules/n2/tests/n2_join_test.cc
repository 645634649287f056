// Unit tests of the 5G context join (no root), on messages built here byte
// by byte from TS 38.413 (APER) and TS 29.244 (PFCP): the DL TEID of the
// PDU session resource setup response, the PFCP reader, and the join of
// NGAP's tunnel ends with PFCP's sessions into the labels obs's per-TEID
// series carry (core::SessionDirectory), kept current as sessions are
// modified, deleted and TEIDs reused; hostile PFCP counted.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/session_directory.h"
#include "modules/n2/abi.h"
#include "modules/n2/decode.h"
#include "modules/n2/pfcp.h"
#include "modules/n2/tracker.h"

namespace {

using namespace kagami::n2;
using kagami::core::SessionDirectory;
using Bytes = std::vector<uint8_t>;

void put32(Bytes& b, uint32_t v) {
  for (int i = 3; i >= 0; i--) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void ie(Bytes& out, uint16_t id, const Bytes& value) {
  out.push_back(id >> 8);
  out.push_back(id & 0xff);
  out.push_back(0x00);  // criticality reject
  out.push_back(static_cast<uint8_t>(value.size()));
  out.insert(out.end(), value.begin(), value.end());
}

Bytes ngap(int pdu_type, int proc, const std::vector<std::pair<uint16_t, Bytes>>& ies) {
  Bytes body = {0x00, 0x00, static_cast<uint8_t>(ies.size())};
  for (const auto& [id, v] : ies) ie(body, id, v);
  Bytes out = {static_cast<uint8_t>(pdu_type << 5), static_cast<uint8_t>(proc), 0x00,
               static_cast<uint8_t>(body.size())};
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

Bytes ran_id(uint8_t v) { return {0x00, v}; }  // RAN UE NGAP ID: 1 octet
Bytes amf_id(uint8_t v) { return {0x00, v}; }

// PDUSessionResourceSetupRequest (29, initiating) with one
// PDUSessionResourceSetupItemSUReq: PSI, S-NSSAI (SST 1), and a request
// transfer holding UL-NGU-UP-TNLInformation (IE 139) = gTPTunnel.
Bytes setup_request(uint8_t ran, uint8_t amf, uint8_t psi, uint32_t teid, uint32_t upf) {
  Bytes tnl = {0x01, 0xf0};  // CHOICE 0, GTPTunnel ext/opt, BIT STRING ext, length-1 = 31
  put32(tnl, upf);
  put32(tnl, teid);
  Bytes transfer = {0x00, 0x00, 0x01};
  ie(transfer, 139, tnl);
  Bytes list = {0x00, 0x00, psi, 0x00, 0x20, static_cast<uint8_t>(transfer.size())};
  list.insert(list.end(), transfer.begin(), transfer.end());
  return ngap(0, 29, {{10, amf_id(amf)}, {85, ran_id(ran)}, {74, list}});
}

// PDUSessionResourceSetupResponse (29, successful outcome), or with
// list 72 the InitialContextSetupResponse (14): one item whose response
// transfer holds dLQosFlowPerTNLInformation = gTPTunnel (the gNB's end).
Bytes setup_response(uint8_t ran, uint8_t amf, uint8_t psi, uint32_t teid, uint32_t gnb, bool initial_context = false) {
  Bytes transfer = {0x00, 0x03, 0xe0};  // 8 bits of SEQUENCE/CHOICE, then 3 + length-1 = 31
  put32(transfer, gnb);
  put32(transfer, teid);
  transfer.push_back(0x00);  // associatedQosFlowList: one item, QFI 1
  transfer.push_back(0x04);
  Bytes list = {0x00, 0x00, psi, static_cast<uint8_t>(transfer.size())};
  list.insert(list.end(), transfer.begin(), transfer.end());
  return ngap(1, initial_context ? 14 : 29, {{10, amf_id(amf)}, {85, ran_id(ran)}, {initial_context ? uint16_t(72) : uint16_t(75), list}});
}

// Registration request with a SUCI: gives the UE its hashed subscriber.
Bytes reg_request(uint8_t ran) {
  const Bytes nas = {0x7e, 0x00, 0x41, 0x79, 0x00, 0x04, 0x01, 0x02, 0x03, 0x04};
  Bytes v = {static_cast<uint8_t>(nas.size())};
  v.insert(v.end(), nas.begin(), nas.end());
  return ngap(0, 15, {{85, ran_id(ran)}, {38, v}});
}

void map4(uint8_t out[16], uint32_t a) {
  std::memset(out, 0, 16);
  out[10] = out[11] = 0xff;
  out[12] = a >> 24;
  out[13] = (a >> 16) & 0xff;
  out[14] = (a >> 8) & 0xff;
  out[15] = a & 0xff;
}

constexpr uint32_t kGnb = 0x0a000002, kAmf = 0x0a000001, kSmf = 0x0a010004, kUpf = 0x0a010007,
                   kUpfN3 = 0x0a020007, kGnbN3 = 0x0a020002;

Bytes record(int kind, const Bytes& msg, uint32_t src, uint32_t dst, uint64_t ts) {
  n2_msg_event ev{};
  ev.hdr.kind = static_cast<uint16_t>(kind);
  ev.hdr.len = N2_EVENT_FIXED + static_cast<uint32_t>(msg.size());
  ev.ts_ns = ts;
  ev.msg_len = ev.copied = static_cast<uint32_t>(msg.size());
  map4(ev.saddr, src);
  map4(ev.daddr, dst);
  Bytes out(reinterpret_cast<uint8_t*>(&ev), reinterpret_cast<uint8_t*>(&ev) + N2_EVENT_FIXED);
  out.insert(out.end(), msg.begin(), msg.end());
  return out;
}

Bytes ngap_rec(const Bytes& m, uint64_t ts) { return record(N2_EVENT_NGAP, m, kGnb, kAmf, ts); }

// --- PFCP (TS 29.244 7.2.2 header, 8.1.1 IEs) ---
Bytes tlv(uint16_t type, const Bytes& v) {
  Bytes b = {static_cast<uint8_t>(type >> 8), static_cast<uint8_t>(type), static_cast<uint8_t>(v.size() >> 8),
             static_cast<uint8_t>(v.size())};
  b.insert(b.end(), v.begin(), v.end());
  return b;
}
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes b;
  for (const auto& p : parts) b.insert(b.end(), p.begin(), p.end());
  return b;
}
Bytes pfcp(uint8_t type, uint64_t seid, uint32_t seq, const Bytes& ies) {
  Bytes b = {0x21, type, 0, 0};
  for (int i = 7; i >= 0; i--) b.push_back(static_cast<uint8_t>(seid >> (8 * i)));
  b.push_back(static_cast<uint8_t>(seq >> 16));
  b.push_back(static_cast<uint8_t>(seq >> 8));
  b.push_back(static_cast<uint8_t>(seq));
  b.push_back(0);
  b.insert(b.end(), ies.begin(), ies.end());
  const size_t len = b.size() - 4;
  b[2] = static_cast<uint8_t>(len >> 8);
  b[3] = static_cast<uint8_t>(len);
  return b;
}
Bytes fseid(uint64_t seid, uint32_t addr) {
  Bytes v = {0x02};
  for (int i = 7; i >= 0; i--) v.push_back(static_cast<uint8_t>(seid >> (8 * i)));
  put32(v, addr);
  return tlv(57, v);
}
Bytes fteid(uint32_t teid, uint32_t addr) {
  Bytes v = {0x01};
  put32(v, teid);
  put32(v, addr);
  return tlv(21, v);
}
Bytes fteid_choose() { return tlv(21, {0x05}); }  // V4 + CH: the UPF picks
Bytes outer(uint32_t teid, uint32_t addr) {
  Bytes v = {0x01, 0x00};
  put32(v, teid);
  put32(v, addr);
  return tlv(84, v);
}
Bytes cause(uint8_t c) { return tlv(19, {c}); }
Bytes ue_ip(uint32_t a) {
  Bytes v = {0x02};
  put32(v, a);
  return tlv(93, v);
}

// SMF -> UPF: establishment with CH (the UPF chooses the N3 TEID).
Bytes est_req(uint64_t cp_seid) {
  return pfcp(50, 0, 1, cat({fseid(cp_seid, kSmf), tlv(1, cat({tlv(56, {0, 1}), tlv(2, cat({tlv(20, {0}), fteid_choose()}))})),
                             tlv(3, cat({tlv(108, {0, 0, 0, 1}), tlv(44, {0x02})})), ue_ip(0x0a2d0002)}));
}
Bytes est_resp(uint64_t cp_seid, uint64_t up_seid, uint32_t ul_teid, uint8_t c = 1) {
  return pfcp(51, cp_seid, 1, cat({cause(c), fseid(up_seid, kUpf), tlv(8, cat({tlv(56, {0, 1}), fteid(ul_teid, kUpfN3)}))}));
}
Bytes mod_req(uint64_t up_seid, uint32_t dl_teid) {
  return pfcp(52, up_seid, 2, tlv(10, cat({tlv(108, {0, 0, 0, 2}), tlv(11, outer(dl_teid, kGnbN3))})));
}
Bytes del_resp(uint64_t cp_seid) { return pfcp(55, cp_seid, 3, cause(1)); }

Bytes to_upf(const Bytes& m, uint64_t ts) { return record(N2_EVENT_PFCP, m, kSmf, kUpf, ts); }
Bytes to_smf(const Bytes& m, uint64_t ts) { return record(N2_EVENT_PFCP, m, kUpf, kSmf, ts); }

TEST(N2Decode, DlTunnelOfSetupResponses) {
  auto g = decode_ngap(setup_response(7, 3, 5, 0xca6fe0dd, 0xc0a84681));
  EXPECT_EQ(g.error, NGAP_OK);
  ASSERT_EQ(g.dl_tunnels.size(), 1u);
  EXPECT_EQ(g.dl_tunnels[0].pdu_session_id, 5);
  EXPECT_EQ(g.dl_tunnels[0].teid, 0xca6fe0ddu);
  EXPECT_EQ(g.dl_tunnels[0].address, (Bytes{0xc0, 0xa8, 0x46, 0x81}));
  EXPECT_TRUE(g.ul_tunnels.empty());
  auto c = decode_ngap(setup_response(7, 3, 6, 0x22, kGnbN3, true));
  EXPECT_EQ(c.error, NGAP_OK);
  ASSERT_EQ(c.dl_tunnels.size(), 1u);
  EXPECT_EQ(c.dl_tunnels[0].teid, 0x22u);
  auto u = decode_ngap(setup_request(7, 3, 5, 0x11, kUpfN3));
  ASSERT_EQ(u.ul_tunnels.size(), 1u);
  EXPECT_EQ(u.ul_tunnels[0].teid, 0x11u);
  EXPECT_TRUE(u.dl_tunnels.empty());
  // Every prefix of the response: never a tunnel read from outside it.
  auto full = setup_response(7, 3, 5, 0x22, kGnbN3);
  for (size_t n = 0; n < full.size(); n++) {
    Bytes p(full.begin(), full.begin() + static_cast<long>(n));
    auto d = decode_ngap(p);
    EXPECT_NE(d.error, NGAP_OK) << n;
    EXPECT_TRUE(d.dl_tunnels.empty()) << n;
  }
  // A transfer length past its list: counted, not read.
  auto bad = full;
  bad[bad.size() - 14] = 0x7f;  // the item's transfer length (13 octets of transfer follow)
  EXPECT_NE(decode_ngap(bad).error, NGAP_OK);
}

TEST(N2Pfcp, ReadsSeidsTeidsAndUeAddress) {
  auto r = decode_pfcp(est_req(0x1f));
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.type, 50);
  EXPECT_EQ(*r.header_seid, 0u);
  EXPECT_EQ(*r.fseid, 0x1fu);
  EXPECT_TRUE(r.fteids.empty());  // CH: nothing chosen yet
  EXPECT_EQ(r.ue_ipv4, (Bytes{10, 45, 0, 2}));
  auto s = decode_pfcp(est_resp(0x1f, 0x90, 0x11));
  EXPECT_EQ(*s.header_seid, 0x1fu);
  EXPECT_EQ(*s.fseid, 0x90u);
  EXPECT_EQ(*s.cause, 1);
  ASSERT_EQ(s.fteids.size(), 1u);
  EXPECT_EQ(s.fteids[0].teid, 0x11u);
  EXPECT_EQ(s.fteids[0].ipv4, (Bytes{10, 2, 0, 7}));
  auto m = decode_pfcp(mod_req(0x90, 0x22));
  ASSERT_EQ(m.outer.size(), 1u);
  EXPECT_EQ(m.outer[0].teid, 0x22u);
  EXPECT_EQ(m.outer[0].ipv4, (Bytes{10, 2, 0, 2}));
  // Hostile: every prefix reads nothing past its end and says why.
  auto full = est_resp(0x1f, 0x90, 0x11);
  for (size_t n = 0; n < full.size(); n++) {
    auto p = decode_pfcp(std::span<const uint8_t>(full.data(), n));
    EXPECT_NE(p.error, "") << n;
  }
  // An IE whose length lies.
  auto lie = est_resp(0x1f, 0x90, 0x11);
  lie[16 + 2] = 0x40;
  EXPECT_EQ(decode_pfcp(lie).error, "ie_past_end");
  // Grouped IEs nested deeper than any session message: stopped, said.
  Bytes deep = tlv(21, {0x01, 0, 0, 0, 9, 1, 2, 3, 4});
  for (int i = 0; i < 6; i++) deep = tlv(1, deep);
  auto d = decode_pfcp(pfcp(50, 0, 1, deep));
  EXPECT_EQ(d.error, "ies_too_deep");
  EXPECT_TRUE(d.fteids.empty());
}

TEST(N2Join, NgapAndPfcpJoinIntoTeidLabels) {
  SessionDirectory dir;
  Tracker t;
  t.set_directory(&dir);
  uint64_t ts = 1'000;
  ASSERT_TRUE(t.add(ngap_rec(reg_request(9), ts++)));
  // The real order: PFCP establishment (the UPF picks the UL TEID), NGAP
  // setup request (UL), NGAP setup response (DL), PFCP modification (DL).
  ASSERT_TRUE(t.add(to_upf(est_req(0x1f), ts++)));
  ASSERT_TRUE(t.add(to_smf(est_resp(0x1f, 0x90, 0x11), ts++)));
  ASSERT_TRUE(t.add(ngap_rec(setup_request(9, 4, 5, 0x11, kUpfN3), ts++)));
  ASSERT_TRUE(t.add(ngap_rec(setup_response(9, 4, 5, 0x22, kGnbN3), ts++)));
  nlohmann::json line;
  ASSERT_TRUE(t.add(to_upf(mod_req(0x90, 0x22), ts++), &line));
  EXPECT_EQ(line["kind"], "pfcp");
  EXPECT_EQ(line["pfcp"]["seid"], "0x0000000000000090");

  auto ul = dir.lookup_teid(0x11), dl = dir.lookup_teid(0x22);
  ASSERT_TRUE(ul);
  ASSERT_TRUE(dl);
  EXPECT_EQ(ul->at("seid"), "0x000000000000001f");
  EXPECT_EQ(ul->at("pdu_session_id"), "5");
  EXPECT_EQ(ul->at("supi_hash").size(), 16u);
  EXPECT_EQ(*ul, *dl);
  auto j = t.join();
  ASSERT_EQ(j["sessions"].size(), 1u) << j.dump();
  const auto& s = j["sessions"][0];
  EXPECT_EQ(s["ul_teid"], "0x00000011");
  EXPECT_EQ(s["upf_address"], "10.2.0.7");
  EXPECT_EQ(s["dl_teid"], "0x00000022");
  EXPECT_EQ(s["gnb_address"], "10.2.0.2");
  EXPECT_EQ(s["seid"], "0x000000000000001f");
  EXPECT_EQ(s["up_seid"], "0x0000000000000090");
  EXPECT_EQ(s["pfcp_ue_address"], "10.45.0.2");
  EXPECT_EQ(j["pfcp_sessions_joined"], 1);
  EXPECT_EQ(t.session_for_teid(0x11)["seid"], "0x000000000000001f");

  // A second session whose UPF-side TEID is also 0x22 (at the UPF): TEID
  // 0x22 alone is now ambiguous, and obs gets no label for it.
  ASSERT_TRUE(t.add(to_upf(est_req(0x2f), ts++)));
  ASSERT_TRUE(t.add(to_smf(est_resp(0x2f, 0x91, 0x22), ts++)));
  EXPECT_FALSE(dir.lookup_teid(0x22));
  EXPECT_GE(dir.ambiguous(), 1u);
  EXPECT_EQ(dir.lookup(0x22, {10, 2, 0, 2})->at("seid"), "0x000000000000001f");
  EXPECT_EQ(dir.lookup(0x22, {10, 2, 0, 7})->at("seid"), "0x000000000000002f");
  EXPECT_FALSE(dir.lookup(0x22, {10, 2, 0, 7})->count("supi_hash"));  // PFCP only: only what is known

  // The gNB moves the session's DL end (a service request later): the old
  // end leaves, the new one carries the session.
  ASSERT_TRUE(t.add(ngap_rec(setup_response(9, 4, 5, 0x33, kGnbN3, true), ts++)));
  ASSERT_TRUE(t.add(to_upf(mod_req(0x90, 0x33), ts++)));
  EXPECT_FALSE(dir.lookup(0x22, {10, 2, 0, 2}));
  EXPECT_EQ(dir.lookup_teid(0x33)->at("seid"), "0x000000000000001f");
  EXPECT_EQ(dir.lookup_teid(0x22)->at("seid"), "0x000000000000002f");  // no longer ambiguous

  // The session is deleted: the SEID label goes, NGAP's stays.
  ASSERT_TRUE(t.add(to_smf(del_resp(0x1f), ts++), &line));
  EXPECT_EQ(line["pfcp"]["outcome"], "session_deleted");
  EXPECT_FALSE(dir.lookup_teid(0x11)->count("seid"));
  EXPECT_EQ(dir.lookup_teid(0x11)->at("pdu_session_id"), "5");

  // A response to a session never seen, a rejected establishment and cut
  // messages: counted, nothing joined, nothing thrown.
  ASSERT_TRUE(t.add(to_smf(est_resp(0x77, 0x99, 0x44), ts++)));
  ASSERT_TRUE(t.add(to_upf(est_req(0x3f), ts++)));
  ASSERT_TRUE(t.add(to_smf(est_resp(0x3f, 0x92, 0x55, 64), ts++)));
  EXPECT_FALSE(dir.lookup_teid(0x44));
  EXPECT_FALSE(dir.lookup_teid(0x55));
  auto cut = est_resp(0x2f, 0x91, 0x66);
  cut.resize(cut.size() - 3);
  ASSERT_TRUE(t.add(to_smf(cut, ts++)));
  EXPECT_GE(t.bad().at("pfcp_ie_past_end") + t.bad().count("pfcp_message_cut"), 1u);
  EXPECT_EQ(t.join()["pfcp_unmatched"], 1);

  // The module going away withdraws everything it published.
  dir.clear("n2");
  EXPECT_EQ(dir.size(), 0u);
}

TEST(N2Join, BoundedByTheUeTable) {
  SessionDirectory dir;
  TrackerOptions o;
  o.max_ues = 4;
  Tracker t(o);
  t.set_directory(&dir);
  for (uint8_t i = 0; i < 40; i++) {
    ASSERT_TRUE(t.add(ngap_rec(setup_request(i, i, 1, 0x1000u + i, kUpfN3), i)));
    ASSERT_TRUE(t.add(to_upf(est_req(0x100u + i), i)));
  }
  EXPECT_EQ(t.ues(), 4u);
  // Evicted UEs' ends left the directory; PFCP sessions are bounded at
  // 2 x max_ues, evictions counted.
  EXPECT_LE(dir.size(), 4u);
  EXPECT_EQ(t.join()["pfcp_sessions"], 8);
  EXPECT_EQ(t.join()["pfcp_evictions"], 32);
}

TEST(SessionDirectory, AgreeOrNothingAndBounded) {
  SessionDirectory d(2);
  EXPECT_TRUE(d.put("n2", 1, {1, 1, 1, 1}, {{"seid", "a"}}));
  EXPECT_TRUE(d.put("n2", 1, {2, 2, 2, 2}, {{"seid", "a"}}));
  EXPECT_EQ(d.lookup_teid(1)->at("seid"), "a");
  EXPECT_FALSE(d.put("n2", 2, {1, 1, 1, 1}, {}));  // full: refused, counted
  EXPECT_EQ(d.refused(), 1u);
  EXPECT_TRUE(d.put("n2", 1, {2, 2, 2, 2}, {{"seid", "b"}}));  // replace is not an insert
  EXPECT_FALSE(d.lookup_teid(1));
  EXPECT_EQ(d.ambiguous(), 1u);
  d.remove("other", 1, {2, 2, 2, 2});  // not its owner's: stays
  EXPECT_EQ(d.size(), 2u);
  d.remove("n2", 1, {2, 2, 2, 2});
  EXPECT_EQ(d.lookup_teid(1)->at("seid"), "a");
  EXPECT_FALSE(d.lookup_teid(7));
}

}  // namespace
