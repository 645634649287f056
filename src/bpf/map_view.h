// Typed, layout-checked views of BPF maps, for every module's userspace:
//
//   auto m = bpf::MapView<obs_teid_key, obs_teid_value>::open(fd, OBS_MAP_TEID);
//   KAGAMI_TRY(m);
//   KAGAMI_TRY(m->for_each([&](const obs_teid_key& k, const obs_teid_value& v) { ... }));
//
// open() compares the kernel's key and value sizes with sizeof(K)/sizeof(V),
// so a map built from another ABI revision is an Error naming the map, never
// garbage counters. Reads go through the batched walks of kernel.h (one
// syscall per batch, not per key).
//
// Per-CPU maps: for_each / for_each_index call `each` once per CPU copy, so
// a caller that adds (`total += v.packets`) sums over CPUs for free;
// the *_summed forms hand over one value per key, summed with Sum (by
// default: the value as __u64 words, for counter structs made only of
// __u64 fields, which the static_assert checks as far as it can).
//
// The view borrows the fd: the caller keeps the Fd (or the manager's pin)
// alive for as long as the view is used.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "bpf/kernel.h"
#include "common/result.h"

namespace kagami::bpf {

// Adds a per-CPU copy into an accumulator, word by word.
struct SumU64Words {
  template <typename V>
  void operator()(V& acc, const V& x) const {
    static_assert(std::is_trivially_copyable_v<V> && sizeof(V) % 8 == 0,
                  "SumU64Words sums __u64 counter structs; give the view a Sum of your own");
    uint64_t a[sizeof(V) / 8], b[sizeof(V) / 8];
    std::memcpy(a, &acc, sizeof(V));
    std::memcpy(b, &x, sizeof(V));
    for (size_t i = 0; i < sizeof(V) / 8; i++) a[i] += b[i];
    std::memcpy(&acc, a, sizeof(V));
  }
};

template <typename K, typename V, typename Sum = SumU64Words>
class MapView {
  static_assert(std::is_trivially_copyable_v<K> && std::is_trivially_copyable_v<V>);

 public:
  static Result<MapView> open(int fd, std::string name) {
    if (fd < 0) return make_error("map {}: not open", name);
    auto info = map_info(fd);
    if (!info) return info.error().with_context(fmt::format("map {}: get info", name));
    if (info->key_size != sizeof(K) || info->value_size != sizeof(V))
      return make_error("map {}: key/value size {}/{}, this agent expects {}/{} (ABI mismatch)", name,
                        info->key_size, info->value_size, sizeof(K), sizeof(V));
    return MapView(fd, std::move(name), *info);
  }

  const std::string& name() const { return name_; }
  bool percpu() const { return map_is_percpu(info_.map_type); }
  uint32_t max_entries() const { return info_.max_entries; }
  int fd() const { return fd_; }

  // Hash maps: every entry, every CPU copy. Returns the entries visited.
  template <typename F>
  Result<uint64_t> for_each(F&& each) const {
    const int cpus = percpu() ? possible_cpus() : 1;
    auto r = map_for_each(fd_, sizeof(K), sizeof(V), percpu(), [&](const uint8_t* kp, const uint8_t* vp) {
      K k;
      std::memcpy(&k, kp, sizeof(K));
      for (int c = 0; c < cpus; c++) {
        V v;
        std::memcpy(&v, vp + kStride * c, sizeof(V));
        each(k, v);
      }
    });
    if (!r) return r.error().with_context("map " + name_);
    return *r;
  }

  // Hash maps: every entry once, per-CPU copies summed.
  template <typename F>
  Result<uint64_t> for_each_summed(F&& each) const {
    if (!percpu()) return for_each(each);
    const int cpus = possible_cpus();
    auto r = map_for_each(fd_, sizeof(K), sizeof(V), true, [&](const uint8_t* kp, const uint8_t* vp) {
      K k;
      V acc;
      std::memcpy(&k, kp, sizeof(K));
      std::memcpy(&acc, vp, sizeof(V));
      for (int c = 1; c < cpus; c++) {
        V v;
        std::memcpy(&v, vp + kStride * c, sizeof(V));
        Sum{}(acc, v);
      }
      each(k, acc);
    });
    if (!r) return r.error().with_context("map " + name_);
    return *r;
  }

  // Array maps: keys [0, n), every CPU copy, one batched read.
  template <typename F>
  Result<void> for_each_index(uint32_t n, F&& each) const
    requires std::is_same_v<K, uint32_t>
  {
    auto d = map_read_array(fd_, n, sizeof(V), percpu());
    if (!d) return d.error().with_context("map " + name_);
    for (uint32_t k = 0; k < n; k++)
      for (int c = 0; c < d->cpus; c++) {
        V v;
        std::memcpy(&v, d->at(k, c), sizeof(V));
        each(k, v);
      }
    return ok();
  }

  // Array maps: keys [0, n), per-CPU copies summed.
  Result<std::vector<V>> read_summed(uint32_t n) const
    requires std::is_same_v<K, uint32_t>
  {
    std::vector<V> out(n);
    std::vector<bool> seen(n, false);
    KAGAMI_TRY(for_each_index(n, [&](uint32_t k, const V& v) {
      if (!seen[k]) {
        out[k] = v;
        seen[k] = true;
      } else {
        Sum{}(out[k], v);
      }
    }));
    return out;
  }

  // One value of a plain (not per-CPU) map.
  Result<V> get(const K& key) const {
    if (percpu()) return make_error("map {}: get() on a per-CPU map; use the summed reads", name_);
    V v{};
    KAGAMI_TRY_CTX(map_lookup(fd_, &key, &v), "map " + name_);
    return v;
  }

  Result<void> put(const K& key, const V& value, uint64_t flags = 0) const {
    if (percpu()) return make_error("map {}: put() on a per-CPU map", name_);
    KAGAMI_TRY_CTX(map_update(fd_, &key, &value, flags), "map " + name_);
    return ok();
  }

 private:
  static constexpr size_t kStride = (sizeof(V) + 7) & ~size_t{7};
  MapView(int fd, std::string name, KMapInfo info) : fd_(fd), name_(std::move(name)), info_(std::move(info)) {}
  int fd_;
  std::string name_;
  KMapInfo info_;
};

template <typename V, typename Sum = SumU64Words>
using ArrayView = MapView<uint32_t, V, Sum>;

}  // namespace kagami::bpf
