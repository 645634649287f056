// Kernel-object operations on fds: pins, object info, map element access,
// map migration, BPF statistics and the pseudo-filesystems BPF needs.
// Thin wrappers over libbpf's bpf.h that turn -errno into Result with the
// object named, so src/core never calls libbpf itself.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "common/result.h"

namespace kagami::bpf {

// --- environment -------------------------------------------------------------

// Fails with "needs root or CAP_BPF+CAP_NET_ADMIN" when the effective
// capability set cannot load and attach programs.
Result<void> check_privileges();
// Mounts bpffs at /sys/fs/bpf (if `path` lies below it and it is not yet a
// bpffs) and creates `path`.
Result<void> ensure_bpffs(const std::string& path);
// Mounts tracefs at /sys/kernel/tracing unless it is there; returns its root.
Result<std::string> ensure_tracefs();
// Turns on run_cnt/run_time_ns accounting for as long as the fd lives
// (BPF_ENABLE_STATS). When the syscall is unavailable it reports whether the
// sysctl kernel.bpf_stats_enabled is on, returning an invalid Fd.
Result<Fd> enable_stats();
bool stats_enabled_sysctl();
// Where cgroup2 is mounted ("" if nowhere): /sys/fs/cgroup or .../unified.
std::string cgroup2_root();

// --- pins --------------------------------------------------------------------

Result<Fd> obj_get(const std::string& path);
Result<void> obj_pin(int fd, const std::string& path);
Result<Fd> dup_fd(int fd);
bool path_exists(const std::string& path);
Result<void> remove_path(const std::string& path);  // unlink a pin or rmdir; ENOENT is fine
Result<void> make_dir(const std::string& path);     // EEXIST is fine
// Sorted entry names; an error (ENOENT included) says why the directory
// could not be read.
Result<std::vector<std::string>> list_dir(const std::string& path);

// --- info --------------------------------------------------------------------

struct KMapInfo {
  uint32_t id = 0, map_type = 0, key_size = 0, value_size = 0, max_entries = 0, flags = 0;
  std::string name, type;
};
struct KProgInfo {
  uint32_t id = 0, prog_type = 0;
  std::string name, type;
  uint64_t run_cnt = 0, run_time_ns = 0;
};
struct KLinkInfo {
  uint32_t id = 0, prog_id = 0, type = 0;
  uint32_t xdp_ifindex = 0;  // XDP links: 0 once the interface is gone
};
Result<KMapInfo> map_info(int fd);
Result<KProgInfo> prog_info(int fd);
Result<KLinkInfo> link_info(int fd);
std::string map_type_name(uint32_t type);
// libbpf's name of a program type ("xdp", "sched_cls", ...), "unknown" if none.
std::string prog_type_name(uint32_t type);

// --- maps --------------------------------------------------------------------

Result<void> map_update(int fd, const void* key, const void* value, uint64_t flags = 0);
Result<void> map_lookup(int fd, const void* key, void* value);
Result<void> map_delete(int fd, const void* key);
// Creates an anonymous map (the manager's metadata record).
Result<Fd> map_create(uint32_t map_type, const std::string& name, uint32_t key_size,
                      uint32_t value_size, uint32_t max_entries);
// Bytes one lookup returns: value_size, or per-CPU slices rounded to 8 bytes.
size_t value_buffer_size(const KMapInfo& m);
// Number of possible CPUs: the number of slices of a per-CPU map value.
int possible_cpus();

// Entries [0, n) of an array map (ARRAY or PERCPU_ARRAY), read with
// BPF_MAP_LOOKUP_BATCH (one syscall per batch instead of one per key: a
// 256-entry array costs ~20 us instead of ~5 ms on a VM with PTI), or key
// by key on kernels without batch ops (before 5.6). Value of key k, CPU c
// (c = 0 for plain arrays) at data[(k * cpus + c) * stride].
struct ArrayDump {
  std::vector<uint8_t> data;
  size_t stride = 0;  // value_size rounded up to 8
  int cpus = 1;
  const uint8_t* at(uint32_t key, int cpu) const { return data.data() + (key * cpus + cpu) * stride; }
};
Result<ArrayDump> map_read_array(int fd, uint32_t n, uint32_t value_size, bool percpu);
// True for the per-CPU map types (values are cpus x stride bytes).
bool map_is_percpu(uint32_t map_type);

// Every entry of a hash map: each(key, value) with the value as one lookup
// returns it (value_size bytes, or cpus x round_up(value_size, 8) for
// per-CPU maps), read in batches
// (BPF_MAP_LOOKUP_BATCH) where the kernel can, key by key otherwise. Entries
// may come and go meanwhile: one deleted during the walk may be skipped.
// Returns the number of entries visited.
Result<uint64_t> map_for_each(int fd, uint32_t key_size, uint32_t value_size, bool percpu,
                              const std::function<void(const uint8_t* key, const uint8_t* value)>& each);
// Reads and deletes one entry, atomically where the kernel can (hash maps,
// 5.14+). false: no such key.
Result<bool> map_take(int fd, const void* key, void* value);

// The values of an enum of the running kernel, from its BTF
// ("skb_drop_reason" -> {0, "SKB_NOT_DROPPED_YET"}, ...).
Result<std::vector<std::pair<int64_t, std::string>>> kernel_enum(const std::string& name);

// Copies every entry of src into dst (same key size; dst value at least as
// large: old bytes copied, tail zeroed; per-CPU slices handled). Fails with
// "map <name> is full" when dst has no room. Returns the number copied.
Result<size_t> copy_map(int src_fd, const KMapInfo& src, int dst_fd, const KMapInfo& dst,
                        const std::string& name);

// --- links -------------------------------------------------------------------

// Atomically points a link at a new program (xdp, cgroup, sockmap links).
// Fails with EOPNOTSUPP for links that cannot be updated (perf, raw_tp).
Result<void> link_update(int link_fd, int new_prog_fd, int old_prog_fd);
// Detaches a link now, whoever else holds it (BPF_LINK_DETACH); links that
// do not support it detach when their last reference (fd or pin) goes.
Result<void> link_detach(int link_fd);

}  // namespace kagami::bpf
