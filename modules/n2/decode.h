// Userspace decoders of the n2 module: the NGAP message the kernel copied
// up (every NAS-PDU in it, the UE NGAP IDs, the Cause) and NAS-5GS
// (TS 24.501: EPD, security header type, message types, the nested
// messages tshark also shows). Pure functions over bytes: no kernel, no
// allocation beyond the result, every length checked; fuzzed by
// tests/fuzz/n2_decode_fuzz.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <linux/types.h>

#include "kagami/abi/ngap.h"

namespace kagami::n2 {

// tshark's value names (value_names.h); "Unknown (N)" when it has none.
std::string proc_name(int code);
std::string mm_type_name(int type);
std::string sm_type_name(int type);
std::string sht_name(int sht);
const char* pdu_type_name(int t);  // "initiatingMessage", ...
const char* ngap_error_name(int e);

struct NasPdu {
  size_t off = 0;  // in the NGAP message
  size_t len = 0;
  int pdu_session_id = -1;  // set for a NAS-PDU inside a PDU session item
};

// A PDU session's N3 tunnel end as NGAP announces it: UL (the UPF's end,
// from the setup request transfer) or DL (the gNB's, from the setup
// response transfer).
struct Tunnel {
  int pdu_session_id = -1;
  uint32_t teid = 0;             // GTP-U TEID at `address`
  std::vector<uint8_t> address;  // transport layer address: 4, 16 or 20 (IPv4 then IPv6) octets
};
using UlTunnel = Tunnel;

struct NgapMessage {
  int pdu_type = -1;
  int proc = -1;
  std::optional<uint32_t> ran_ue_id;
  std::optional<uint64_t> amf_ue_id;
  std::vector<NasPdu> nas;          // in message order: tshark's order
  std::vector<int> pdu_session_ids; // of the PDU session resource lists
  std::vector<UlTunnel> ul_tunnels; // UL-NGU-UP-TNLInformation of the setup request transfers
  // dLQosFlowPerTNLInformation of the PDUSessionResourceSetupResponseTransfers
  // (PDUSessionResourceSetupResponse: list 75; InitialContextSetupResponse:
  // list 72). additionalDLQosFlowPerTNLInformation (dual connectivity) is
  // not read.
  std::vector<Tunnel> dl_tunnels;
  std::optional<int> cause_group;   // Cause CHOICE index (radioNetwork 0, transport 1, nas 2, protocol 3, misc 4)
  std::optional<int> cause_value;
  int error = NGAP_OK;              // enum ngap_error: where the walk stopped
};

// Walks one NGAP PDU (all of `msg`). Never reads outside `msg`.
NgapMessage decode_ngap(std::span<const uint8_t> msg);

// One NAS-5GS PDU as tshark shows it (truth.sh nas5g_add()).
struct NasMessage {
  int epd = -1;                // 0x7e 5GMM, 0x2e 5GSM
  int sht = -1;                // security header type; -1: a 5GSM message (no such field)
  bool ciphered = false;       // sht 2 or 4
  bool plain = false;          // a plain message was decoded (outer_mm or outer_sm set)
  int outer_mm = -1;
  int outer_sm = -1;
  std::vector<int> mm_all;     // every 5GMM message type in the PDU, nested ones included
  std::vector<int> sm_all;
  // Facts for per-UE records and KPIs (of the outermost plain message).
  std::optional<int> selected_nea;  // Security mode command: ciphering algorithm (0 = NEA0)
  std::optional<int> registration_type;  // Registration request: 5GS registration type value
  std::optional<int> mm_cause;      // 5GMM cause (reject messages)
  std::optional<int> sm_cause;      // 5GSM cause (of the nested or outer 5GSM message)
  std::optional<int> pdu_session_id;      // 5GSM header, or UL/DL NAS transport IE
  std::optional<int> sm_type;       // first 5GSM message type (nested or outer)
  std::optional<int> service_type;  // Service request
  std::vector<uint8_t> suci;        // 5GS mobile identity (Registration request), raw: hash it, never log it
  // AMF Set ID, AMF Pointer and 5G-TMSI (6 octets) of the 5G-GUTI or
  // 5G-S-TMSI the UE presents (Registration request, Service request), and
  // of a 5G-GUTI the network assigns (Registration accept, Configuration
  // update command): how a UE's NAS security context is found again on a
  // new NGAP UE association.
  std::vector<uint8_t> tmsi;
  std::vector<uint8_t> assigned_tmsi;
  std::vector<uint8_t> ue_address;  // PDU session establishment accept: PDU address (IPv4: 4 octets)
  bool truncated = false;           // a length ran past the PDU
};

// decipher_null: decode a ciphered message's body as plain (NEA0).
NasMessage decode_nas(std::span<const uint8_t> pdu, bool decipher_null);

}  // namespace kagami::n2
