// The obs ABI (include/modules/obs/abi.h) as C++ compiles it must be the
// layout obs.bpf.o was compiled with: every shared struct's size and member
// offsets are compared with the object's BTF (tests/support/btf_layout.h).
#include <gtest/gtest.h>

#include <linux/types.h>

#include <bpf/libbpf.h>

#include <cstddef>
#include <cstring>

#include "modules/obs/abi.h"
#include "support/btf_layout.h"

namespace {

using kagami::test::btf_struct_layout;
using kagami::test::compare_layout;

const std::string kObj = std::string(KAGAMI_BPF_DIR) + "/obs.bpf.o";

// Cheap checks the compiler can do: no implicit padding anywhere.
static_assert(sizeof(obs_ifslot) == 8);
static_assert(sizeof(kg_replay_batch) == 8);
static_assert(sizeof(kg_replay_rec) == 16);
static_assert(sizeof(obs_pkt_bytes) == 16);
static_assert(sizeof(obs_teid_key) == 8);
static_assert(sizeof(obs_teid_value) == 32);
static_assert(sizeof(obs_frag_key) == 12);
static_assert(sizeof(obs_frag_value) == 24);
static_assert(sizeof(obs_pfcp_pending_key) == 40);
static_assert(sizeof(obs_pfcp_pending_value) == 16);
static_assert(sizeof(obs_pfcp_cause_key) == 4);
static_assert(sizeof(obs_pfcp_lat_key) == 4);
static_assert(sizeof(obs_slot_counters) == 8 * OBS_SCTR_MAX);
static_assert(sizeof(obs_latency_hist) == 8 * (3 + OBS_LAT_BUCKETS));
static_assert(sizeof(obs_sctp_tsn_key) == 16);
static_assert(sizeof(obs_counters) == 8 * OBS_CTR_MAX);
static_assert(sizeof(obs_malformed_counts) == 8 * KG_PERR_MAX);
// Append-only enums: these values are on the wire (maps, pins); moving one is
// an ABI break that must be deliberate.
static_assert(OBS_CTR_GTPU_PACKETS == 5 && OBS_CTR_PFCP_MESSAGES == 23 && OBS_CTR_MALFORMED == 36);
static_assert(KG_PERR_GTPU_TRUNCATED == 18 && KG_PERR_PFCP_TOO_MANY_MESSAGES == 30);

#define M(t, m) KAGAMI_BTF_MEMBER(t, m)
#define CHECK_LAYOUT(t, ...)                                        \
  do {                                                              \
    auto l = btf_struct_layout(kObj, #t);                           \
    ASSERT_TRUE(l) << l.error().message;                            \
    EXPECT_EQ(compare_layout(*l, sizeof(t), {__VA_ARGS__}), "");    \
  } while (0)

TEST(ObsAbi, EverySharedStructMatchesTheObjectBtf) {
  CHECK_LAYOUT(obs_counters, M(obs_counters, c));
  CHECK_LAYOUT(obs_malformed_counts, M(obs_malformed_counts, c));
  CHECK_LAYOUT(obs_ifslot, M(obs_ifslot, ifindex), M(obs_ifslot, slot));
  // kg_replay_batch/rec are read through casts of the packet pointer, so
  // clang emits no BTF for them: the static_asserts above and
  // replay_driver_test (crafted and damaged batches) hold them.
  CHECK_LAYOUT(obs_pkt_bytes, M(obs_pkt_bytes, packets), M(obs_pkt_bytes, bytes));
  CHECK_LAYOUT(obs_teid_key, M(obs_teid_key, teid), M(obs_teid_key, msg_type), M(obs_teid_key, dir),
               M(obs_teid_key, ifslot), M(obs_teid_key, pad));
  CHECK_LAYOUT(obs_teid_value, M(obs_teid_value, packets), M(obs_teid_value, frame_bytes),
               M(obs_teid_value, udp_payload_bytes), M(obs_teid_value, gtp_length_bytes));
  CHECK_LAYOUT(obs_frag_key, M(obs_frag_key, saddr), M(obs_frag_key, daddr), M(obs_frag_key, id),
               M(obs_frag_key, proto), M(obs_frag_key, pad));
  CHECK_LAYOUT(obs_frag_value, M(obs_frag_value, teid), M(obs_frag_value, gtp_length),
               M(obs_frag_value, udp_payload), M(obs_frag_value, msg_type), M(obs_frag_value, flags),
               M(obs_frag_value, n_ext), M(obs_frag_value, has_psc), M(obs_frag_value, pdu_type),
               M(obs_frag_value, qfi), M(obs_frag_value, pad), M(obs_frag_value, ext_types));
  CHECK_LAYOUT(obs_pfcp_pending_key, M(obs_pfcp_pending_key, requester), M(obs_pfcp_pending_key, responder),
               M(obs_pfcp_pending_key, seq),
               M(obs_pfcp_pending_key, pad));
  CHECK_LAYOUT(obs_pfcp_pending_value, M(obs_pfcp_pending_value, ts_ns),
               M(obs_pfcp_pending_value, msg_type), M(obs_pfcp_pending_value, pad));
  CHECK_LAYOUT(obs_pfcp_cause_key, M(obs_pfcp_cause_key, msg_type), M(obs_pfcp_cause_key, cause),
               M(obs_pfcp_cause_key, ifslot), M(obs_pfcp_cause_key, pad));
  CHECK_LAYOUT(obs_pfcp_lat_key, M(obs_pfcp_lat_key, msg_type), M(obs_pfcp_lat_key, ifslot),
               M(obs_pfcp_lat_key, pad));
  CHECK_LAYOUT(obs_slot_counters, M(obs_slot_counters, c));
  CHECK_LAYOUT(obs_latency_hist, M(obs_latency_hist, count), M(obs_latency_hist, sum_ns),
               M(obs_latency_hist, buckets), M(obs_latency_hist, pad));
  CHECK_LAYOUT(obs_sctp_tsn_key, M(obs_sctp_tsn_key, vtag), M(obs_sctp_tsn_key, tsn),
               M(obs_sctp_tsn_key, sport), M(obs_sctp_tsn_key, dport), M(obs_sctp_tsn_key, pad));
}

TEST(ObsAbi, EveryMapNameExistsAndFitsTheKernelName) {
  // Opening (not loading) needs no privileges.
  bpf_object* obj = bpf_object__open_file(kObj.c_str(), nullptr);
  ASSERT_NE(obj, nullptr) << kObj;
  for (const char* n : {OBS_MAP_COUNTERS, OBS_MAP_MALFORMED, OBS_MAP_IFACE, OBS_MAP_TEID, OBS_MAP_GTPU_MSG,
                        OBS_MAP_GTPU_EXT, OBS_MAP_GTPU_PDU_TYPE, OBS_MAP_QFI, OBS_MAP_FRAG, OBS_MAP_PFCP_MSG,
                        OBS_MAP_PFCP_CAUSE, OBS_MAP_PFCP_PENDING, OBS_MAP_PFCP_LATENCY, OBS_MAP_SCTP_CHUNK,
                        OBS_MAP_SCTP_PPID, OBS_MAP_SCTP_TSN}) {
    EXPECT_NE(bpf_object__find_map_by_name(obj, n), nullptr) << n;
    // BPF_OBJ_NAME_LEN is 16: a longer name is cut in the kernel's map info.
    EXPECT_LE(std::strlen(n), 15u) << n;
  }
  bpf_object__close(obj);
}

TEST(ObsAbi, LayoutCheckerCatchesADifference) {
  // The checker itself must fail on a mismatch, or the test above proves nothing.
  auto l = btf_struct_layout(kObj, "obs_teid_key");
  ASSERT_TRUE(l) << l.error().message;
  std::string diff = compare_layout(*l, 12, {M(obs_teid_key, teid), M(obs_teid_key, dir)});
  EXPECT_NE(diff.find("sizeof 12"), std::string::npos) << diff;
  EXPECT_NE(diff.find("5 members"), std::string::npos) << diff;
  auto missing = btf_struct_layout(kObj, "no_such_struct");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("no struct no_such_struct"), std::string::npos);
}

}  // namespace
