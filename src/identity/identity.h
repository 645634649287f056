// Workload identity: which container and pod a cgroup id belongs to.
//
// BPF programs know a task or packet only by its cgroup id
// (bpf_get_current_cgroup_id, bpf_skb_cgroup_id). That id is the kernfs node
// id of the cgroup v2 directory, which on 64-bit kernels is also the
// directory's inode number (st_ino). Container runtimes encode the container
// id, and kubelet the pod UID and QoS class, in the cgroup path, so
// id -> path -> Workload needs no runtime socket and no API server. The
// Kubernetes API side (names, namespaces, labels) is layered on top later.
//
// Path layouts understood (docs/identity.md has the full table):
//   systemd driver  /kubepods.slice/kubepods-burstable.slice/
//                     kubepods-burstable-pod<uid_with_underscores>.slice/
//                     cri-containerd-<64hex>.scope | crio-<64hex>.scope | docker-<64hex>.scope
//   cgroupfs driver /kubepods/burstable/pod<uid>/<64hex>, /kubepods/pod<uid>/<64hex>
//   docker          /docker/<64hex>, /system.slice/docker-<64hex>.scope
//   podman          .../libpod-<64hex>.scope, /libpod_parent/libpod-<64hex>
//   systemd units   /system.slice/sshd.service, /user.slice/user-1000.slice/session-3.scope
//   host            /, /init.scope
// cgroup v1 paths (from /proc/<pid>/cgroup) use the same names.
//
// Thread safety: parse_* are pure functions. Resolver is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"

namespace kagami::identity {

struct Workload {
  std::string runtime;       // containerd|cri-o|docker|podman|systemd|host|"" (unknown)
  std::string container_id;  // 64 hex, "" when the cgroup is not a container's
  std::string pod_uid;       // with dashes, as the API server shows it; "" if not a pod
  std::string qos;           // guaranteed|burstable|besteffort|"" (not a pod)
  std::string cgroup_path;   // as given, relative to the cgroup root ("/..." form)
  std::string unit;          // systemd unit for non-container workloads ("sshd.service")
  bool is_pod() const { return !pod_uid.empty(); }
  bool is_container() const { return !container_id.empty(); }
  bool operator==(const Workload&) const = default;
};

// Classifies one cgroup path. Never fails: a path it does not recognise
// yields runtime "" with only cgroup_path set.
Workload parse_cgroup_path(std::string_view path);

// Classifies the content of /proc/<pid>/cgroup (cgroup v1 "12:memory:/..."
// lines, the v2 "0::/..." line, or both in hybrid mode). Picks the line that
// says the most: a pod container beats a container beats a pod beats a
// systemd unit; ties go to the v2 line.
Workload parse_proc_cgroup(std::string_view content);

// Maps cgroup ids to workloads on this node.
//
// The first resolve() walks the cgroup v2 tree once and caches id -> path.
// A miss first tries open_by_handle_at(cgroup id) (exact and O(1); needs
// CAP_DAC_READ_SEARCH) and otherwise re-walks the tree, at most once per
// rescan interval, so a flood of unknown ids cannot turn into a flood of
// tree walks. Cgroup ids are 64-bit and never reused, so a cached entry
// can be stale only in the sense that the cgroup is gone.
class Resolver {
 public:
  // cgroup_root: where cgroup v2 is mounted. If that directory is not a
  // cgroup2 mount but <root>/unified is (systemd's hybrid layout, as on
  // this project's CI machine), the unified one is used. If neither is,
  // the directory is walked as given (useful for tests on plain dirs).
  explicit Resolver(std::string cgroup_root = "/sys/fs/cgroup");

  Result<Workload> resolve(uint64_t cgroup_id);

  // The cgroup path (relative to the v2 root) of an id, without parsing.
  Result<std::string> path_of(uint64_t cgroup_id);

  // The cgroup id of a path relative to the v2 root ("/kubepods.slice/...").
  Result<uint64_t> id_of(std::string_view rel_path) const;

  // The v2 root actually in use, after hybrid-layout detection.
  const std::string& root() const { return root_; }
  bool root_is_cgroup2() const { return root_is_cgroup2_; }

  // Minimum time between two tree walks triggered by misses (default 1 s).
  void set_rescan_interval(std::chrono::milliseconds d);

  struct Stats {
    uint64_t hits = 0, misses = 0, walks = 0, handle_lookups = 0;
    size_t cached = 0;
  };
  Stats stats() const;

 private:
  Result<void> walk_locked();
  // The cached (parsed) entry for an id, refreshing on a miss.
  Result<const Workload*> lookup_locked(uint64_t cgroup_id);

  std::string root_;
  bool root_is_cgroup2_ = false;
  mutable std::mutex mu_;
  // id -> parsed workload (its cgroup_path is the path); parsed once per
  // cgroup so a hit costs a hash lookup and a copy.
  std::unordered_map<uint64_t, Workload> cache_;  // guarded by mu_
  std::chrono::steady_clock::time_point last_walk_{};  // guarded by mu_
  bool walked_ = false;                                 // guarded by mu_
  std::chrono::milliseconds rescan_interval_{1000};     // guarded by mu_
  bool handles_work_ = true;  // guarded by mu_; false after EPERM/EOPNOTSUPP
  Stats stats_;               // guarded by mu_
};

}  // namespace kagami::identity
