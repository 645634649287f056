#include "bpf/kernel.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>

namespace kagami::bpf {
namespace {

bool is_fs(const std::string& path, long magic) {
  struct statfs st{};
  return ::statfs(path.c_str(), &st) == 0 && static_cast<long>(st.f_type) == magic;
}

Result<void> mkdirs(const std::string& path) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST)
      return errno_error(errno, "mkdir {}", cur);
  }
  return ok();
}

}  // namespace

Result<void> check_privileges() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return errno_error(errno, "capget");
  auto has = [&](int cap) { return (data[cap / 32].effective >> (cap % 32)) & 1u; };
  const bool bpf = has(CAP_BPF) || has(CAP_SYS_ADMIN);
  if (!bpf || !has(CAP_NET_ADMIN))
    return Error{"needs root or CAP_BPF+CAP_NET_ADMIN (effective capabilities lack " +
                     std::string(!bpf ? "CAP_BPF" : "CAP_NET_ADMIN") + ")",
                 EPERM};
  return ok();
}

Result<void> ensure_bpffs(const std::string& path) {
  const std::string mnt = "/sys/fs/bpf";
  if (path.rfind(mnt, 0) == 0 && !is_fs(mnt, BPF_FS_MAGIC)) {
    KAGAMI_TRY(mkdirs(mnt));
    if (::mount("bpf", mnt.c_str(), "bpf", 0, "mode=0700") != 0 && errno != EBUSY)
      return errno_error(errno, "mounting bpffs at {}", mnt);
  }
  KAGAMI_TRY(mkdirs(path));
  if (!is_fs(path, BPF_FS_MAGIC)) return make_error("{} is not on a bpf filesystem", path);
  return ok();
}

Result<std::string> ensure_tracefs() {
  const std::string mnt = "/sys/kernel/tracing";
  if (is_fs(mnt, TRACEFS_MAGIC)) return mnt;
  if (is_fs("/sys/kernel/debug/tracing", TRACEFS_MAGIC)) return std::string("/sys/kernel/debug/tracing");
  if (::mount("tracefs", mnt.c_str(), "tracefs", 0, nullptr) != 0 && errno != EBUSY)
    return errno_error(errno, "mounting tracefs at {}", mnt);
  return mnt;
}

Result<Fd> enable_stats() {
  int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd < 0) return errno_error(errno, "BPF_ENABLE_STATS");
  return Fd(fd);
}

bool stats_enabled_sysctl() {
  std::ifstream f("/proc/sys/kernel/bpf_stats_enabled");
  int v = 0;
  return (f >> v) && v != 0;
}


std::string cgroup2_root() {
  std::ifstream f("/proc/mounts");
  std::string dev, mnt, type, rest;
  while (f >> dev >> mnt >> type && std::getline(f, rest))
    if (type == "cgroup2") return mnt;
  return "";
}

Result<Fd> obj_get(const std::string& path) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return errno_error(errno, "opening pin {}", path);
  return Fd(fd);
}

Result<void> obj_pin(int fd, const std::string& path) {
  if (bpf_obj_pin(fd, path.c_str()) != 0) return errno_error(errno, "pinning {}", path);
  return ok();
}

Result<Fd> dup_fd(int fd) {
  int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) return errno_error(errno, "dup fd {}", fd);
  return Fd(d);
}

bool path_exists(const std::string& path) {
  struct stat st{};
  return ::lstat(path.c_str(), &st) == 0;
}

Result<void> remove_path(const std::string& path) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? ok() : errno_error(errno, "stat {}", path);
  int rc = S_ISDIR(st.st_mode) ? ::rmdir(path.c_str()) : ::unlink(path.c_str());
  if (rc != 0 && errno != ENOENT) return errno_error(errno, "removing {}", path);
  return ok();
}

Result<void> make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return errno_error(errno, "mkdir {}", path);
  return ok();
}

Result<std::vector<std::string>> list_dir(const std::string& path) {
  std::vector<std::string> out;
  DIR* d = ::opendir(path.c_str());
  if (!d) return errno_error(errno, "listing {}", path);
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
    errno = 0;
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return errno_error(err, "listing {}", path);
  std::sort(out.begin(), out.end());
  return out;
}

std::string map_type_name(uint32_t type) {
  const char* s = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(type));
  return s ? s : "unknown";
}

std::string prog_type_name(uint32_t type) {
  const char* s = libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(type));
  return s ? s : "unknown";
}

Result<KMapInfo> map_info(int fd) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return errno_error(errno, "map info");
  KMapInfo m;
  m.id = info.id;
  m.map_type = info.type;
  m.key_size = info.key_size;
  m.value_size = info.value_size;
  m.max_entries = info.max_entries;
  m.flags = info.map_flags;
  m.name = info.name;
  m.type = map_type_name(info.type);
  return m;
}

Result<KProgInfo> prog_info(int fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return errno_error(errno, "prog info");
  KProgInfo p;
  p.id = info.id;
  p.prog_type = info.type;
  p.name = info.name;
  p.type = prog_type_name(info.type);
  p.run_cnt = info.run_cnt;
  p.run_time_ns = info.run_time_ns;
  return p;
}

Result<KLinkInfo> link_info(int fd) {
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return errno_error(errno, "link info");
  KLinkInfo l{info.id, info.prog_id, info.type, 0};
  if (info.type == BPF_LINK_TYPE_XDP) l.xdp_ifindex = info.xdp.ifindex;
  return l;
}

Result<void> map_update(int fd, const void* key, const void* value, uint64_t flags) {
  if (bpf_map_update_elem(fd, key, value, flags) != 0) return errno_error(errno, "map update");
  return ok();
}

Result<void> map_lookup(int fd, const void* key, void* value) {
  if (bpf_map_lookup_elem(fd, key, value) != 0) return errno_error(errno, "map lookup");
  return ok();
}

// The kernel's internal ENOTSUPP, which leaks to userspace from some map ops.
constexpr int kKernelENOTSUPP = 524;

int possible_cpus() {
  static const int n = libbpf_num_possible_cpus();
  return n > 0 ? n : 1;
}

Result<ArrayDump> map_read_array(int fd, uint32_t n, uint32_t value_size, bool percpu) {
  ArrayDump d;
  d.stride = (value_size + 7) & ~size_t{7};
  d.cpus = percpu ? possible_cpus() : 1;
  d.data.assign(size_t{n} * d.cpus * d.stride, 0);
  if (n == 0) return d;
  // The kernel packs plain values at value_size and per-CPU ones at
  // round_up(value_size, 8) per CPU; d.data always uses the 8-byte stride.
  const size_t elem = percpu ? d.cpus * d.stride : value_size;
  std::vector<uint32_t> keys(n);
  std::vector<uint8_t> vals(size_t{n} * elem);
  uint32_t pos = 0, done = 0;
  bool first = true;
  while (done < n) {
    uint32_t count = n - done;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err = bpf_map_lookup_batch(fd, first ? nullptr : &pos, &pos, keys.data(), vals.data(), &count, &opts);
    int e = err ? errno : 0;
    if (err && e != ENOENT) {
      if (first && (e == EINVAL || e == ENOTSUP || e == EOPNOTSUPP || e == kKernelENOTSUPP)) break;
      return errno_error(e, "map batch lookup");
    }
    first = false;
    for (uint32_t i = 0; i < count; i++) {
      if (keys[i] >= n) continue;
      std::memcpy(d.data.data() + size_t{keys[i]} * d.cpus * d.stride, vals.data() + size_t{i} * elem, elem);
    }
    done += count;
    if (e == ENOENT || count == 0) return d;
  }
  if (done >= n) return d;
  // No batch ops: key by key.
  std::vector<uint8_t> one(elem);
  for (uint32_t k = 0; k < n; k++) {
    if (bpf_map_lookup_elem(fd, &k, one.data()) != 0) {
      if (errno == ENOENT) continue;
      return errno_error(errno, "map lookup");
    }
    std::memcpy(d.data.data() + size_t{k} * d.cpus * d.stride, one.data(), one.size());
  }
  return d;
}

bool map_is_percpu(uint32_t t) {
  return t == BPF_MAP_TYPE_PERCPU_ARRAY || t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
         t == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

Result<uint64_t> map_for_each(int fd, uint32_t key_size, uint32_t value_size, bool percpu,
                              const std::function<void(const uint8_t* key, const uint8_t* value)>& each) {
  // What one lookup returns: value_size bytes, or per-CPU copies at an
  // 8-byte stride; the batch op packs values the same way.
  const size_t stride = (value_size + 7) & ~size_t{7};
  const size_t vlen = percpu ? stride * possible_cpus() : value_size;
  uint64_t entries = 0;

  // BPF_MAP_LOOKUP_BATCH: up to kBatch entries a syscall instead of two
  // syscalls an entry (get_next_key + lookup), ~30x less for a 16k-entry map
  // on a VM with PTI. The kernel walks bucket by bucket and fails with
  // ENOSPC when one bucket holds more entries than fit; that, or a kernel
  // without batch ops (before 5.6), falls back to the key-by-key walk. A
  // batch walk that fails half-way starts over key by key, so each entry is
  // still reported once.
  constexpr uint32_t kBatch = 512;
  std::vector<uint8_t> keys(size_t{kBatch} * key_size), vals(kBatch * vlen);
  std::vector<uint8_t> pos(std::max<uint32_t>(key_size, 8));
  std::vector<uint8_t> all_keys, all_vals;  // every entry read so far, packed
  bool first = true, batched = true;
  for (;;) {
    uint32_t count = kBatch;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err = bpf_map_lookup_batch(fd, first ? nullptr : pos.data(), pos.data(), keys.data(), vals.data(), &count,
                                   &opts);
    int e = err ? errno : 0;
    if (err && e != ENOENT) {
      batched = false;  // ENOSPC, no batch ops, or anything else: walk key by key
      break;
    }
    first = false;
    all_keys.insert(all_keys.end(), keys.begin(), keys.begin() + size_t{count} * key_size);
    all_vals.insert(all_vals.end(), vals.begin(), vals.begin() + count * vlen);
    entries += count;
    if (e == ENOENT || count == 0) break;
  }
  if (batched) {
    // Reported only once the walk is complete, so that a walk that falls
    // back half-way reports nothing twice.
    for (uint64_t i = 0; i < entries; i++) each(all_keys.data() + i * key_size, all_vals.data() + i * vlen);
    return entries;
  }
  entries = 0;

  std::vector<uint8_t> key(key_size), next(key_size), val(vlen);
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    key = next;
    prev = key.data();
    if (bpf_map_lookup_elem(fd, key.data(), val.data()) != 0) {
      if (errno == ENOENT) continue;
      return errno_error(errno, "map lookup");
    }
    entries++;
    each(key.data(), val.data());
  }
  if (errno != ENOENT) return errno_error(errno, "map iterate");
  return entries;
}

Result<bool> map_take(int fd, const void* key, void* value) {
  if (bpf_map_lookup_and_delete_elem(fd, key, value) == 0) return true;
  if (errno == ENOENT) return false;
  // Kernels before 5.14 cannot look up and delete a hash entry in one step.
  if (bpf_map_lookup_elem(fd, key, value) != 0) {
    if (errno == ENOENT) return false;
    return errno_error(errno, "map lookup");
  }
  if (bpf_map_delete_elem(fd, key) != 0 && errno != ENOENT) return errno_error(errno, "map delete");
  return true;
}

Result<std::vector<std::pair<int64_t, std::string>>> kernel_enum(const std::string& name) {
  struct btf* btf = btf__load_vmlinux_btf();
  if (!btf || libbpf_get_error(btf)) return make_error("kernel BTF unreadable (/sys/kernel/btf/vmlinux)");
  std::vector<std::pair<int64_t, std::string>> out;
  const int id = btf__find_by_name_kind(btf, name.c_str(), BTF_KIND_ENUM);
  if (id > 0) {
    const struct btf_type* t = btf__type_by_id(btf, id);
    const struct btf_enum* e = btf_enum(t);
    for (int i = 0; i < btf_vlen(t); i++, e++) out.emplace_back(e->val, btf__name_by_offset(btf, e->name_off));
  }
  btf__free(btf);
  if (id <= 0) return make_error("kernel BTF has no enum {}", name);
  return out;
}

Result<void> map_delete(int fd, const void* key) {
  if (bpf_map_delete_elem(fd, key) != 0) return errno_error(errno, "map delete");
  return ok();
}

Result<Fd> map_create(uint32_t map_type, const std::string& name, uint32_t key_size,
                      uint32_t value_size, uint32_t max_entries) {
  int fd = bpf_map_create(static_cast<bpf_map_type>(map_type), name.c_str(), key_size, value_size,
                          max_entries, nullptr);
  if (fd < 0) return errno_error(errno, "creating map {}", name);
  return Fd(fd);
}

size_t value_buffer_size(const KMapInfo& m) {
  if (!map_is_percpu(m.map_type)) return m.value_size;
  return ((m.value_size + 7) / 8 * 8) * static_cast<size_t>(possible_cpus());
}

Result<size_t> copy_map(int src_fd, const KMapInfo& src, int dst_fd, const KMapInfo& dst,
                        const std::string& name) {
  if (src.key_size != dst.key_size || src.value_size > dst.value_size ||
      map_is_percpu(src.map_type) != map_is_percpu(dst.map_type))
    return make_error("map {}: cannot copy {} key {} value {} into {} key {} value {}", name, src.type,
                      src.key_size, src.value_size, dst.type, dst.key_size, dst.value_size);
  const bool percpu = map_is_percpu(src.map_type);
  const int ncpu = percpu ? possible_cpus() : 1;
  const size_t sstride = percpu ? (src.value_size + 7) / 8 * 8 : src.value_size;
  const size_t dstride = percpu ? (dst.value_size + 7) / 8 * 8 : dst.value_size;
  std::vector<uint8_t> key(src.key_size), next(src.key_size);
  std::vector<uint8_t> sval(sstride * ncpu), dval(dstride * ncpu);
  const bool array = src.map_type == BPF_MAP_TYPE_ARRAY || src.map_type == BPF_MAP_TYPE_PERCPU_ARRAY;
  auto full = [&](int err, size_t copied) -> Error {
    return Error{fmt::format("map {} is full: new version holds {} entries, old one has more "
                             "(copied {} before running out)",
                             name, dst.max_entries, copied),
                 err};
  };
  if (!array) {
    // Hash maps: batched lookup/update (kernel 5.6+), 3 syscalls per 4096
    // entries instead of 3 per entry. Falls back to the walk below if the
    // kernel or map type has no batch ops.
    constexpr uint32_t kBatch = 4096;
    std::vector<uint8_t> keys(size_t{kBatch} * src.key_size), svals(kBatch * sstride * ncpu),
        dvals(kBatch * dstride * ncpu);
    std::vector<uint8_t> in(std::max<size_t>(src.key_size, 8)), out(std::max<size_t>(src.key_size, 8));
    bool first = true, batched = true;
    size_t copied = 0;
    // Bounded by the source map's entry count: each batch returns new keys.
    while (true) {
      uint32_t count = kBatch;
      LIBBPF_OPTS(bpf_map_batch_opts, bo);
      int rc = bpf_map_lookup_batch(src_fd, first ? nullptr : in.data(), out.data(), keys.data(),
                                    svals.data(), &count, &bo);
      const int err = rc ? errno : 0;
      if (rc && err != ENOENT) {
        if (first && (err == EINVAL || err == kKernelENOTSUPP || err == EOPNOTSUPP)) {
          batched = false;
          break;
        }
        return errno_error(err, "map {}: batch read after {} entries", name, copied);
      }
      first = false;
      std::fill(dvals.begin(), dvals.end(), 0);
      for (uint32_t i = 0; i < count; i++)
        for (int c = 0; c < ncpu; c++)
          std::memcpy(dvals.data() + (size_t{i} * ncpu + c) * dstride,
                      svals.data() + (size_t{i} * ncpu + c) * sstride, src.value_size);
      if (count > 0) {
        uint32_t n = count;
        LIBBPF_OPTS(bpf_map_batch_opts, uo);
        if (bpf_map_update_batch(dst_fd, keys.data(), dvals.data(), &n, &uo) != 0) {
          const int uerr = errno;
          if (uerr == E2BIG || uerr == ENOMEM || uerr == ENOSPC) return full(uerr, copied + n);
          return errno_error(uerr, "map {}: batch write after {} entries", name, copied);
        }
        copied += count;
      }
      if (err == ENOENT) break;  // that was the last batch
      in = out;
    }
    if (batched) return copied;
  }
  size_t copied = 0;
  void* prev = nullptr;
  // Bounded by the source map's entry count: get_next_key walks each key once.
  while (bpf_map_get_next_key(src_fd, prev, next.data()) == 0) {
    key = next;
    prev = key.data();
    if (bpf_map_lookup_elem(src_fd, key.data(), sval.data()) != 0) {
      if (errno == ENOENT) continue;  // deleted under us by the running program
      return errno_error(errno, "map {}: reading entry {}", name, copied);
    }
    std::fill(dval.begin(), dval.end(), 0);
    bool all_zero = true;
    for (int c = 0; c < ncpu; c++) {
      std::memcpy(dval.data() + c * dstride, sval.data() + c * sstride, src.value_size);
    }
    for (uint8_t b : sval) all_zero = all_zero && b == 0;
    if (array && all_zero) continue;  // arrays are pre-filled with zeros
    if (bpf_map_update_elem(dst_fd, key.data(), dval.data(), BPF_ANY) != 0) {
      const int err = errno;
      if (err == E2BIG || err == ENOMEM || err == ENOSPC) return full(err, copied);
      return errno_error(err, "map {}: writing entry {}", name, copied);
    }
    copied++;
  }
  return copied;
}

Result<void> link_update(int link_fd, int new_prog_fd, int old_prog_fd) {
  LIBBPF_OPTS(bpf_link_update_opts, opts);
  if (old_prog_fd >= 0) {
    opts.flags = BPF_F_REPLACE;
    opts.old_prog_fd = static_cast<uint32_t>(old_prog_fd);
  }
  if (bpf_link_update(link_fd, new_prog_fd, &opts) != 0) return errno_error(errno, "link update");
  return ok();
}

Result<void> link_detach(int link_fd) {
  if (bpf_link_detach(link_fd) != 0) return errno_error(errno, "link detach");
  return ok();
}

}  // namespace kagami::bpf
