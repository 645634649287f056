// The events ABI (include/kagami/abi/events.h) and the exec ABI
// (modules/exec/abi.h) as C++ compiles them must be the layout exec.bpf.o was
// compiled with: sizes and member offsets against the object's BTF.
#include <gtest/gtest.h>

#include <linux/types.h>

#include <cstddef>

#include "modules/exec/abi.h"
#include "support/btf_layout.h"

namespace {

using kagami::test::btf_struct_layout;
using kagami::test::compare_layout;

// Both hook variants define the same records and maps.
const std::string kObjs[] = {std::string(KAGAMI_BPF_DIR) + "/exec.bpf.o",
                             std::string(KAGAMI_BPF_DIR) + "/exec_btf.bpf.o"};

static_assert(sizeof(kg_event_hdr) == 16);
static_assert(sizeof(kg_ratelimit_state) == 8);
static_assert(sizeof(exec_event) == 64 + EXEC_FILENAME_LEN);
static_assert(sizeof(exec_config) == 24);
// Append-only enums: on the wire (maps) and in dashboards (cause labels).
static_assert(KG_DROP_RING_FULL == 0 && KG_DROP_RATE_LIMIT == 1 && KG_DROP__MAX == 2);
static_assert(EXEC_CTR_SEEN == 0 && EXEC_CTR_SENT == 1 && EXEC_CTR_OUT_OF_SCOPE == 2);

#define M(t, m) KAGAMI_BTF_MEMBER(t, m)
#define CHECK_LAYOUT(t, ...)                                     \
  do {                                                           \
    auto l = btf_struct_layout(obj, #t);                         \
    ASSERT_TRUE(l) << l.error().message;                         \
    EXPECT_EQ(compare_layout(*l, sizeof(t), {__VA_ARGS__}), ""); \
  } while (0)

TEST(ExecAbi, EverySharedStructMatchesTheObjectBtf) {
  for (const auto& obj : kObjs) {
  SCOPED_TRACE(obj);
  CHECK_LAYOUT(kg_event_hdr, M(kg_event_hdr, kind), M(kg_event_hdr, flags), M(kg_event_hdr, len),
               M(kg_event_hdr, mono_ns));
  CHECK_LAYOUT(kg_ratelimit_state, M(kg_ratelimit_state, tat_ns));
  CHECK_LAYOUT(exec_event, M(exec_event, hdr), M(exec_event, pid), M(exec_event, tgid), M(exec_event, ppid),
               M(exec_event, uid), M(exec_event, gid), M(exec_event, filename_len), M(exec_event, cgroup_id),
               M(exec_event, comm), M(exec_event, filename));
  CHECK_LAYOUT(exec_config, M(exec_config, rate), M(exec_config, burst), M(exec_config, scope),
               M(exec_config, pad));
  }
}

}  // namespace
