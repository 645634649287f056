// Tracker: the userspace half of the n2 module. It takes the NGAP messages
// the kernel copied up (struct n2_msg_event), decodes their NAS-5GS, and
// keeps
//   - the tshark-shaped NAS counts (`nas_5gs.over_ngap`, and the
//     `nas_5gs_with_null_decipher_pref` view, where a UE whose Security
//     Mode Command selected NEA0 has its later "ciphered" messages decoded);
//   - per-UE records keyed by (SCTP association, RAN UE NGAP ID), bounded
//     with counted evictions, with a forensics timeline as JSON lines;
//   - the TS 28.552 KPIs (docs/kpis.md).
// Subscriber identities never leave in the clear: the SUCI/SUPI octets are
// hashed with a per-node key (SipHash-2-4), or left out.
//
// Not thread-safe: one owner feeds it (the replay run, or the agent's event
// loop) and readers take the module's lock.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <set>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <linux/types.h>
#include <nlohmann/json.hpp>

#include "common/result.h"
#include "modules/n2/abi.h"
#include "modules/n2/decode.h"
#include "modules/n2/pfcp.h"

namespace kagami::core {
class SessionDirectory;
}

namespace kagami::n2 {

// One tshark nas5g_summary() accumulator (../shared/pcaps/truth.sh).
struct NasCounts {
  uint64_t pdus = 0, no_security_header_5gsm = 0, ciphered = 0, encrypted_undecoded = 0;
  std::map<int, uint64_t> sht, outer_mm, outer_sm, mm_all, sm_all;
  void add(const NasMessage& m);
  nlohmann::json to_json() const;
};

struct Kpis {
  std::map<int, uint64_t> reg_attempt, reg_succ;  // by 5GS registration type value
  uint64_t reg_fail = 0;
  uint64_t reg_time_sum_ns = 0, reg_time_n = 0;
  uint64_t pdu_req = 0, pdu_succ = 0;
  std::map<int, uint64_t> pdu_fail;  // by 5GSM cause
  uint64_t pdu_time_sum_ns = 0, pdu_time_n = 0;
  uint64_t service_req = 0, service_acc = 0, service_rej = 0;
  uint64_t ng_setup_req = 0, ng_setup_succ = 0, ng_setup_fail = 0;
  uint64_t ho_prep_req = 0, ho_prep_succ = 0, ho_prep_fail = 0, ho_res_req = 0, ho_res_succ = 0,
           ho_res_fail = 0, ho_notify = 0;
  uint64_t pdu_res_setup_req = 0, pdu_res_setup_succ = 0;
  nlohmann::json to_json() const;
};

struct TrackerOptions {
  size_t max_ues = 65536;            // per-UE records kept; the oldest is evicted past this
  size_t timeline_per_ue = 64;       // entries kept per UE record
  bool hash_identities = true;       // false: identities are left out entirely
  uint64_t key[2] = {0, 0};          // the per-node SipHash key
};

class Tracker {
 public:
  explicit Tracker(TrackerOptions opt = {});
  // One record from the ring; an Error names what is wrong with it (too
  // short, len disagreeing with the record). `timeline` gets the JSON line
  // of this message when non-null.
  // A PFCP record (kind N2_EVENT_PFCP) goes to the 5G context join.
  Result<void> add(std::span<const uint8_t> record, nlohmann::json* timeline = nullptr);

  // The 5G context join, kept current: every GTP-U tunnel end NGAP
  // (UL from the setup request, DL from the setup response) or PFCP
  // (F-TEIDs, Outer Header Creation) announced, with the session labels
  // obs's per-TEID series carry: `pdu_session_id` and `supi_hash` (n2's
  // `subscriber`) from NGAP/NAS, `seid` (the SMF's F-SEID of the PFCP
  // session, 0x%016x) from PFCP. Published to `dir` (owner "n2") whenever
  // they change; withdrawn when the PFCP session is deleted, the tunnel end
  // is replaced or the UE record is evicted.
  void set_directory(core::SessionDirectory* dir) { dir_ = dir; }
  // Every joined PDU session: {"sessions": [...], "pfcp_sessions": n, ...}.
  nlohmann::json join() const;
  uint64_t pfcp_messages() const { return pfcp_messages_; }

  const NasCounts& nas() const { return nas_; }
  const NasCounts& nas_null() const { return nas_null_; }
  const Kpis& kpis() const { return kpis_; }
  uint64_t messages() const { return messages_; }
  uint64_t ues() const { return ues_.size(); }
  uint64_t evictions() const { return evictions_; }
  // Ciphered NAS of UEs whose ciphering algorithm was never seen.
  uint64_t ciphered_nea_unknown() const { return ciphered_nea_unknown_; }
  const std::map<std::string, uint64_t>& bad() const { return bad_; }
  // Sections for `kagami replay --json` and the API.
  nlohmann::json nas_sections() const;
  // Per-UE records, most recently seen first; with each UE's timeline (the
  // last timeline_per_ue messages, oldest first) when asked.
  nlohmann::json ue_records(bool with_timeline = false) const;
  // The 5G context join, N2 side: the UE and PDU session behind an UL
  // GTP-U TEID (from PDUSessionResourceSetupRequest), with the UE address
  // when the NAS accept was readable; null when unknown. The label obs's
  // per-TEID series could carry (not wired into obs yet: docs/n2.md).
  nlohmann::json session_for_teid(uint32_t teid) const;
  // Every known UL TEID ("0x%08x") with session_for_teid()'s label.
  nlohmann::json teid_sessions() const;
  std::string hash_identity(std::span<const uint8_t> id) const;

 private:
  struct Ue {
    uint32_t ran_id = 0;
    std::optional<uint64_t> amf_id;
    uint64_t first_ns = 0, last_ns = 0;
    std::optional<int> nea;                  // from the Security Mode Command
    std::optional<int> pending_reg_type;     // a Registration request waits for its outcome
    uint64_t pending_reg_ns = 0;
    std::map<int, uint64_t> pending_pdu_ns;  // PSI -> request time
    bool pending_service = false;
    std::set<int> sessions;
    std::map<int, UlTunnel> tunnels;                // PSI -> UL tunnel (NGAP setup request)
    std::map<int, Tunnel> dl_tunnels;               // PSI -> DL tunnel (NGAP setup response)
    std::map<int, std::vector<uint8_t>> ue_addr;    // PSI -> UE IPv4 address (NAS accept)
    std::string subscriber;                  // hashed SUCI, "" if none / identities off
    std::vector<uint8_t> tmsi;               // AMF set/pointer + 5G-TMSI, once known
    std::deque<nlohmann::json> timeline;
    uint64_t timeline_dropped = 0;           // oldest entries dropped past timeline_per_ue
    std::list<std::string>::iterator lru;
  };
  Ue& ue_for(const std::string& key, uint64_t ts);
  void on_nas(Ue& ue, const NasMessage& m, uint64_t ts, nlohmann::json& line);

  TrackerOptions opt_;
  NasCounts nas_, nas_null_;
  Kpis kpis_;
  uint64_t messages_ = 0, evictions_ = 0;
  std::map<std::string, uint64_t> bad_;
  std::unordered_map<std::string, Ue> ues_;
  std::list<std::string> lru_;  // front: most recently seen
  // NAS security contexts outlive NGAP UE associations: the ciphering
  // algorithm last selected for a 5G-TMSI (AMF set/pointer + TMSI), so a UE
  // coming back with a Service request on a new association is known.
  // Bounded like the UE table (cleared past 2 x max_ues, counted).
  std::map<std::vector<uint8_t>, int> nea_by_tmsi_;
  std::unordered_map<uint32_t, std::pair<std::string, int>> teid_;  // UL TEID -> (UE key, PSI); bounded with the UEs
  uint64_t tmsi_resets_ = 0;

  // --- the 5G context join ---
  // A tunnel end: TEID and its IPv4 (4 octets) or, without one, IPv6 address.
  // Addresses as byte strings in keys (GCC 12's C++20 vector<=> warns).
  using EndKey = std::pair<uint32_t, std::string>;
  using PfcpKey = std::pair<uint64_t, std::string>;  // (SEID, the node that chose it)
  struct PfcpSession {
    uint64_t cp_seid = 0;
    std::string cp_addr;
    std::optional<uint64_t> up_seid;
    std::string up_addr;
    std::vector<uint8_t> ue_ipv4;
    std::set<EndKey> ends;   // every tunnel end of the session
    std::set<EndKey> outer;  // ... of them from Outer Header Creation (the peers' ends)
    uint64_t last_ns = 0;
  };
  Result<void> add_pfcp(const n2_msg_event& ev, std::span<const uint8_t> msg, nlohmann::json* timeline);
  void pfcp_end(const PfcpKey& k, PfcpSession& s, const PfcpTunnelEnd& e, bool replace_peer);
  void pfcp_erase(const PfcpKey& k);
  void n2_end(const std::string& ue_key, int psi, const Tunnel& t, const Tunnel* old);
  void publish();
  nlohmann::json end_labels(const EndKey& e) const;
  core::SessionDirectory* dir_ = nullptr;
  std::map<PfcpKey, PfcpSession> pfcp_;       // by (CP F-SEID, SMF address); bounded by 2 x max_ues
  std::map<PfcpKey, PfcpKey> pfcp_up_;        // (UP F-SEID, UPF address) -> the session's key
  std::map<EndKey, PfcpKey> pfcp_end_;        // tunnel end -> PFCP session
  std::map<EndKey, std::pair<std::string, int>> n2_end_;  // tunnel end -> (UE key, PSI)
  std::set<EndKey> dirty_;                    // ends whose labels may have changed since publish()
  uint64_t pfcp_messages_ = 0, pfcp_unmatched_ = 0, pfcp_evictions_ = 0;
  uint64_t ul_announced_ = 0, dl_announced_ = 0;  // tunnel ends NGAP announced
  uint64_t ciphered_nea_unknown_ = 0;
};

}  // namespace kagami::n2
