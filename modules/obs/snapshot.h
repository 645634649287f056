// ObsSnapshot: the obs maps read into plain C++ structs (per-CPU values
// summed), shared by ObsObject::counters() (replay, tests) and ObsModule
// (metrics, API). One reader, so the JSON the replay compares with tshark and
// the metrics the agent exports can never disagree.
//
// read_snapshot() takes a function that yields a map fd by name (the skeleton
// for ObsObject, ProgramManager::map_fd for the module), so it works on any
// loaded copy of obs.bpf.o.
#pragma once

#include <linux/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <tuple>
#include <vector>
#include <string>
#include <tuple>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"
#include "modules/obs/abi.h"

namespace kagami::obs {

struct PktBytes {
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

struct TeidStats {
  uint64_t packets = 0;
  uint64_t frame_bytes = 0;
  uint64_t udp_payload_bytes = 0;
  uint64_t gtp_length_bytes = 0;
  std::array<uint64_t, OBS_DIR_MAX> packets_by_dir{};
  std::map<uint8_t, uint64_t> by_msg_type;  // packets
  std::map<uint8_t, PktBytes> by_slot;      // interface slot -> packets, frame bytes
};

struct LatencyHist {
  uint64_t count = 0;
  uint64_t sum_ns = 0;
  std::array<uint64_t, OBS_LAT_BUCKETS> buckets{};  // bucket i: [2^i, 2^(i+1)) us
};

// Transport counters: interface slot (OBS_IF_SLOTS; 0 = an interface
// the module did not configure), direction, L4 class (enum obs_l4_class).
struct IfaceKey {
  uint8_t slot = 0;
  uint8_t dir = 0;
  uint8_t l4 = 0;
  bool operator<(const IfaceKey& o) const { return std::tie(slot, dir, l4) < std::tie(o.slot, o.dir, o.l4); }
};

struct ObsSnapshot {
  std::array<std::array<uint64_t, OBS_CTR_MAX>, OBS_DIR_MAX> counters{};
  std::array<std::array<uint64_t, KG_PERR_MAX>, OBS_DIR_MAX> malformed{};
  std::map<IfaceKey, PktBytes> iface;
  std::map<uint32_t, TeidStats> teids;
  uint64_t teid_entries = 0;  // live (teid, msg type, dir) entries
  std::array<uint64_t, 256> gtpu_msg{};  // all interfaces
  std::array<std::array<uint64_t, 256>, OBS_IF_SLOTS> gtpu_msg_by_slot{};
  std::array<uint64_t, 256> gtpu_ext{};
  std::array<uint64_t, 16> gtpu_pdu_type{};
  std::array<PktBytes, OBS_QFI_SLOTS> qfi{};  // all interfaces
  std::vector<std::array<PktBytes, OBS_QFI_SLOTS>> qfi_by_slot =
      std::vector<std::array<PktBytes, OBS_QFI_SLOTS>>(OBS_IF_SLOTS);
  uint64_t frag_pending = 0;
  std::array<uint64_t, 256> pfcp_msg{};  // all interfaces
  std::array<std::array<uint64_t, 256>, OBS_IF_SLOTS> pfcp_msg_by_slot{};
  std::map<std::pair<uint8_t, uint8_t>, uint64_t> pfcp_cause;  // (msg type, cause), all interfaces
  std::map<std::tuple<uint8_t, uint8_t, uint8_t>, uint64_t> pfcp_cause_by_slot;  // (slot, type, cause)
  std::map<uint8_t, LatencyHist> pfcp_latency;                 // response type, all interfaces
  std::map<std::pair<uint8_t, uint8_t>, LatencyHist> pfcp_latency_by_slot;  // (slot, response type)
  std::array<std::array<uint64_t, OBS_SCTR_MAX>, OBS_IF_SLOTS> slot_ctr{};  // enum obs_slot_counter
  uint64_t pfcp_pending = 0;
  std::array<uint64_t, 256> sctp_chunk{};  // all interfaces
  std::array<std::array<uint64_t, 256>, OBS_IF_SLOTS> sctp_chunk_by_slot{};
  std::array<uint64_t, OBS_SCTP_PPID_SLOTS> sctp_ppid{};  // all interfaces
  std::array<std::array<uint64_t, OBS_SCTP_PPID_SLOTS>, OBS_IF_SLOTS> sctp_ppid_by_slot{};
  uint64_t sctp_tsn_entries = 0;

  // A counter summed over both directions.
  uint64_t total(obs_counter c) const { return counters[0][c] + counters[1][c]; }
  uint64_t malformed_total(kg_parse_error r) const {
    return malformed[0][r] + malformed[1][r];
  }
};

// Yields a map fd by map name (the fd stays owned by the caller's source).
using MapFdFn = std::function<Result<int>(const std::string& map)>;

Result<ObsSnapshot> read_snapshot(const MapFdFn& map_fd);

// The JSON whose keys mirror the tshark truth files (modules/obs/README.md).
nlohmann::json to_json(const ObsSnapshot& s);

// Names shared with the metrics: counters and malformed reasons as
// snake_case, and Wireshark's value strings for message types.
const char* counter_name(obs_counter c);
const char* malformed_reason_name(kg_parse_error r);
const char* l4_class_name(uint8_t cls);  // "tcp", "udp", ..., "non_ip", "other"
std::string gtpu_msg_name(uint8_t t);
std::string gtpu_ext_name(uint8_t t);
std::string pfcp_msg_name(uint8_t t);
std::string pfcp_cause_name(uint8_t c);

}  // namespace kagami::obs
