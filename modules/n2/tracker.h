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
  Result<void> add(std::span<const uint8_t> record, nlohmann::json* timeline = nullptr);

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
    std::map<int, std::vector<uint8_t>> ue_addr;    // PSI -> UE IPv4 address (NAS accept)
    std::string subscriber;                  // hashed SUCI, "" if none / identities off
    std::vector<uint8_t> tmsi;               // AMF set/pointer + 5G-TMSI, once known
    std::deque<nlohmann::json> timeline;
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
  uint64_t ciphered_nea_unknown_ = 0;
};

}  // namespace kagami::n2
