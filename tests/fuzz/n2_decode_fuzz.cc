// libFuzzer target for the n2 module's userspace decoders (modules/n2):
// the NGAP APER walk, NAS-5GS in both views, the PFCP reader, and the
// Tracker (per-UE table, NEA0 state, KPIs, the 5G context join publishing
// to a SessionDirectory) fed the input as the NGAP message of a ring
// record and as the PFCP message of one. Built with ASan/UBSan (KAGAMI_FUZZ=ON, clang). Seeds: the NGAP
// messages of the shared captures (scripts/fuzz.sh extracts them with
// tshark) plus the hand-built messages in tests/fuzz/corpus/n2.
//
// Invariants checked: nothing reads outside the input (ASan); every NAS-PDU
// the walk reports lies inside the message; a record whose len agrees is
// always accepted, and one whose len lies always refused.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <linux/types.h>

#include "modules/n2/abi.h"
#include "core/session_directory.h"
#include "modules/n2/decode.h"
#include "modules/n2/pfcp.h"
#include "modules/n2/tracker.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kagami::n2;
  std::span<const uint8_t> in(data, size);
  NgapMessage g = decode_ngap(in);
  for (const auto& p : g.nas) {
    if (p.off + p.len > size) std::abort();
    auto pdu = in.subspan(p.off, p.len);
    decode_nas(pdu, false);
    decode_nas(pdu, true);
  }
  decode_nas(in, true);
  PfcpMessage pf = decode_pfcp(in);
  for (const auto& e : pf.fteids)
    if ((!e.ipv4.empty() && e.ipv4.size() != 4) || (!e.ipv6.empty() && e.ipv6.size() != 16)) std::abort();

  // The same bytes as the message of a record, twice under one UE (so the
  // NEA0 state and the KPI pairing run), into a tiny table.
  static kagami::core::SessionDirectory* dir = new kagami::core::SessionDirectory(64);
  static Tracker* t = [] {
    TrackerOptions o;
    o.max_ues = 4;
    auto* tr = new Tracker(o);
    tr->set_directory(dir);
    return tr;
  }();
  const size_t n = size > NGAP_COPY_MAX ? NGAP_COPY_MAX : size;
  std::vector<uint8_t> rec(N2_EVENT_FIXED + n);
  n2_msg_event ev{};
  ev.hdr.kind = N2_EVENT_NGAP;
  ev.hdr.len = static_cast<__u32>(rec.size());
  ev.msg_len = static_cast<__u32>(size);
  ev.copied = static_cast<__u32>(n);
  ev.ts_ns = size;
  std::memcpy(rec.data(), &ev, N2_EVENT_FIXED);
  if (n) std::memcpy(rec.data() + N2_EVENT_FIXED, data, n);
  nlohmann::json line;
  if (!t->add(rec, &line)) std::abort();
  line.dump();
  rec.push_back(0);  // len now lies
  if (t->add(rec)) std::abort();
  t->nas_sections().dump();
  t->ue_records().dump();
  t->kpis().to_json().dump();
  // The same bytes as a PFCP record, from either side (so responses find
  // the sessions requests opened).
  rec.pop_back();
  ev.hdr.kind = N2_EVENT_PFCP;
  ev.saddr[15] = size & 1;
  ev.daddr[15] = !(size & 1);
  std::memcpy(rec.data(), &ev, N2_EVENT_FIXED);
  if (!t->add(rec, &line)) std::abort();
  line.dump();
  t->join().dump();
  if (dir->size() > 64) std::abort();
  return 0;
}
