#include "modules/n2/decode.h"

#include <fmt/format.h>

#include "modules/n2/value_names.h"

namespace kagami::n2 {
namespace {

template <size_t N>
std::string lookup(const std::pair<int, const char*> (&table)[N], int v) {
  for (const auto& [k, name] : table)
    if (k == v) return name;
  return fmt::format("Unknown ({})", v);
}

// Aligned PER reading (X.691) over one buffer, bit by bit where NGAP
// packs fields below the octet. Every read past the end sets `bad` and
// returns 0, so a caller checks once after a group of reads.
class Aper {
 public:
  explicit Aper(std::span<const uint8_t> b, size_t byte_off = 0) : b_(b), bit_(byte_off * 8) {}
  uint32_t bits(unsigned n) {
    uint32_t v = 0;
    for (unsigned i = 0; i < n; i++) {
      if (bit_ / 8 >= b_.size()) {
        bad = true;
        return 0;
      }
      v = (v << 1) | ((b_[bit_ / 8] >> (7 - bit_ % 8)) & 1);
      bit_++;
    }
    return v;
  }
  void align() { bit_ = (bit_ + 7) & ~size_t{7}; }
  size_t octet() const { return bit_ / 8; }
  void skip_octets(size_t n) {
    if (octet() + n > b_.size()) {
      bad = true;
      bit_ = b_.size() * 8;
      return;
    }
    bit_ += n * 8;
  }
  // Unconstrained length determinant (X.691 11.9.3.6-8); -1 when fragmented.
  long length() {
    align();
    uint32_t v = bits(8);
    if (!(v & 0x80)) return v;
    if ((v & 0xc0) == 0x80) return static_cast<long>(((v & 0x3f) << 8) | bits(8));
    bad = true;
    fragmented = true;
    return -1;
  }
  bool bad = false;
  bool fragmented = false;

 private:
  std::span<const uint8_t> b_;
  size_t bit_;
};

// GTPTunnel ::= SEQUENCE { transportLayerAddress BIT STRING
// (SIZE(1..160, ...)), gTP-TEID OCTET STRING (SIZE(4)), iE-Extensions
// OPTIONAL, ... }, read from `v` positioned at the GTPTunnel: its extension
// and presence bits, the BIT STRING's extension bit and 8-bit length (a
// constrained length below 256: a bit-field, not aligned), then the
// address and the TEID, octet-aligned. False when it is not there.
bool gtp_tunnel(Aper& v, int psi, Tunnel& out) {
  v.bits(2);             // SEQUENCE extension, iE-Extensions present
  if (v.bits(1)) return false;  // BIT STRING size extension: longer than 160 bits
  uint32_t nbits = v.bits(8) + 1;  // SIZE(1..160)
  if (v.bad || nbits % 8) return false;
  v.align();
  out.pdu_session_id = psi;
  out.address.clear();
  // At most 20 octets (SIZE(..160)).
  for (uint32_t k = 0; k < nbits / 8; k++) out.address.push_back(static_cast<uint8_t>(v.bits(8)));
  v.align();
  out.teid = v.bits(32);
  return !v.bad;
}

// PDUSessionResourceSetupRequestTransfer ::= SEQUENCE { protocolIEs, ... }:
// the UL-NGU-UP-TNLInformation IE (139) is UPTransportLayerInformation
// CHOICE { gTPTunnel GTPTunnel, choice-Extensions } (not extensible: a
// 1-bit index).
void transfer_tunnel(std::span<const uint8_t> t, int psi, NgapMessage& m) {
  if (t.size() < 3) return;
  size_t count = (static_cast<size_t>(t[1]) << 8) | t[2], off = 3;
  // Bounded by NGAP_MAX_IES, as the top-level walk.
  for (size_t i = 0; i < count && i < NGAP_MAX_IES && off + 3 <= t.size(); i++) {
    uint32_t id = (static_cast<uint32_t>(t[off]) << 8) | t[off + 1];
    Aper r(t, off + 3);
    long len = r.length();
    size_t vo = r.octet();
    if (r.bad || len < 0 || vo + static_cast<size_t>(len) > t.size()) return;
    if (id == 139) {
      Aper v(t.subspan(vo, static_cast<size_t>(len)));
      if (v.bits(1) != 0) return;   // CHOICE index: not gTPTunnel
      UlTunnel u;
      if (gtp_tunnel(v, psi, u)) m.ul_tunnels.push_back(std::move(u));
      return;
    }
    off = vo + static_cast<size_t>(len);
  }
}

// PDUSessionResourceSetupResponseTransfer ::= SEQUENCE {
//   dLQosFlowPerTNLInformation QosFlowPerTNLInformation,
//   additionalDLQosFlowPerTNLInformation OPTIONAL, securityResult OPTIONAL,
//   qosFlowFailedToSetupList OPTIONAL, iE-Extensions OPTIONAL, ... }
// (a plain SEQUENCE, not an IE container: extension bit, 4 presence bits),
// QosFlowPerTNLInformation ::= SEQUENCE { uPTransportLayerInformation,
// associatedQosFlowList, iE-Extensions OPTIONAL, ... } (2 bits), then the
// UPTransportLayerInformation CHOICE index (1 bit): 8 bits before the
// GTPTunnel.
void response_transfer_tunnel(std::span<const uint8_t> t, int psi, NgapMessage& m) {
  Aper v(t);
  if (v.bits(1)) return;  // an extension addition of the transfer: not walked
  v.bits(4);
  v.bits(2);
  if (v.bits(1) != 0) return;  // CHOICE index: not gTPTunnel
  Tunnel d;
  if (gtp_tunnel(v, psi, d)) m.dl_tunnels.push_back(std::move(d));
}

// The items of PDUSessionResourceSetupListSURes (75) / ...ListCxtRes (72):
// SEQUENCE (SIZE(1..256)) OF SEQUENCE { pDUSessionID, the response
// transfer (OCTET STRING), iE-Extensions OPTIONAL, ... }.
int walk_setup_response_list(std::span<const uint8_t> v, NgapMessage& m) {
  Aper r(v);
  uint32_t count = r.bits(8) + 1;  // SIZE(1..maxnoofPDUSessions=256): one octet
  // Bounded by the list's own size constraint (256 items).
  for (uint32_t i = 0; i < count && !r.bad; i++) {
    r.align();
    bool ext = r.bits(1), has_ie_ext = r.bits(1);
    (void)ext;
    r.align();
    int psi = static_cast<int>(r.bits(8));
    if (r.bad) break;
    m.pdu_session_ids.push_back(psi);
    long t = r.length();
    if (r.bad || t < 0) break;
    if (r.octet() + static_cast<size_t>(t) > v.size()) return NGAP_E_LEN_PAST_END;
    response_transfer_tunnel(v.subspan(r.octet(), static_cast<size_t>(t)), psi, m);
    r.skip_octets(static_cast<size_t>(t));
    if (has_ie_ext) return NGAP_OK;  // item extensions: not walked; what we have stands
  }
  return r.bad ? NGAP_E_LEN_PAST_END : NGAP_OK;
}

// The items of a PDU session resource list IE: every NAS-PDU they carry
// and their PDU session IDs. `snssai`: the item has an S-NSSAI between the
// NAS-PDU and the transfer (SUReq, CxtReq; not ModReq).
int walk_session_list(std::span<const uint8_t> v, bool snssai, NgapMessage& m) {
  Aper r(v);
  uint32_t count = r.bits(8) + 1;  // SIZE(1..maxnoofPDUSessions=256): one octet
  // Bounded by the list's own size constraint (256 items).
  for (uint32_t i = 0; i < count && !r.bad; i++) {
    r.align();
    bool ext = r.bits(1), has_nas = r.bits(1), has_ie_ext = r.bits(1);
    (void)ext;
    r.align();
    int psi = static_cast<int>(r.bits(8));
    if (r.bad) break;
    m.pdu_session_ids.push_back(psi);
    if (has_nas) {
      long n = r.length();
      if (r.bad || n < 0) break;
      size_t off = r.octet();
      if (off + static_cast<size_t>(n) > v.size()) return NGAP_E_NAS_CUT;
      m.nas.push_back({static_cast<size_t>(v.data() - v.data()) + off, static_cast<size_t>(n), psi});
      r.skip_octets(static_cast<size_t>(n));
    }
    if (snssai) {
      r.bits(1);  // extension
      bool has_sd = r.bits(1), sn_ext = r.bits(1);
      r.bits(8);  // sST: SIZE(1), not aligned
      if (has_sd) {
        r.align();
        r.skip_octets(3);
      }
      if (sn_ext) return NGAP_OK;  // extensions of S-NSSAI: not walked; what we have stands
    }
    long t = r.length();  // the Transfer (OCTET STRING CONTAINING ...)
    if (r.bad || t < 0) break;
    if (snssai && r.octet() + static_cast<size_t>(t) <= v.size())
      transfer_tunnel(v.subspan(r.octet(), static_cast<size_t>(t)), psi, m);
    r.skip_octets(static_cast<size_t>(t));
    if (has_ie_ext) return NGAP_OK;
  }
  return r.bad ? NGAP_E_LEN_PAST_END : NGAP_OK;
}

}  // namespace

std::string proc_name(int code) { return lookup(names::kNgapProc, code); }
std::string mm_type_name(int t) { return lookup(names::kMmType, t); }
std::string sm_type_name(int t) { return lookup(names::kSmType, t); }
std::string sht_name(int s) { return lookup(names::kShtName, s); }

const char* pdu_type_name(int t) {
  switch (t) {
    case NGAP_PDU_INITIATING: return "initiatingMessage";
    case NGAP_PDU_SUCCESSFUL: return "successfulOutcome";
    case NGAP_PDU_UNSUCCESSFUL: return "unsuccessfulOutcome";
    default: return "unknown";
  }
}

const char* ngap_error_name(int e) {
  switch (e) {
    case NGAP_OK: return "ok";
    case NGAP_E_SHORT: return "short";
    case NGAP_E_PDU_EXTENSION: return "pdu_extension";
    case NGAP_E_LEN_PAST_END: return "aper_length_past_end";
    case NGAP_E_LEN_FRAGMENTED: return "aper_length_fragmented";
    case NGAP_E_IE_COUNT_LIES: return "ie_count_lies";
    case NGAP_E_TOO_MANY_IES: return "too_many_ies";
    case NGAP_E_NAS_CUT: return "nas_pdu_cut";
    case NGAP_E_BAD_ID: return "bad_ue_ngap_id";
    case NGAP_E_TRUNCATED_COPY: return "truncated_copy";
    default: return "unknown";
  }
}

NgapMessage decode_ngap(std::span<const uint8_t> msg) {
  NgapMessage m;
  if (msg.size() < 3) {
    m.error = NGAP_E_SHORT;
    return m;
  }
  if ((msg[0] & 0x80) || ((msg[0] >> 5) & 3) > NGAP_PDU_UNSUCCESSFUL) {
    m.error = NGAP_E_PDU_EXTENSION;
    return m;
  }
  m.pdu_type = (msg[0] >> 5) & 3;
  m.proc = msg[1];
  Aper r(msg, 3);
  long vlen = r.length();
  if (r.fragmented) {
    m.error = NGAP_E_LEN_FRAGMENTED;
    return m;
  }
  size_t vstart = r.octet();
  if (r.bad || vstart + static_cast<size_t>(vlen) > msg.size() || vlen < 3) {
    m.error = NGAP_E_LEN_PAST_END;
    return m;
  }
  const size_t end = vstart + static_cast<size_t>(vlen);
  size_t off = vstart + 1;  // extension bit of the SEQUENCE, padded
  uint32_t count = (static_cast<uint32_t>(msg[off]) << 8) | msg[off + 1];
  off += 2;
  // Bounded by NGAP_MAX_IES as in the kernel (include/kagami/abi/ngap.h).
  uint32_t i = 0;
  for (; i < count && i < NGAP_MAX_IES; i++) {
    if (off + 3 > end) {
      m.error = NGAP_E_IE_COUNT_LIES;
      return m;
    }
    uint32_t id = (static_cast<uint32_t>(msg[off]) << 8) | msg[off + 1];
    Aper ir(msg.first(end), off + 3);
    long len = ir.length();
    if (ir.fragmented) {
      m.error = NGAP_E_LEN_FRAGMENTED;
      return m;
    }
    size_t vo = ir.octet();
    if (ir.bad || vo + static_cast<size_t>(len) > end) {
      m.error = NGAP_E_LEN_PAST_END;
      return m;
    }
    auto v = msg.subspan(vo, static_cast<size_t>(len));
    if (id == NGAP_IE_NAS_PDU) {
      Aper nr(v);
      long n = nr.length();
      if (nr.bad || n < 0 || nr.octet() + static_cast<size_t>(n) > v.size()) {
        m.error = NGAP_E_NAS_CUT;
        return m;
      }
      m.nas.push_back({vo + nr.octet(), static_cast<size_t>(n), -1});
    } else if (id == NGAP_IE_RAN_UE_NGAP_ID || id == NGAP_IE_AMF_UE_NGAP_ID) {
      const bool ran = id == NGAP_IE_RAN_UE_NGAP_ID;
      size_t k = v.empty() ? 0 : (v[0] >> (ran ? 6 : 5)) + 1;
      if (v.empty() || k > (ran ? 4u : 5u) || 1 + k > v.size()) {
        m.error = NGAP_E_BAD_ID;
        return m;
      }
      uint64_t x = 0;
      for (size_t j = 0; j < k; j++) x = (x << 8) | v[1 + j];
      if (ran)
        m.ran_ue_id = static_cast<uint32_t>(x);
      else
        m.amf_ue_id = x;
    } else if (id == 15 && !v.empty()) {  // Cause: CHOICE (ext bit, 3-bit index), then the group's ENUMERATED
      Aper cr(v);
      cr.bits(1);
      int g = static_cast<int>(cr.bits(3));
      static constexpr unsigned kBits[] = {6, 1, 2, 3, 3};  // root sizes of the five groups
      if (g < 5) {
        cr.bits(1);  // the ENUMERATED's extension bit
        int val = static_cast<int>(cr.bits(kBits[g]));
        if (!cr.bad) {
          m.cause_group = g;
          m.cause_value = val;
        }
      }
    } else if (id == 75 || id == 72) {
      // PDUSessionResourceSetupListSURes (75), ...SetupListCxtRes (72):
      // the gNB's DL tunnel end of each session.
      int e = walk_setup_response_list(v, m);
      if (e != NGAP_OK) {
        m.error = e;
        return m;
      }
    } else if (id == 74 || id == 71 || id == 64) {
      // PDUSessionResourceSetupListSUReq (74), ...SetupListCxtReq (71),
      // ...ModifyListModReq (64): items may carry a NAS-PDU each.
      size_t before = m.nas.size();
      int e = walk_session_list(v, id != 64, m);
      for (size_t j = before; j < m.nas.size(); j++) m.nas[j].off += vo;
      if (e != NGAP_OK) {
        m.error = e;
        return m;
      }
    }
    off = vo + static_cast<size_t>(len);
  }
  if (i < count) m.error = NGAP_E_TOO_MANY_IES;
  else if (off != end) m.error = NGAP_E_IE_COUNT_LIES;
  return m;
}

namespace {

constexpr int kEpdMm = 0x7e;
constexpr int kEpdSm = 0x2e;

struct NasCtx {
  NasMessage& out;
  bool decipher_null = false;
  int depth = 0;
};

// The 6 octets of AMF Set ID, AMF Pointer and 5G-TMSI of a 5GS mobile
// identity (TS 24.501 9.11.3.4): 5G-GUTI (type 2, 11 octets) or 5G-S-TMSI
// (type 4, 7 octets); empty for any other type.
std::vector<uint8_t> tmsi_of(std::span<const uint8_t> id) {
  if (id.size() == 11 && (id[0] & 0x07) == 2) return {id.begin() + 5, id.end()};
  if (id.size() == 7 && (id[0] & 0x07) == 4) return {id.begin() + 1, id.end()};
  return {};
}

void decode_plain(std::span<const uint8_t> p, NasCtx& c, bool outer);

// Optional IEs of a 5GMM message from `off`: the NAS message container
// (0x71, a nested 5GMM message) and the payload container (0x7b with its
// type from 0x8-) are followed; everything else is skipped by its format
// (TS 24.501 section 9.?: IEI >= 0x80 one octet, 0x7- TLV-E, else TLV;
// `tv_fixed` lists the message's fixed-length TV exceptions as iei,len).
// `container`: follow the NAS message container. In a Registration
// request or Service request its contents are ciphered (TS 24.501 4.4.6),
// so they are decoded only under NEA0, as tshark does with its
// null-decipher preference; in a Security mode complete they are not.
void walk_optional(std::span<const uint8_t> p, size_t off, NasCtx& c,
                   std::initializer_list<std::pair<int, size_t>> tv_fixed, int payload_type,
                   bool container = true, bool outer = false) {
  // Each iteration consumes at least one octet: bounded by the PDU length.
  while (off < p.size()) {
    int iei = p[off];
    if (iei >= 0x80) {
      if ((iei & 0xf0) == 0x80) payload_type = iei & 0x0f;  // Payload container type (TV 1)
      off++;
      continue;
    }
    bool fixed = false;
    for (auto [i, n] : tv_fixed)
      if (i == iei && !fixed) {
        if (off + n > p.size()) {
          c.out.truncated = true;
          return;
        }
        if (iei == 0x12 && !c.out.pdu_session_id) c.out.pdu_session_id = p[off + 1];  // PDU session ID (TV 2)
        if (iei == 0x58 && c.depth == 1) c.out.mm_cause = p[off + 1];                   // 5GMM cause (TV 2)
        off += n;
        fixed = true;
      }
    if (fixed) continue;
    size_t len, hdr;
    if ((iei & 0xf0) == 0x70) {
      if (off + 3 > p.size()) {
        c.out.truncated = true;
        return;
      }
      len = (static_cast<size_t>(p[off + 1]) << 8) | p[off + 2];
      hdr = 3;
    } else {
      if (off + 2 > p.size()) {
        c.out.truncated = true;
        return;
      }
      len = p[off + 1];
      hdr = 2;
    }
    if (off + hdr + len > p.size()) {
      c.out.truncated = true;
      return;
    }
    auto v = p.subspan(off + hdr, len);
    if (iei == 0x71 && container) decode_plain(v, c, false);
    if (iei == 0x77 && outer) c.out.assigned_tmsi = tmsi_of(v);
    if (iei == 0x7b && payload_type == 1) decode_plain(v, c, false);
    off += hdr + len;
  }
}

void decode_mm_body(std::span<const uint8_t> p, int type, NasCtx& c, bool outer) {
  // p starts at the message type octet's successor.
  auto need = [&](size_t n) {
    if (p.size() < n) c.out.truncated = true;
    return p.size() >= n;
  };
  switch (type) {
    case 0x41: {  // Registration request: type+ngKSI, 5GS mobile identity (LV-E)
      if (!need(3)) return;
      if (outer) c.out.registration_type = p[0] & 0x07;
      size_t l = (static_cast<size_t>(p[1]) << 8) | p[2];
      if (!need(3 + l)) return;
      if (outer) {
        auto id = p.subspan(3, l);
        if (!id.empty() && (id[0] & 0x07) == 1) c.out.suci.assign(id.begin(), id.end());
        c.out.tmsi = tmsi_of(id);
      }
      walk_optional(p, 3 + l, c, {{0x52, 7}}, -1, c.decipher_null);
      return;
    }
    case 0x4c: {  // Service request: ngKSI+service type, 5G-S-TMSI (LV-E)
      if (!need(3)) return;
      if (outer) c.out.service_type = (p[0] >> 4) & 0x0f;
      size_t l = (static_cast<size_t>(p[1]) << 8) | p[2];
      if (!need(3 + l)) return;
      if (outer) c.out.tmsi = tmsi_of(p.subspan(3, l));
      walk_optional(p, 3 + l, c, {}, -1, c.decipher_null);
      return;
    }
    case 0x42: {  // Registration accept: 5GS registration result (LV), then optional IEs
      if (!need(1) || !need(1 + static_cast<size_t>(p[0]))) return;
      walk_optional(p, 1 + p[0], c, {}, -1, true, outer);
      return;
    }
    case 0x54:  // Configuration update command: optional IEs only; local time
                // zone (TV 2) and universal time and local time zone (TV 8)
      walk_optional(p, 0, c, {{0x46, 2}, {0x47, 8}}, -1, true, outer);
      return;
    case 0x5d:  // Security mode command: selected NAS security algorithms
      if (!need(1)) return;
      if (outer) c.out.selected_nea = (p[0] >> 4) & 0x0f;
      return;
    case 0x5e:  // Security mode complete: optional IEs only
      walk_optional(p, 0, c, {}, -1);
      return;
    case 0x44:  // Registration reject: 5GMM cause
    case 0x4d:  // Service reject
    case 0x58:  // Authentication reject has none; harmless
      if (type != 0x58 && need(1) && outer) c.out.mm_cause = p[0];
      return;
    case 0x67:    // UL NAS transport
    case 0x68: {  // DL NAS transport: payload container type (V, half), payload container (LV-E)
      if (!need(3)) return;
      int pt = p[0] & 0x0f;
      size_t l = (static_cast<size_t>(p[1]) << 8) | p[2];
      if (!need(3 + l)) return;
      auto v = p.subspan(3, l);
      if (pt == 1) decode_plain(v, c, false);
      // PDU session ID, old PDU session ID, 5GMM cause: TV, 2 octets.
      walk_optional(p, 3 + l, c, {{0x12, 2}, {0x59, 2}, {0x58, 2}}, pt);
      return;
    }
    default: return;
  }
}

// PDU session establishment accept (TS 24.501 8.3.2): SSC mode and PDU
// session type (1), authorized QoS rules (LV-E), session AMBR (LV), then
// optional IEs; the PDU address (0x29, TLV: PDU session type, address).
// 5GSM cause and RQ timer value are TV 2; 0x7- TLV-E; others TLV or type 1.
void pdu_address(std::span<const uint8_t> b, NasMessage& out) {
  if (b.size() < 3) return;
  size_t off = 1, l = (static_cast<size_t>(b[1]) << 8) | b[2];
  off += 2 + l;
  if (off >= b.size()) return;
  off += 1 + b[off];
  // Each iteration consumes at least one octet: bounded by the message.
  while (off < b.size()) {
    int iei = b[off];
    if (iei >= 0x80) {
      off++;
      continue;
    }
    if (iei == 0x59 || iei == 0x56) {
      off += 2;
      continue;
    }
    size_t hdr = (iei & 0xf0) == 0x70 ? 3 : 2;
    if (off + hdr > b.size()) return;
    size_t len = hdr == 3 ? (static_cast<size_t>(b[off + 1]) << 8) | b[off + 2] : b[off + 1];
    if (off + hdr + len > b.size()) return;
    if (iei == 0x29 && len == 5 && (b[off + hdr] & 0x07) == 1)
      out.ue_address.assign(b.begin() + static_cast<long>(off + hdr + 1), b.begin() + static_cast<long>(off + hdr + 5));
    off += hdr + len;
  }
}

void decode_plain(std::span<const uint8_t> p, NasCtx& c, bool outer) {
  // Nesting: a NAS message container holds a plain message that may hold a
  // payload container: depth 4 is more than TS 24.501 allows.
  if (c.depth >= 4 || p.empty()) return;
  c.depth++;
  const int epd = p[0];
  if (epd == kEpdMm) {
    if (p.size() < 3) {
      c.out.truncated = true;
    } else {
      int t = p[2];
      c.out.mm_all.push_back(t);
      if (outer) c.out.outer_mm = t;
      decode_mm_body(p.subspan(3), t, c, outer);
    }
  } else if (epd == kEpdSm) {
    if (p.size() < 4) {
      c.out.truncated = true;
    } else {
      int t = p[3];
      c.out.sm_all.push_back(t);
      if (outer) c.out.outer_sm = t;
      if (!c.out.sm_type) {
        c.out.sm_type = t;
        if (!c.out.pdu_session_id) c.out.pdu_session_id = p[1];
        // PDU session establishment reject (0xc3), release command (0xd3),
        // modification reject (0xcb)...: 5GSM cause is the first octet.
        if ((t == 0xc3 || t == 0xd3 || t == 0xcb || t == 0xc7 || t == 0xd2) && p.size() >= 5)
          c.out.sm_cause = p[4];
        if (t == 0xc2) pdu_address(p.subspan(4), c.out);
      }
    }
  }
  c.depth--;
}

}  // namespace

NasMessage decode_nas(std::span<const uint8_t> pdu, bool decipher_null) {
  NasMessage m;
  NasCtx c{m, decipher_null};
  if (pdu.empty()) {
    m.truncated = true;
    return m;
  }
  m.epd = pdu[0];
  if (m.epd == kEpdSm) {  // 5GSM: no security header of its own
    decode_plain(pdu, c, true);
    m.plain = m.outer_sm >= 0;
    return m;
  }
  if (m.epd != kEpdMm || pdu.size() < 2) {
    m.truncated = pdu.size() < 2;
    return m;
  }
  m.sht = pdu[1] & 0x0f;
  if (m.sht == 0) {
    decode_plain(pdu, c, true);
  } else {
    m.ciphered = m.sht == 2 || m.sht == 4;
    // MAC (4) and sequence number (1), then the (inner) plain message.
    if (pdu.size() < 7) {
      m.truncated = true;
    } else if (!m.ciphered || decipher_null) {
      decode_plain(pdu.subspan(7), c, true);
    }
  }
  m.plain = m.outer_mm >= 0 || m.outer_sm >= 0;
  return m;
}

}  // namespace kagami::n2
