// Map reading in src/bpf/kernel.h against real maps: the batch paths
// (BPF_MAP_LOOKUP_BATCH) must report every entry exactly once with its
// value, for plain and per-CPU hashes larger than one batch, and for arrays;
// map_take and kernel_enum behave as documented.
#include <gtest/gtest.h>

#include <linux/bpf.h>

#include <cstring>
#include <map>

#include "bpf/kernel.h"
#include "support/netns.h"

namespace {

using namespace kagami;

TEST(MapRead, HashWalkReportsEveryEntryOnceAcrossBatches) {
  KAGAMI_REQUIRE_ROOT();
  for (uint32_t type : {BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_PERCPU_HASH}) {
    auto fd = bpf::map_create(type, "kg_test_walk", 4, 8, 4096);
    ASSERT_TRUE(fd) << fd.error().message;
    const bool percpu = bpf::map_is_percpu(type);
    const int cpus = percpu ? bpf::possible_cpus() : 1;
    const uint32_t n = 3000;  // several batches of 512
    for (uint32_t k = 0; k < n; k++) {
      std::vector<uint64_t> v(cpus, uint64_t{k} * 10);
      ASSERT_TRUE(bpf::map_update(fd->get(), &k, v.data()));
    }
    std::map<uint32_t, uint64_t> seen;
    auto r = bpf::map_for_each(fd->get(), 4, 8, percpu, [&](const uint8_t* kp, const uint8_t* vp) {
      uint32_t k;
      std::memcpy(&k, kp, 4);
      uint64_t sum = 0;
      for (int c = 0; c < cpus; c++) {
        uint64_t v;
        std::memcpy(&v, vp + 8 * c, 8);
        sum += v;
      }
      EXPECT_TRUE(seen.emplace(k, sum).second) << "key " << k << " reported twice, map type " << type;
    });
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, n) << type;
    ASSERT_EQ(seen.size(), n) << type;
    for (const auto& [k, v] : seen) ASSERT_EQ(v, uint64_t{k} * 10 * cpus) << type;
  }
}

// Plain values that are not a multiple of 8 bytes are packed by the batch op.
TEST(MapRead, HashWalkWithOddValueSize) {
  KAGAMI_REQUIRE_ROOT();
  auto fd = bpf::map_create(BPF_MAP_TYPE_HASH, "kg_test_odd", 4, 3, 1024);
  ASSERT_TRUE(fd) << fd.error().message;
  for (uint32_t k = 0; k < 600; k++) {
    uint8_t v[3] = {static_cast<uint8_t>(k), static_cast<uint8_t>(k >> 8), 0x5a};
    ASSERT_TRUE(bpf::map_update(fd->get(), &k, v));
  }
  size_t n = 0;
  auto r = bpf::map_for_each(fd->get(), 4, 3, false, [&](const uint8_t* kp, const uint8_t* vp) {
    uint32_t k;
    std::memcpy(&k, kp, 4);
    EXPECT_EQ(vp[0], static_cast<uint8_t>(k));
    EXPECT_EQ(vp[1], static_cast<uint8_t>(k >> 8));
    EXPECT_EQ(vp[2], 0x5a);
    n++;
  });
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(n, 600u);
}

TEST(MapRead, ArrayDumpHasEveryIndexAndCpu) {
  KAGAMI_REQUIRE_ROOT();
  for (uint32_t type : {BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY}) {
    auto fd = bpf::map_create(type, "kg_test_arr", 4, 12, 700);
    ASSERT_TRUE(fd) << fd.error().message;
    const bool percpu = bpf::map_is_percpu(type);
    const int cpus = percpu ? bpf::possible_cpus() : 1;
    for (uint32_t k = 0; k < 700; k += 7) {
      std::vector<uint8_t> v(16 * cpus, 0);  // 12-byte values, 16-byte per-CPU stride
      for (int c = 0; c < cpus; c++) std::memcpy(v.data() + 16 * c, &k, 4);
      ASSERT_TRUE(bpf::map_update(fd->get(), &k, v.data()));
    }
    auto d = bpf::map_read_array(fd->get(), 700, 12, percpu);
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->cpus, cpus);
    EXPECT_EQ(d->stride, 16u);
    for (uint32_t k = 0; k < 700; k++)
      for (int c = 0; c < cpus; c++) {
        uint32_t v;
        std::memcpy(&v, d->at(k, c), 4);
        ASSERT_EQ(v, k % 7 == 0 ? k : 0) << "index " << k << " cpu " << c;
      }
  }
}

TEST(MapRead, TakeReadsAndDeletes) {
  KAGAMI_REQUIRE_ROOT();
  auto fd = bpf::map_create(BPF_MAP_TYPE_HASH, "kg_test_take", 4, 8, 16);
  ASSERT_TRUE(fd) << fd.error().message;
  uint32_t k = 5;
  uint64_t v = 42, out = 0;
  ASSERT_TRUE(bpf::map_update(fd->get(), &k, &v));
  auto t = bpf::map_take(fd->get(), &k, &out);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_TRUE(*t);
  EXPECT_EQ(out, 42u);
  t = bpf::map_take(fd->get(), &k, &out);
  ASSERT_TRUE(t);
  EXPECT_FALSE(*t);
}

TEST(MapRead, KernelEnumFromBtf) {
  auto e = bpf::kernel_enum("bpf_map_type");
  ASSERT_TRUE(e) << e.error().message;
  bool hash = false;
  for (const auto& [v, n] : *e) hash = hash || (n == "BPF_MAP_TYPE_HASH" && v == BPF_MAP_TYPE_HASH);
  EXPECT_TRUE(hash);
  auto none = bpf::kernel_enum("kagami_no_such_enum");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("kagami_no_such_enum"), std::string::npos);
}

}  // namespace
