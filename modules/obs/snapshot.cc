#include "modules/obs/snapshot.h"


#include <cstring>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bpf/kernel.h"
#include "bpf/map_view.h"
#include "kagami/abi/pfcp.h"

namespace kagami::obs {
namespace {

// A typed, layout-checked view of one obs map (bpf/map_view.h): an object
// built from another ABI revision is an Error naming the map.
template <typename K, typename V>
Result<bpf::MapView<K, V>> view(const MapFdFn& map_fd, const char* name) {
  auto fd = map_fd(name);
  if (!fd) return fd.error();
  return bpf::MapView<K, V>::open(*fd, name);
}

template <size_t N>
Result<void> read_u64_array(const MapFdFn& map_fd, const char* name, std::array<uint64_t, N>& out) {
  auto m = view<uint32_t, uint64_t>(map_fd, name);
  if (!m) return m.error();
  return m->for_each_index(N, [&](uint32_t k, uint64_t v) { out[k] += v; });
}

// An array of N counters per interface slot (OBS_IF_SLOTS x N entries),
// and its sum over the slots.
template <size_t N>
Result<void> read_by_slot(const MapFdFn& map_fd, const char* name,
                          std::array<std::array<uint64_t, N>, OBS_IF_SLOTS>& by_slot, std::array<uint64_t, N>& all) {
  auto m = view<uint32_t, uint64_t>(map_fd, name);
  if (!m) return m.error();
  return m->for_each_index(OBS_IF_SLOTS * N, [&](uint32_t k, uint64_t v) {
    by_slot[k / N][k % N] += v;
    all[k % N] += v;
  });
}

std::string hex2(uint8_t v) { return fmt::format("0x{:02x}", v); }

}  // namespace

Result<ObsSnapshot> read_snapshot(const MapFdFn& map_fd) {
  ObsSnapshot s;
  {
    auto m = view<uint32_t, obs_counters>(map_fd, OBS_MAP_COUNTERS);
    if (!m) return m.error();
    KAGAMI_TRY(m->for_each_index(OBS_DIR_MAX, [&](uint32_t d, const obs_counters& v) {
      for (int i = 0; i < OBS_CTR_MAX; i++) s.counters[d][i] += v.c[i];
    }));
  }
  {
    auto m = view<uint32_t, obs_malformed_counts>(map_fd, OBS_MAP_MALFORMED);
    if (!m) return m.error();
    KAGAMI_TRY(m->for_each_index(OBS_DIR_MAX, [&](uint32_t d, const obs_malformed_counts& v) {
      for (int i = 0; i < KG_PERR_MAX; i++) s.malformed[d][i] += v.c[i];
    }));
  }
  {
    auto m = view<uint32_t, obs_pkt_bytes>(map_fd, OBS_MAP_IFACE);
    if (!m) return m.error();
    std::array<PktBytes, OBS_IFACE_SLOTS> sum{};
    KAGAMI_TRY(m->for_each_index(OBS_IFACE_SLOTS, [&](uint32_t k, const obs_pkt_bytes& v) {
      sum[k].packets += v.packets;
      sum[k].bytes += v.bytes;
    }));
    for (uint32_t k = 0; k < OBS_IFACE_SLOTS; k++) {
      if (!sum[k].packets) continue;
      const uint32_t cls = k % OBS_L4_CLASSES, dir = k / OBS_L4_CLASSES % OBS_DIR_MAX;
      s.iface[IfaceKey{static_cast<uint8_t>(k / OBS_L4_CLASSES / OBS_DIR_MAX), static_cast<uint8_t>(dir),
                       static_cast<uint8_t>(cls)}] = sum[k];
    }
  }
  {
    auto m = view<obs_teid_key, obs_teid_value>(map_fd, OBS_MAP_TEID);
    if (!m) return m.error();
    auto r = m->for_each([&](const obs_teid_key& k, const obs_teid_value& v) {
          auto& t = s.teids[k.teid];
          t.packets += v.packets;
          t.frame_bytes += v.frame_bytes;
          t.udp_payload_bytes += v.udp_payload_bytes;
          t.gtp_length_bytes += v.gtp_length_bytes;
          if (k.dir < OBS_DIR_MAX) t.packets_by_dir[k.dir] += v.packets;
          auto& sl = t.by_slot[k.ifslot];
          sl.packets += v.packets;
          sl.bytes += v.frame_bytes;
          // Entries created by a completing fragment alone carry no packet.
          if (v.packets) t.by_msg_type[k.msg_type] += v.packets;
        });
    if (!r) return r.error();
    s.teid_entries = *r;
  }
  KAGAMI_TRY(read_by_slot(map_fd, OBS_MAP_GTPU_MSG, s.gtpu_msg_by_slot, s.gtpu_msg));
  KAGAMI_TRY(read_u64_array(map_fd, OBS_MAP_GTPU_EXT, s.gtpu_ext));
  KAGAMI_TRY(read_u64_array(map_fd, OBS_MAP_GTPU_PDU_TYPE, s.gtpu_pdu_type));
  {
    auto m = view<uint32_t, obs_pkt_bytes>(map_fd, OBS_MAP_QFI);
    if (!m) return m.error();
    KAGAMI_TRY(m->for_each_index(OBS_QFI_ENTRIES, [&](uint32_t k, const obs_pkt_bytes& v) {
      for (PktBytes* t : {&s.qfi[k % OBS_QFI_SLOTS], &s.qfi_by_slot[k / OBS_QFI_SLOTS][k % OBS_QFI_SLOTS]}) {
        t->packets += v.packets;
        t->bytes += v.bytes;
      }
    }));
  }
  {
    auto m = view<obs_frag_key, obs_frag_value>(map_fd, OBS_MAP_FRAG);
    if (!m) return m.error();
    auto r = m->for_each([](auto&, auto&) {});
    if (!r) return r.error();
    s.frag_pending = *r;
  }
  KAGAMI_TRY(read_by_slot(map_fd, OBS_MAP_PFCP_MSG, s.pfcp_msg_by_slot, s.pfcp_msg));
  {
    auto m = view<obs_pfcp_cause_key, uint64_t>(map_fd, OBS_MAP_PFCP_CAUSE);
    if (!m) return m.error();
    auto r = m->for_each([&](const obs_pfcp_cause_key& k, uint64_t v) {
      s.pfcp_cause[{k.msg_type, k.cause}] += v;
      s.pfcp_cause_by_slot[{k.ifslot, k.msg_type, k.cause}] += v;
    });
    if (!r) return r.error();
  }
  {
    auto m = view<obs_pfcp_lat_key, obs_latency_hist>(map_fd, OBS_MAP_PFCP_LATENCY);
    if (!m) return m.error();
    auto add = [](LatencyHist& h, const obs_latency_hist& v) {
      h.count += v.count;
      h.sum_ns += v.sum_ns;
      for (int i = 0; i < OBS_LAT_BUCKETS; i++) h.buckets[i] += v.buckets[i];
    };
    auto r = m->for_each([&](const obs_pfcp_lat_key& k, const obs_latency_hist& v) {
      add(s.pfcp_latency[k.msg_type], v);
      add(s.pfcp_latency_by_slot[{k.ifslot, k.msg_type}], v);
    });
    if (!r) return r.error();
  }
  {
    auto m = view<uint32_t, obs_slot_counters>(map_fd, OBS_MAP_SLOT_COUNTERS);
    if (!m) return m.error();
    KAGAMI_TRY(m->for_each_index(OBS_IF_SLOTS, [&](uint32_t k, const obs_slot_counters& v) {
      for (int i = 0; i < OBS_SCTR_MAX; i++) s.slot_ctr[k][i] += v.c[i];
    }));
  }
  {
    auto m = view<obs_pfcp_pending_key, obs_pfcp_pending_value>(map_fd, OBS_MAP_PFCP_PENDING);
    if (!m) return m.error();
    auto r = m->for_each([](auto&, auto&) {});
    if (!r) return r.error();
    s.pfcp_pending = *r;
  }
  KAGAMI_TRY(read_by_slot(map_fd, OBS_MAP_SCTP_CHUNK, s.sctp_chunk_by_slot, s.sctp_chunk));
  KAGAMI_TRY(read_by_slot(map_fd, OBS_MAP_SCTP_PPID, s.sctp_ppid_by_slot, s.sctp_ppid));
  {
    auto m = view<obs_sctp_tsn_key, uint8_t>(map_fd, OBS_MAP_SCTP_TSN);
    if (!m) return m.error();
    auto r = m->for_each([](auto&, auto&) {});
    if (!r) return r.error();
    s.sctp_tsn_entries = *r;
  }
  return s;
}

namespace {

nlohmann::json latency_json(const LatencyHist& h) {
  nlohmann::json b = nlohmann::json::object();
  uint64_t cum = 0;
  for (int i = 0; i < OBS_LAT_BUCKETS; i++) {
    cum += h.buckets[i];
    if (h.buckets[i]) b[fmt::format("le_{}us", uint64_t{1} << (i + 1))] = cum;
  }
  return {{"count", h.count}, {"sum_ns", h.sum_ns}, {"cumulative_buckets", b}};
}

const char* sctp_chunk_name(uint8_t t) {
  switch (t) {
    case 0: return "DATA";
    case 1: return "INIT";
    case 2: return "INIT_ACK";
    case 3: return "SACK";
    case 4: return "HEARTBEAT";
    case 5: return "HEARTBEAT_ACK";
    case 6: return "ABORT";
    case 7: return "SHUTDOWN";
    case 8: return "SHUTDOWN_ACK";
    case 9: return "ERROR";
    case 10: return "COOKIE_ECHO";
    case 11: return "COOKIE_ACK";
    case 14: return "SHUTDOWN_COMPLETE";
    case 64: return "I_DATA";
    case 192: return "FORWARD_TSN";
    default: return "";
  }
}

}  // namespace

nlohmann::json to_json(const ObsSnapshot& s) {
  using nlohmann::json;
  json j;

  // --- GTP-U: keys and formats mirror the tshark truth files ---
  json g;
  g["packets"] = s.total(OBS_CTR_GTPU_PACKETS);
  g["frame_bytes"] = s.total(OBS_CTR_GTPU_FRAME_BYTES);
  g["udp_payload_bytes"] = s.total(OBS_CTR_GTPU_UDP_PAYLOAD_BYTES);
  g["gtp_length_field_bytes"] = s.total(OBS_CTR_GTPU_LEN_FIELD_BYTES);
  g["packets_where_gtp_length_plus_8_differs_from_udp_payload"] = s.total(OBS_CTR_GTPU_LEN_MISMATCH);
  json bm = json::object();
  for (int t = 0; t < 256; t++)
    if (s.gtpu_msg[t])
      bm[hex2(t)] = {{"name", gtpu_msg_name(t)}, {"count", s.gtpu_msg[t]}};
  g["by_message_type"] = bm;
  g["with_extension_header"] = s.total(OBS_CTR_GTPU_WITH_EXT);
  g["without_extension_header"] = s.total(OBS_CTR_GTPU_WITHOUT_EXT);
  g["with_sequence_number"] = s.total(OBS_CTR_GTPU_WITH_SEQ);
  json ext = json::object();
  for (int t = 1; t < 256; t++)
    if (s.gtpu_ext[t]) ext[hex2(t)] = {{"name", gtpu_ext_name(t)}, {"count", s.gtpu_ext[t]}};
  g["extension_header_types"] = ext;
  json pt = json::object();
  for (int t = 0; t < 16; t++)
    if (s.gtpu_pdu_type[t])
      pt[std::to_string(t)] = {
          {"name", t == 0 ? "DL PDU SESSION INFORMATION" : t == 1 ? "UL PDU SESSION INFORMATION" : ""},
          {"count", s.gtpu_pdu_type[t]}};
  g["pdu_session_container_type"] = pt;
  std::array<uint64_t, 64> qfi{};
  json qfi_detail = json::object();
  for (int slot = 0; slot < OBS_QFI_SLOTS; slot++) {
    if (!s.qfi[slot].packets) continue;
    const int q = slot % 64, pdu = (slot / 64) % 2, dir = slot / 128;
    qfi[q] += s.qfi[slot].packets;
    qfi_detail[std::to_string(q)][pdu ? "ul" : "dl"][dir ? "egress" : "ingress"] = {
        {"packets", s.qfi[slot].packets}, {"frame_bytes", s.qfi[slot].bytes}};
  }
  json qj = json::object();
  for (int q = 0; q < 64; q++)
    if (qfi[q]) qj[std::to_string(q)] = qfi[q];
  g["qfi"] = qj;
  g["qfi_detail"] = qfi_detail;
  uint64_t distinct = 0;
  json bt = json::object();
  for (const auto& [teid, t] : s.teids) {
    if (!t.packets) continue;  // only a completing fragment left, its first was evicted
    distinct++;
    json tm = json::object();
    for (const auto& [mt, n] : t.by_msg_type) tm[hex2(mt)] = {{"name", gtpu_msg_name(mt)}, {"count", n}};
    bt[fmt::format("0x{:08x}", teid)] = {{"packets", t.packets},
                                         {"frame_bytes", t.frame_bytes},
                                         {"udp_payload_bytes", t.udp_payload_bytes},
                                         {"gtp_length_field_bytes", t.gtp_length_bytes},
                                         {"by_message_type", tm},
                                         {"ingress_packets", t.packets_by_dir[OBS_DIR_INGRESS]},
                                         {"egress_packets", t.packets_by_dir[OBS_DIR_EGRESS]}};
  }
  g["distinct_teids"] = distinct;
  g["by_teid"] = bt;
  g["echo_request"] = s.total(OBS_CTR_GTPU_ECHO_REQUEST);
  g["echo_response"] = s.total(OBS_CTR_GTPU_ECHO_RESPONSE);
  g["error_indication"] = s.total(OBS_CTR_GTPU_ERROR_INDICATION);
  g["end_marker"] = s.total(OBS_CTR_GTPU_END_MARKER);
  g["inner_ipv4"] = s.total(OBS_CTR_GTPU_INNER_IPV4);
  g["inner_ipv6"] = s.total(OBS_CTR_GTPU_INNER_IPV6);
  g["inner_other"] = s.total(OBS_CTR_GTPU_INNER_OTHER);
  g["fragmented_datagrams"] = s.total(OBS_CTR_GTPU_FRAG_FIRST);
  g["fragmented_datagrams_completed"] = s.total(OBS_CTR_GTPU_FRAG_COMPLETED);
  const uint64_t inserted = s.total(OBS_CTR_GTPU_TEID_NEW);
  g["teid_map"] = {{"entries", s.teid_entries},
                   {"capacity", OBS_TEID_MAX_ENTRIES},
                   {"evicted", inserted > s.teid_entries ? inserted - s.teid_entries : 0}};
  j["gtpu"] = g;

  // --- PFCP ---
  json p;
  p["messages"] = s.total(OBS_CTR_PFCP_MESSAGES);
  json pm = json::object();
  for (int t = 0; t < 256; t++)
    if (s.pfcp_msg[t]) pm[std::to_string(t)] = {{"name", pfcp_msg_name(t)}, {"count", s.pfcp_msg[t]}};
  p["by_msg_type"] = pm;
  json cm = json::object();
  for (const auto& [k, n] : s.pfcp_cause) {
    auto& e = cm[std::to_string(k.first)];
    e["msg"] = pfcp_msg_name(k.first);
    e["causes"][std::to_string(k.second)] = {{"name", pfcp_cause_name(k.second)}, {"count", n}};
  }
  p["cause_by_msg_type"] = cm;
  const uint64_t est = s.total(OBS_CTR_PFCP_SESS_EST_ACCEPTED);
  const uint64_t del = s.total(OBS_CTR_PFCP_SESS_DEL_ACCEPTED);
  // Wireshark's figure: every accepted Establishment Response it decodes,
  // ICMP-quoted ones included (the cause map has them; the gauge does not).
  auto acc = s.pfcp_cause.find({PFCP_MSG_SESSION_ESTABLISHMENT_RESPONSE, 1});
  p["session_establishment_responses_accepted"] = acc == s.pfcp_cause.end() ? 0 : acc->second;
  p["in_icmp_errors"] = s.total(OBS_CTR_PFCP_IN_ICMP);
  p["session_deletion_responses_accepted"] = del;
  // A gauge from counters: a session deleted before we started watching
  // would make it negative, so it is clamped at 0.
  p["sessions_established"] = est > del ? est - del : 0;
  p["requests"] = s.total(OBS_CTR_PFCP_REQUESTS);
  p["responses"] = s.total(OBS_CTR_PFCP_RESPONSES);
  p["responses_unmatched"] = s.total(OBS_CTR_PFCP_RESPONSES_UNMATCHED);
  p["requests_pending"] = s.pfcp_pending;
  json lat = json::object();
  for (const auto& [t, h] : s.pfcp_latency) lat[std::to_string(t)] = latency_json(h);
  p["response_latency"] = lat;
  j["pfcp"] = p;

  // --- SCTP ---
  json sc;
  sc["packets"] = s.total(OBS_CTR_SCTP_PACKETS);
  sc["chunks"] = s.total(OBS_CTR_SCTP_CHUNKS);
  sc["data_chunks"] = s.total(OBS_CTR_SCTP_DATA_CHUNKS);
  sc["data_retransmitted"] = s.total(OBS_CTR_SCTP_DATA_RETRANSMITTED);
  sc["aborts"] = s.total(OBS_CTR_SCTP_ABORTS);
  json ch = json::object();
  for (int t = 0; t < 256; t++)
    if (s.sctp_chunk[t]) ch[std::to_string(t)] = {{"name", sctp_chunk_name(t)}, {"count", s.sctp_chunk[t]}};
  sc["by_chunk_type"] = ch;
  json pp = json::object();
  for (int t = 0; t < OBS_SCTP_PPID_SLOTS; t++)
    if (s.sctp_ppid[t]) pp[t == OBS_SCTP_PPID_OTHER ? "other" : std::to_string(t)] = s.sctp_ppid[t];
  sc["data_by_ppid"] = pp;
  j["sctp"] = sc;

  // --- L2-L4 packets per interface ("packets"; the transport module is the per-pod socket view) ---
  json tr;
  tr["packets"] = s.total(OBS_CTR_PACKETS);
  tr["bytes"] = s.total(OBS_CTR_BYTES);
  tr["non_ip"] = s.total(OBS_CTR_NON_IP);
  tr["ipv4_fragments"] = s.total(OBS_CTR_IPV4_FRAGMENTS);
  tr["ipv6_fragments"] = s.total(OBS_CTR_IPV6_FRAGMENTS);
  json ifs = json::array();
  for (const auto& [k, v] : s.iface)
    ifs.push_back({{"slot", k.slot},
                   {"direction", k.dir == OBS_DIR_EGRESS ? "egress" : "ingress"},
                   {"protocol", l4_class_name(k.l4)},
                   {"packets", v.packets},
                   {"bytes", v.bytes}});
  tr["interfaces"] = ifs;
  j["packets"] = tr;

  json mal = json::object();
  for (int r = 1; r < KG_PERR_MAX; r++) {
    const uint64_t n = s.malformed_total(static_cast<kg_parse_error>(r));
    if (n) mal[malformed_reason_name(static_cast<kg_parse_error>(r))] = n;
  }
  j["malformed"] = mal;
  j["malformed_total"] = s.total(OBS_CTR_MALFORMED);

  json raw = json::object();
  for (int c = 0; c < OBS_CTR_MAX; c++) {
    const auto ctr = static_cast<obs_counter>(c);
    raw[counter_name(ctr)] = {{"ingress", s.counters[OBS_DIR_INGRESS][c]},
                              {"egress", s.counters[OBS_DIR_EGRESS][c]}};
  }
  j["counters"] = raw;
  return j;
}

}  // namespace kagami::obs
