#include "modules/n2/tracker.h"

#include <cstring>

#include <fmt/format.h>

#include "core/session_directory.h"

namespace kagami::n2 {
namespace {

using nlohmann::json;

json coded(const std::map<int, uint64_t>& c, std::string (*name)(int), bool hex) {
  json o = json::object();
  for (const auto& [k, v] : c)
    o[hex ? fmt::format("0x{:02x}", k) : std::to_string(k)] = {{"name", name(k)}, {"count", v}};
  return o;
}

uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

// SipHash-2-4 (Aumasson, Bernstein): a keyed hash, so the same SUCI gives
// the same label on one node and nothing guessable elsewhere.
uint64_t siphash24(const uint64_t k[2], std::span<const uint8_t> in) {
  uint64_t v0 = 0x736f6d6570736575ULL ^ k[0], v1 = 0x646f72616e646f6dULL ^ k[1];
  uint64_t v2 = 0x6c7967656e657261ULL ^ k[0], v3 = 0x7465646279746573ULL ^ k[1];
  auto round = [&] {
    v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
    v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
  };
  size_t n = in.size(), i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t m;
    std::memcpy(&m, in.data() + i, 8);
    v3 ^= m; round(); round(); v0 ^= m;
  }
  uint64_t b = static_cast<uint64_t>(n) << 56;
  for (size_t j = 0; i + j < n; j++) b |= static_cast<uint64_t>(in[i + j]) << (8 * j);
  v3 ^= b; round(); round(); v0 ^= b;
  v2 ^= 0xff;
  round(); round(); round(); round();
  return v0 ^ v1 ^ v2 ^ v3;
}

std::string ip_str(const std::vector<uint8_t>& a) {
  if (a.size() == 4) return fmt::format("{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
  std::string s;
  for (size_t i = 0; i + 1 < a.size(); i += 2) s += fmt::format("{}{:x}", i ? ":" : "", (a[i] << 8) | a[i + 1]);
  return s;
}

std::string addr_str(const uint8_t a[16]) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(a, mapped, 12) == 0) return fmt::format("{}.{}.{}.{}", a[12], a[13], a[14], a[15]);
  std::string s;
  for (int i = 0; i < 16; i += 2) s += fmt::format("{}{:x}", i ? ":" : "", (a[i] << 8) | a[i + 1]);
  return s;
}

// The address a tunnel end is keyed by: IPv4 when there is one (NGAP's
// 20-octet form is IPv4 then IPv6, TS 38.414 5.1), else IPv6.
std::vector<uint8_t> end_addr(const std::vector<uint8_t>& a) {
  if (a.size() == 20) return {a.begin(), a.begin() + 4};
  return a;
}

std::string pkt_addr(const uint8_t a[16]) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(a, mapped, 12) == 0) return {reinterpret_cast<const char*>(a) + 12, 4};
  return {reinterpret_cast<const char*>(a), 16};
}

// Key octets of an address.
std::string ka(const std::vector<uint8_t>& a) { return {a.begin(), a.end()}; }
std::vector<uint8_t> kb(const std::string& a) { return {a.begin(), a.end()}; }

std::string seid_str(uint64_t s) { return fmt::format("0x{:016x}", s); }

}  // namespace

void NasCounts::add(const NasMessage& m) {
  pdus++;
  if (m.sht < 0) {
    no_security_header_5gsm++;
  } else {
    sht[m.sht]++;
    if (m.ciphered) ciphered++;
  }
  if (m.outer_mm >= 0) outer_mm[m.outer_mm]++;
  else if (m.outer_sm >= 0) outer_sm[m.outer_sm]++;
  else encrypted_undecoded++;
  for (int t : m.mm_all) mm_all[t]++;
  for (int t : m.sm_all) sm_all[t]++;
}

json NasCounts::to_json() const {
  return {{"pdus", pdus},
          {"security_header_type", coded(sht, sht_name, false)},
          {"no_security_header_5gsm", no_security_header_5gsm},
          {"ciphered", ciphered},
          {"encrypted_undecoded", encrypted_undecoded},
          {"outer_mm_message_type", coded(outer_mm, mm_type_name, true)},
          {"outer_sm_message_type", coded(outer_sm, sm_type_name, true)},
          {"mm_message_type_all_occurrences", coded(mm_all, mm_type_name, true)},
          {"sm_message_type_all_occurrences", coded(sm_all, sm_type_name, true)}};
}

namespace {
// TS 28.552 5.2.2 subcounter names per 5GS registration type (TS 24.501
// 9.11.3.7: 1 initial, 2 mobility updating, 3 periodic updating, 4 emergency).
const char* reg_type_name(int t) {
  switch (t) {
    case 1: return "Init";
    case 2: return "Mob";
    case 3: return "Period";
    case 4: return "Emerg";
    default: return "Other";
  }
}
}  // namespace

json Kpis::to_json() const {
  json j = json::object();
  uint64_t att = 0, succ = 0;
  for (int t : {1, 2, 3, 4}) {
    j[fmt::format("RM.Reg{}Req", reg_type_name(t))] = reg_attempt.count(t) ? reg_attempt.at(t) : 0;
    j[fmt::format("RM.Reg{}Succ", reg_type_name(t))] = reg_succ.count(t) ? reg_succ.at(t) : 0;
  }
  for (const auto& [t, v] : reg_attempt) att += v;
  for (const auto& [t, v] : reg_succ) succ += v;
  j["RM.RegReq"] = att;
  j["RM.RegSucc"] = succ;
  j["RM.RegFail"] = reg_fail;
  j["RM.RegTimeMean_ms"] = reg_time_n ? static_cast<double>(reg_time_sum_ns) / reg_time_n / 1e6 : 0.0;
  j["SM.PduSessionCreationReq"] = pdu_req;
  j["SM.PduSessionCreationSucc"] = pdu_succ;
  json fail = json::object();
  uint64_t nfail = 0;
  for (const auto& [c, v] : pdu_fail) {
    fail[std::to_string(c)] = v;
    nfail += v;
  }
  j["SM.PduSessionCreationFail"] = nfail;
  j["SM.PduSessionCreationFail.cause"] = fail;
  j["SM.PduSessionTimeMean_ms"] = pdu_time_n ? static_cast<double>(pdu_time_sum_ns) / pdu_time_n / 1e6 : 0.0;
  j["MM.ServiceReq"] = service_req;
  j["MM.ServiceAcc"] = service_acc;
  j["MM.ServiceRej"] = service_rej;
  j["NG.SetupReq"] = ng_setup_req;
  j["NG.SetupSucc"] = ng_setup_succ;
  j["NG.SetupFail"] = ng_setup_fail;
  j["MM.HoPrepInterReq"] = ho_prep_req;
  j["MM.HoPrepInterSucc"] = ho_prep_succ;
  j["MM.HoPrepInterFail"] = ho_prep_fail;
  j["MM.HoResAlloInterReq"] = ho_res_req;
  j["MM.HoResAlloInterSucc"] = ho_res_succ;
  j["MM.HoResAlloInterFail"] = ho_res_fail;
  j["MM.HoExeInterSucc"] = ho_notify;
  j["SM.PduSessionResourceSetupReq"] = pdu_res_setup_req;
  j["SM.PduSessionResourceSetupSucc"] = pdu_res_setup_succ;
  return j;
}

Tracker::Tracker(TrackerOptions opt) : opt_(opt) {
  if (opt_.max_ues == 0) opt_.max_ues = 1;
}

std::string Tracker::hash_identity(std::span<const uint8_t> id) const {
  return fmt::format("{:016x}", siphash24(opt_.key, id));
}

Tracker::Ue& Tracker::ue_for(const std::string& key, uint64_t ts) {
  auto it = ues_.find(key);
  if (it != ues_.end()) {
    lru_.erase(it->second.lru);
    lru_.push_front(key);
    it->second.lru = lru_.begin();
    it->second.last_ns = ts;
    return it->second;
  }
  // Bounded: a flood of UEs that never finish a procedure evicts the
  // least recently seen record, counted.
  while (ues_.size() >= opt_.max_ues && !lru_.empty()) {
    auto victim = ues_.find(lru_.back());
    if (victim != ues_.end()) {
      for (const auto& [psi, tun] : victim->second.tunnels) teid_.erase(tun.teid);
      // Its tunnel ends leave the join (and the directory) with it.
      auto drop = [&](const Tunnel& t) {
        EndKey e{t.teid, ka(end_addr(t.address))};
        auto it = n2_end_.find(e);
        if (it != n2_end_.end() && it->second.first == lru_.back()) {
          n2_end_.erase(it);
          dirty_.insert(e);
        }
      };
      for (const auto& [psi, tun] : victim->second.tunnels) drop(tun);
      for (const auto& [psi, tun] : victim->second.dl_tunnels) drop(tun);
    }
    ues_.erase(lru_.back());
    lru_.pop_back();
    evictions_++;
  }
  lru_.push_front(key);
  Ue& u = ues_[key];
  u.lru = lru_.begin();
  u.first_ns = u.last_ns = ts;
  return u;
}

void Tracker::on_nas(Ue& ue, const NasMessage& m, uint64_t ts, json& line) {
  json n = {{"ciphered", m.ciphered}, {"decoded", m.plain}};
  if (m.sht >= 0) n["security_header_type"] = m.sht;
  if (m.outer_mm >= 0) n["mm"] = mm_type_name(m.outer_mm);
  if (m.sm_type) n["sm"] = sm_type_name(*m.sm_type);
  if (m.pdu_session_id) n["pdu_session_id"] = *m.pdu_session_id;
  if (m.selected_nea) {
    ue.nea = *m.selected_nea;
    n["selected_nea"] = fmt::format("NEA{}", *m.selected_nea);
  }
  if (!m.suci.empty() && opt_.hash_identities) {
    ue.subscriber = hash_identity(m.suci);
  }
  switch (m.outer_mm) {
    case 0x41: {
      int t = m.registration_type.value_or(0);
      kpis_.reg_attempt[t]++;
      ue.pending_reg_type = t;
      ue.pending_reg_ns = ts;
      n["registration_type"] = reg_type_name(t);
      break;
    }
    case 0x42:
      if (ue.pending_reg_type) {
        kpis_.reg_succ[*ue.pending_reg_type]++;
        kpis_.reg_time_sum_ns += ts >= ue.pending_reg_ns ? ts - ue.pending_reg_ns : 0;
        kpis_.reg_time_n++;
        n["outcome"] = "registration_success";
        n["duration_ms"] = static_cast<double>(ts - ue.pending_reg_ns) / 1e6;
        ue.pending_reg_type.reset();
      }
      break;
    case 0x44:
      kpis_.reg_fail++;
      n["outcome"] = "registration_reject";
      if (m.mm_cause) n["mm_cause"] = *m.mm_cause;
      ue.pending_reg_type.reset();
      break;
    case 0x4c:
      kpis_.service_req++;
      ue.pending_service = true;
      break;
    case 0x4e:
      if (ue.pending_service) kpis_.service_acc++;
      ue.pending_service = false;
      break;
    case 0x4d:
      kpis_.service_rej++;
      ue.pending_service = false;
      if (m.mm_cause) n["mm_cause"] = *m.mm_cause;
      break;
    default: break;
  }
  if (m.sm_type) {
    int psi = m.pdu_session_id.value_or(-1);
    switch (*m.sm_type) {
      case 0xc1:
        kpis_.pdu_req++;
        ue.pending_pdu_ns[psi] = ts;
        break;
      case 0xc2: {
        kpis_.pdu_succ++;
        ue.sessions.insert(psi);
        if (!m.ue_address.empty()) {
          ue.ue_addr[psi] = m.ue_address;
          n["ue_address"] = ip_str(m.ue_address);
        }
        auto it = ue.pending_pdu_ns.find(psi);
        if (it != ue.pending_pdu_ns.end()) {
          kpis_.pdu_time_sum_ns += ts >= it->second ? ts - it->second : 0;
          kpis_.pdu_time_n++;
          n["outcome"] = "pdu_session_established";
          n["duration_ms"] = static_cast<double>(ts - it->second) / 1e6;
          ue.pending_pdu_ns.erase(it);
        }
        break;
      }
      case 0xc3:
        kpis_.pdu_fail[m.sm_cause.value_or(-1)]++;
        ue.pending_pdu_ns.erase(psi);
        n["outcome"] = "pdu_session_reject";
        if (m.sm_cause) n["sm_cause"] = *m.sm_cause;
        break;
      case 0xd3:
      case 0xd4:
        ue.sessions.erase(psi);
        break;
      default: break;
    }
  }
  line["nas"].push_back(std::move(n));
}

Result<void> Tracker::add(std::span<const uint8_t> rec, json* timeline) {
  if (rec.size() < N2_EVENT_FIXED) {
    bad_["short_record"]++;
    return make_error("n2 record of {} bytes, shorter than its {}-byte header", rec.size(), N2_EVENT_FIXED);
  }
  n2_msg_event ev;
  std::memcpy(&ev, rec.data(), N2_EVENT_FIXED);
  if (ev.hdr.len != rec.size() || ev.copied > NGAP_COPY_MAX || N2_EVENT_FIXED + ev.copied != rec.size()) {
    bad_["bad_record_length"]++;
    return make_error("n2 record: len {} copied {} in a record of {} bytes", ev.hdr.len, ev.copied, rec.size());
  }
  auto msg = rec.subspan(N2_EVENT_FIXED, ev.copied);
  if (ev.hdr.kind == N2_EVENT_PFCP) return add_pfcp(ev, msg, timeline);
  messages_++;
  NgapMessage g = decode_ngap(msg);
  if (ev.copied < ev.msg_len) bad_["truncated_copy"]++;
  if (g.error != NGAP_OK && !(g.error == NGAP_E_LEN_PAST_END && ev.copied < ev.msg_len))
    bad_[ngap_error_name(g.error)]++;
  const uint64_t ts = ev.ts_ns;

  json line = {{"ts_ns", ts},
               {"ngap", {{"procedure", proc_name(g.proc)}, {"pdu_type", pdu_type_name(g.pdu_type)}}}};
  // NGAP procedures the KPIs count directly.
  const bool init = g.pdu_type == NGAP_PDU_INITIATING, succ = g.pdu_type == NGAP_PDU_SUCCESSFUL,
             fail = g.pdu_type == NGAP_PDU_UNSUCCESSFUL;
  switch (g.proc) {
    case 21: (init ? kpis_.ng_setup_req : succ ? kpis_.ng_setup_succ : kpis_.ng_setup_fail)++; break;
    case 12: (init ? kpis_.ho_prep_req : succ ? kpis_.ho_prep_succ : kpis_.ho_prep_fail)++; break;
    case 13: (init ? kpis_.ho_res_req : succ ? kpis_.ho_res_succ : kpis_.ho_res_fail)++; break;
    case 11: if (init) kpis_.ho_notify++; break;
    case 29:
      if (init) kpis_.pdu_res_setup_req++;
      else if (succ) kpis_.pdu_res_setup_succ++;
      break;
    default: break;
  }
  (void)fail;
  if (g.cause_group) line["ngap"]["cause"] = {{"group", *g.cause_group}, {"value", *g.cause_value}};

  Ue* ue = nullptr;
  std::string ue_key;
  if (g.ran_ue_id) {
    // The RAN UE NGAP ID is unique per gNB: key by the association's two
    // addresses (in a fixed order) and the ID.
    std::string a = addr_str(ev.saddr), b = addr_str(ev.daddr);
    if (b < a) std::swap(a, b);
    ue_key = fmt::format("{}|{}|{}", a, b, *g.ran_ue_id);
    ue = &ue_for(ue_key, ts);
    if (g.amf_ue_id) ue->amf_id = *g.amf_ue_id;
    ue->ran_id = *g.ran_ue_id;
    line["ue"] = {{"ran_ue_ngap_id", *g.ran_ue_id}};
    if (ue->amf_id) line["ue"]["amf_ue_ngap_id"] = *ue->amf_id;
  }
  line["nas"] = json::array();
  for (const auto& p : g.nas) {
    if (p.off + p.len > msg.size()) continue;
    auto pdu = msg.subspan(p.off, p.len);
    NasMessage plain = decode_nas(pdu, false);
    nas_.add(plain);
    if (ue && !ue->nea && !plain.tmsi.empty()) {
      // A UE known by its 5G-TMSI from an earlier association.
      ue->tmsi = plain.tmsi;
      auto it = nea_by_tmsi_.find(plain.tmsi);
      if (it != nea_by_tmsi_.end()) ue->nea = it->second;
    }
    // The NEA0 view: decipher when this UE's Security Mode Command chose NEA0.
    const bool null = ue && ue->nea && *ue->nea == 0;
    NasMessage view = null ? decode_nas(pdu, true) : plain;
    if (view.truncated) bad_["nas_pdu_cut"]++;
    // Ciphered, and no Security Mode Command of this UE seen (the capture
    // or the agent started later): never guessed, counted.
    if (plain.ciphered && !(ue && ue->nea)) ciphered_nea_unknown_++;
    nas_null_.add(view);
    if (ue) {
      on_nas(*ue, view, ts, line);
      if (!view.assigned_tmsi.empty()) ue->tmsi = view.assigned_tmsi;
      if (ue->nea && !ue->tmsi.empty()) {
        if (nea_by_tmsi_.size() >= 2 * opt_.max_ues && !nea_by_tmsi_.count(ue->tmsi)) {
          nea_by_tmsi_.clear();
          tmsi_resets_++;
          bad_["tmsi_table_reset"]++;
        }
        nea_by_tmsi_[ue->tmsi] = *ue->nea;
      }
    } else {
      json n = {{"ciphered", view.ciphered}, {"decoded", view.plain}};
      if (view.outer_mm >= 0) n["mm"] = mm_type_name(view.outer_mm);
      line["nas"].push_back(std::move(n));
    }
  }
  if (ue) {
    if (!ue->subscriber.empty()) line["subscriber"] = ue->subscriber;
    for (int s : g.pdu_session_ids) ue->sessions.insert(s);
    for (const auto& t : g.dl_tunnels) {
      auto old = ue->dl_tunnels.find(t.pdu_session_id);
      n2_end(ue_key, t.pdu_session_id, t, old == ue->dl_tunnels.end() ? nullptr : &old->second);
      ue->dl_tunnels[t.pdu_session_id] = t;
      dl_announced_++;
      line["dl_tunnels"].push_back({{"pdu_session_id", t.pdu_session_id},
                                    {"teid", fmt::format("0x{:08x}", t.teid)},
                                    {"gnb_address", ip_str(end_addr(t.address))}});
    }
    for (const auto& t : g.ul_tunnels) {
      auto old = ue->tunnels.find(t.pdu_session_id);
      n2_end(ue_key, t.pdu_session_id, t, old == ue->tunnels.end() ? nullptr : &old->second);
      ue->tunnels[t.pdu_session_id] = t;
      ul_announced_++;
      teid_[t.teid] = {ue_key, t.pdu_session_id};
      line["ul_tunnels"].push_back({{"pdu_session_id", t.pdu_session_id},
                                    {"teid", fmt::format("0x{:08x}", t.teid)},
                                    {"upf_address", ip_str(t.address)}});
    }
    // The subscriber may have become known with this message: its ends'
    // labels are recomputed.
    for (const auto& [psi, t] : ue->tunnels) dirty_.insert({t.teid, ka(end_addr(t.address))});
    for (const auto& [psi, t] : ue->dl_tunnels) dirty_.insert({t.teid, ka(end_addr(t.address))});
    ue->timeline.push_back(line);
    while (ue->timeline.size() > opt_.timeline_per_ue) {
      ue->timeline.pop_front();
      ue->timeline_dropped++;
    }
  }
  publish();
  if (timeline) *timeline = std::move(line);
  return ok();
}

void Tracker::n2_end(const std::string& ue_key, int psi, const Tunnel& t, const Tunnel* old) {
  EndKey e{t.teid, ka(end_addr(t.address))};
  if (old) {
    // The session's previous end in this direction (a new gNB TEID after a
    // service request, say) is replaced.
    EndKey o{old->teid, ka(end_addr(old->address))};
    auto it = n2_end_.find(o);
    if (o != e && it != n2_end_.end() && it->second == std::make_pair(ue_key, psi)) {
      n2_end_.erase(it);
      dirty_.insert(o);
    }
  }
  n2_end_[e] = {ue_key, psi};
  dirty_.insert(e);
}

json Tracker::end_labels(const EndKey& e) const {
  json l = json::object();
  if (auto it = n2_end_.find(e); it != n2_end_.end()) {
    if (auto u = ues_.find(it->second.first); u != ues_.end()) {
      l["pdu_session_id"] = std::to_string(it->second.second);
      if (!u->second.subscriber.empty()) l["supi_hash"] = u->second.subscriber;
    }
  }
  if (auto it = pfcp_end_.find(e); it != pfcp_end_.end()) l["seid"] = seid_str(it->second.first);
  return l;
}

void Tracker::publish() {
  if (dir_)
    for (const auto& e : dirty_) {
      json l = end_labels(e);
      if (l.empty()) {
        dir_->remove("n2", e.first, kb(e.second));
        continue;
      }
      core::SessionDirectory::Labels labels;
      for (const auto& [k, v] : l.items()) labels[k] = v.get<std::string>();
      if (!dir_->put("n2", e.first, kb(e.second), std::move(labels))) bad_["session_directory_full"]++;
    }
  dirty_.clear();
}

void Tracker::pfcp_end(const PfcpKey& k, PfcpSession& s, const PfcpTunnelEnd& t, bool replace_peer) {
  EndKey e{t.teid, ka(!t.ipv4.empty() ? t.ipv4 : t.ipv6)};
  if (e.second.empty()) return;
  if (replace_peer) {
    // An Update FAR's Outer Header Creation toward a peer replaces the
    // session's earlier end at that peer (the gNB's new DL TEID).
    for (auto it = s.outer.begin(); it != s.outer.end();) {
      if (it->second == e.second && *it != e) {
        if (auto p = pfcp_end_.find(*it); p != pfcp_end_.end() && p->second == k) pfcp_end_.erase(p);
        dirty_.insert(*it);
        s.ends.erase(*it);
        it = s.outer.erase(it);
      } else {
        ++it;
      }
    }
  }
  // An end now announced for this session leaves any older session.
  if (auto p = pfcp_end_.find(e); p != pfcp_end_.end() && p->second != k) {
    if (auto o = pfcp_.find(p->second); o != pfcp_.end()) {
      o->second.ends.erase(e);
      o->second.outer.erase(e);
    }
  }
  pfcp_end_[e] = k;
  s.ends.insert(e);
  dirty_.insert(e);
}

void Tracker::pfcp_erase(const PfcpKey& k) {
  auto it = pfcp_.find(k);
  if (it == pfcp_.end()) return;
  for (const auto& e : it->second.ends) {
    if (auto p = pfcp_end_.find(e); p != pfcp_end_.end() && p->second == k) pfcp_end_.erase(p);
    dirty_.insert(e);
  }
  if (it->second.up_seid) pfcp_up_.erase({*it->second.up_seid, it->second.up_addr});
  pfcp_.erase(it);
}

Result<void> Tracker::add_pfcp(const n2_msg_event& ev, std::span<const uint8_t> msg, json* timeline) {
  pfcp_messages_++;
  const PfcpMessage m = decode_pfcp(msg);
  if (!m.error.empty()) bad_["pfcp_" + m.error]++;
  const auto src = pkt_addr(ev.saddr), dst = pkt_addr(ev.daddr);
  json line = {{"ts_ns", ev.ts_ns}, {"kind", "pfcp"}, {"pfcp", {{"message_type", m.type}}}};
  if (m.header_seid) line["pfcp"]["seid"] = seid_str(*m.header_seid);
  if (m.fseid) line["pfcp"]["f_seid"] = seid_str(*m.fseid);
  if (m.cause) line["pfcp"]["cause"] = *m.cause;
  const bool accepted = !m.cause || *m.cause == 1;
  auto by_cp = [&](uint64_t seid) -> PfcpSession* {
    auto it = pfcp_.find({seid, dst});
    if (it == pfcp_.end()) {
      pfcp_unmatched_++;
      return nullptr;
    }
    it->second.last_ns = ev.ts_ns;
    return &it->second;
  };
  switch (m.type) {
    case 50: {  // Session Establishment Request: the SMF's F-SEID names the session
      if (!m.fseid) {
        bad_["pfcp_no_f_seid"]++;
        break;
      }
      PfcpKey k{*m.fseid, src};
      pfcp_erase(k);  // the SMF reuses a SEID only for a new session
      // Bounded: the oldest session leaves when the table is full.
      if (pfcp_.size() >= 2 * opt_.max_ues) {
        auto oldest = pfcp_.begin();
        for (auto it = pfcp_.begin(); it != pfcp_.end(); ++it)
          if (it->second.last_ns < oldest->second.last_ns) oldest = it;
        pfcp_erase(PfcpKey(oldest->first));
        pfcp_evictions_++;
      }
      PfcpSession& s = pfcp_[k];
      s.cp_seid = *m.fseid;
      s.cp_addr = src;
      s.ue_ipv4 = m.ue_ipv4;
      s.last_ns = ev.ts_ns;
      for (const auto& e : m.fteids) pfcp_end(k, s, e, false);
      for (const auto& e : m.outer) {
        pfcp_end(k, s, e, false);
        s.outer.insert({e.teid, ka(!e.ipv4.empty() ? e.ipv4 : e.ipv6)});
      }
      break;
    }
    case 51:    // Session Establishment Response: the UPF's F-SEID and chosen F-TEIDs
    case 53: {  // Session Modification Response: F-TEIDs the UPF chose (Created PDR)
      if (!m.header_seid) break;
      PfcpSession* s = by_cp(*m.header_seid);
      if (!s) break;
      PfcpKey k{s->cp_seid, s->cp_addr};
      if (m.type == 51 && !accepted) {
        line["pfcp"]["outcome"] = "rejected";
        pfcp_erase(k);
        break;
      }
      if (m.type == 51 && m.fseid) {
        s->up_seid = *m.fseid;
        s->up_addr = src;
        pfcp_up_[{*m.fseid, src}] = k;
      }
      if (accepted)
        for (const auto& e : m.fteids) pfcp_end(k, *s, e, false);
      break;
    }
    case 52: {  // Session Modification Request: Update FAR toward the gNB (DL TEID)
      if (!m.header_seid) break;
      auto up = pfcp_up_.find({*m.header_seid, dst});
      if (up == pfcp_up_.end()) {
        pfcp_unmatched_++;
        break;
      }
      PfcpKey k = up->second;
      PfcpSession& s = pfcp_.at(k);
      s.last_ns = ev.ts_ns;
      for (const auto& e : m.fteids) pfcp_end(k, s, e, false);
      for (const auto& e : m.outer) {
        pfcp_end(k, s, e, true);
        s.outer.insert({e.teid, ka(!e.ipv4.empty() ? e.ipv4 : e.ipv6)});
      }
      break;
    }
    case 55: {  // Session Deletion Response: accepted, the session and its ends are gone
      if (!m.header_seid) break;
      PfcpSession* s = by_cp(*m.header_seid);
      if (s && accepted) {
        line["pfcp"]["outcome"] = "session_deleted";
        pfcp_erase(PfcpKey(s->cp_seid, s->cp_addr));
      }
      break;
    }
    default: break;  // 54: the response says whether it happened
  }
  publish();
  if (timeline) *timeline = std::move(line);
  return ok();
}

json Tracker::nas_sections() const {
  json j = json::object();
  if (nas_.pdus) j["nas_5gs"] = {{"over_ngap", nas_.to_json()}};
  if (nas_.ciphered) j["nas_5gs_with_null_decipher_pref"] = {{"over_ngap", nas_null_.to_json()}};
  return j;
}

json Tracker::session_for_teid(uint32_t teid) const {
  auto it = teid_.find(teid);
  if (it == teid_.end()) return nullptr;
  auto u = ues_.find(it->second.first);
  if (u == ues_.end()) return nullptr;
  const int psi = it->second.second;
  json j = {{"ran_ue_ngap_id", u->second.ran_id}, {"pdu_session_id", psi}};
  if (u->second.amf_id) j["amf_ue_ngap_id"] = *u->second.amf_id;
  if (auto a = u->second.ue_addr.find(psi); a != u->second.ue_addr.end()) j["ue_address"] = ip_str(a->second);
  if (!u->second.subscriber.empty()) j["subscriber"] = u->second.subscriber;
  if (auto t = u->second.tunnels.find(psi); t != u->second.tunnels.end())
    if (auto p = pfcp_end_.find({t->second.teid, ka(end_addr(t->second.address))}); p != pfcp_end_.end())
      j["seid"] = seid_str(p->second.first);
  return j;
}

json Tracker::teid_sessions() const {
  json j = json::object();
  for (const auto& [teid, v] : teid_) {
    json l = session_for_teid(teid);
    if (!l.is_null()) j[fmt::format("0x{:08x}", teid)] = std::move(l);
  }
  return j;
}

json Tracker::join() const {
  json sessions = json::array();
  std::set<PfcpKey> joined;
  for (const auto& key : lru_) {
    const Ue& u = ues_.at(key);
    std::set<int> psis;
    for (const auto& [psi, t] : u.tunnels) psis.insert(psi);
    for (const auto& [psi, t] : u.dl_tunnels) psis.insert(psi);
    for (int psi : psis) {
      json e = {{"ran_ue_ngap_id", u.ran_id}, {"pdu_session_id", psi}};
      if (u.amf_id) e["amf_ue_ngap_id"] = *u.amf_id;
      if (!u.subscriber.empty()) e["supi_hash"] = u.subscriber;
      const PfcpSession* ps = nullptr;
      auto pf = [&](const Tunnel& t) {
        auto it = pfcp_end_.find({t.teid, ka(end_addr(t.address))});
        if (it != pfcp_end_.end() && !ps) {
          ps = &pfcp_.at(it->second);
          joined.insert(it->second);
        }
      };
      if (auto t = u.tunnels.find(psi); t != u.tunnels.end()) {
        e["ul_teid"] = fmt::format("0x{:08x}", t->second.teid);
        e["upf_address"] = ip_str(end_addr(t->second.address));
        pf(t->second);
      }
      if (auto t = u.dl_tunnels.find(psi); t != u.dl_tunnels.end()) {
        e["dl_teid"] = fmt::format("0x{:08x}", t->second.teid);
        e["gnb_address"] = ip_str(end_addr(t->second.address));
        pf(t->second);
      }
      if (auto a = u.ue_addr.find(psi); a != u.ue_addr.end()) e["ue_address"] = ip_str(a->second);
      if (ps) {
        e["seid"] = seid_str(ps->cp_seid);
        if (ps->up_seid) e["up_seid"] = seid_str(*ps->up_seid);
        if (!ps->ue_ipv4.empty()) e["pfcp_ue_address"] = ip_str(ps->ue_ipv4);
      }
      sessions.push_back(std::move(e));
    }
  }
  json ends = json::object();
  std::set<EndKey> all;
  for (const auto& [e, v] : n2_end_) all.insert(e);
  for (const auto& [e, v] : pfcp_end_) all.insert(e);
  for (const auto& e : all) ends[fmt::format("0x{:08x}@{}", e.first, ip_str(kb(e.second)))] = end_labels(e);
  return {{"sessions", sessions},
          {"tunnel_ends", ends},
          {"ul_tunnels_announced", ul_announced_},
          {"dl_tunnels_announced", dl_announced_},
          {"pfcp_messages", pfcp_messages_},
          {"pfcp_sessions", pfcp_.size()},
          {"pfcp_sessions_joined", joined.size()},
          {"pfcp_unmatched", pfcp_unmatched_},
          {"pfcp_evictions", pfcp_evictions_}};
}

json Tracker::ue_records(bool with_timeline) const {
  json arr = json::array();
  for (const auto& key : lru_) {
    const Ue& u = ues_.at(key);
    json r = {{"ran_ue_ngap_id", u.ran_id}, {"first_ns", u.first_ns}, {"last_ns", u.last_ns},
              {"pdu_sessions", u.sessions}};
    if (u.amf_id) r["amf_ue_ngap_id"] = *u.amf_id;
    if (u.nea) r["nea"] = fmt::format("NEA{}", *u.nea);
    if (!u.subscriber.empty()) r["subscriber"] = u.subscriber;
    if (u.pending_reg_type) r["pending"] = "registration";
    json sess = json::array();
    for (int psi : u.sessions) {
      json e = {{"pdu_session_id", psi}};
      if (auto t = u.tunnels.find(psi); t != u.tunnels.end()) {
        e["ul_teid"] = fmt::format("0x{:08x}", t->second.teid);
        e["upf_address"] = ip_str(t->second.address);
      }
      if (auto t = u.dl_tunnels.find(psi); t != u.dl_tunnels.end()) {
        e["dl_teid"] = fmt::format("0x{:08x}", t->second.teid);
        e["gnb_address"] = ip_str(end_addr(t->second.address));
      }
      if (auto a = u.ue_addr.find(psi); a != u.ue_addr.end()) e["ue_address"] = ip_str(a->second);
      sess.push_back(std::move(e));
    }
    r["sessions"] = std::move(sess);
    if (with_timeline) {
      r["timeline"] = json(u.timeline);
      r["timeline_dropped"] = u.timeline_dropped;
    }
    // The association the RAN UE NGAP ID belongs to (its two addresses).
    if (auto bar = key.find('|'); bar != std::string::npos)
      r["association"] = key.substr(0, bar) + "-" + key.substr(bar + 1, key.find('|', bar + 1) - bar - 1);
    arr.push_back(std::move(r));
  }
  return arr;
}

}  // namespace kagami::n2
