#include "identity/identity.h"

#include "common/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "common/fd.h"

namespace kagami::identity {
namespace {

bool is_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  return !s.empty();
}

// Runtimes name containers by a 64-hex id (sha256 of the config); shorter
// hex is an abbreviation no runtime writes into cgroup names.
bool is_container_id(std::string_view s) { return s.size() == 64 && is_hex(s); }

bool consume_prefix(std::string_view& s, std::string_view p) {
  if (s.substr(0, p.size()) != p) return false;
  s.remove_prefix(p.size());
  return true;
}

bool consume_suffix(std::string_view& s, std::string_view p) {
  if (s.size() < p.size() || s.substr(s.size() - p.size()) != p) return false;
  s.remove_suffix(p.size());
  return true;
}

bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// A pod UID as kubelet writes it into a cgroup name: the API server's UUID
// (8-4-4-4-12 hex) with '-' turned into '_' by the systemd driver (systemd
// reserves '-' for slice nesting), or 32 plain hex for static pods, whose UID
// is an md5 of the manifest. Returns the UID with dashes, or "".
std::string pod_uid_from(std::string_view s) {
  std::string uid(s);
  for (char& c : uid)
    if (c == '_') c = '-';
  if (uid.size() == 32) return is_hex(uid) ? uid : std::string{};
  if (uid.size() != 36) return {};
  for (size_t i = 0; i < uid.size(); ++i) {
    bool dash_pos = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_pos ? uid[i] != '-' : !is_hex(std::string_view(&uid[i], 1))) return {};
  }
  return uid;
}

struct ContainerMatch {
  std::string runtime;
  std::string id;
};

// One path component that names a container, e.g. "cri-containerd-<id>.scope".
// `parent` decides the runtime of a bare id (cgroupfs driver), which the name
// itself does not carry.
bool match_container(std::string_view comp, std::string_view parent, ContainerMatch& out) {
  struct Prefix {
    std::string_view prefix;
    std::string_view runtime;
  };
  // Longest prefixes first: "crio-conmon-" must win over "crio-".
  static constexpr std::array<Prefix, 8> kPrefixes{{
      {"cri-containerd-", "containerd"},
      {"crio-conmon-", "cri-o"},  // CRI-O's per-container monitor process
      {"crio-", "cri-o"},
      {"docker-", "docker"},
      {"libpod-conmon-", "podman"},
      {"libpod-", "podman"},
      {"nerdctl-", "containerd"},
      {"containerd-", "containerd"},
  }};
  std::string_view s = comp;
  consume_suffix(s, ".scope");  // systemd driver; cgroupfs names have no suffix
  for (const auto& p : kPrefixes) {
    std::string_view rest = s;
    if (consume_prefix(rest, p.prefix) && is_container_id(rest)) {
      out = {std::string(p.runtime), std::string(rest)};
      return true;
    }
  }
  if (comp.size() == 64 && is_container_id(comp)) {
    // cgroupfs driver: a bare id. Only /docker/<id> and podman's parent say
    // which runtime made it; under /kubepods it could be containerd, CRI-O
    // or cri-dockerd, and the API side fills that in.
    std::string rt;
    if (parent == "docker") rt = "docker";
    else if (parent == "libpod_parent" || parent == "machine.slice") rt = "podman";
    else if (parent == "k8s.io") rt = "containerd";  // containerd's k8s.io namespace
    out = {rt, std::string(comp)};
    return true;
  }
  return false;
}

struct PodMatch {
  std::string uid;
  std::string qos;  // "" when only the ancestors say it
};

// "kubepods-burstable-pod<uid>.slice", "kubepods-pod<uid>.slice" (systemd,
// kind adds a "kubelet-" prefix) or "pod<uid>" (cgroupfs).
bool match_pod(std::string_view comp, bool under_kubepods, PodMatch& out) {
  std::string_view s = comp;
  if (consume_suffix(s, ".slice")) {
    size_t at = s.rfind("-pod");
    if (at == std::string_view::npos) return false;
    std::string_view prefix = s.substr(0, at);
    if (prefix.find("kubepods") == std::string_view::npos) return false;
    std::string uid = pod_uid_from(s.substr(at + 4));
    if (uid.empty()) return false;
    out.uid = uid;
    if (ends_with(prefix, "-burstable")) out.qos = "burstable";
    else if (ends_with(prefix, "-besteffort")) out.qos = "besteffort";
    else out.qos = "guaranteed";  // guaranteed pods sit directly under kubepods
    return true;
  }
  if (!under_kubepods || !consume_prefix(s, "pod")) return false;
  std::string uid = pod_uid_from(s);
  if (uid.empty()) return false;
  out.uid = uid;
  out.qos.clear();  // decided by the parent: burstable/, besteffort/ or none
  return true;
}

bool is_kubepods(std::string_view comp) {
  return comp == "kubepods" || (ends_with(comp, ".slice") && comp.find("kubepods") != std::string_view::npos);
}

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

int score(const Workload& w) {
  if (w.is_container() && w.is_pod()) return 5;
  if (w.is_container()) return 4;
  if (w.is_pod()) return 3;
  if (w.runtime == "systemd") return 2;
  if (w.runtime == "host") return 1;
  return 0;
}

}  // namespace

Workload parse_cgroup_path(std::string_view path) {
  Workload w;
  w.cgroup_path = std::string(path);
  // /proc/<pid>/cgroup marks a removed cgroup this way.
  consume_suffix(path, " (deleted)");
  auto comps = split_path(path);
  if (comps.empty()) {
    if (!path.empty() && path.front() == '/') w.runtime = "host";
    return w;
  }

  bool under_kubepods = false;
  std::string qos_from_parent;
  bool pod_seen = false;
  bool container_after_pod = false;
  ContainerMatch container;
  bool container_seen = false;
  for (size_t i = 0; i < comps.size(); ++i) {
    std::string_view comp = comps[i];
    std::string_view parent = i > 0 ? comps[i - 1] : std::string_view{};
    ContainerMatch c;
    if (match_container(comp, parent, c)) {
      // The first container below a pod is the pod's; with no pod, keep the
      // innermost (docker-in-docker: the inner container is the process's).
      if (!pod_seen || !container_after_pod) {
        container = c;
        container_seen = true;
        if (pod_seen) container_after_pod = true;
      }
      continue;
    }
    PodMatch p;
    if (!container_after_pod && match_pod(comp, under_kubepods, p)) {
      // A pod inside a container (kind: the node is a docker container) makes
      // the outer container the node's, not the workload's.
      pod_seen = true;
      container_seen = false;
      w.pod_uid = p.uid;
      w.qos = p.qos.empty() ? (qos_from_parent.empty() ? "guaranteed" : qos_from_parent) : p.qos;
      continue;
    }
    if (is_kubepods(comp)) under_kubepods = true;
    if (under_kubepods && !pod_seen) {
      if (comp == "burstable" || ends_with(comp, "-burstable.slice")) qos_from_parent = "burstable";
      if (comp == "besteffort" || ends_with(comp, "-besteffort.slice")) qos_from_parent = "besteffort";
    }
  }

  if (container_seen) {
    w.runtime = container.runtime;
    w.container_id = container.id;
    return w;
  }
  if (pod_seen || under_kubepods) return w;  // kubelet's hierarchy; runtime unknown here

  std::string_view last = comps.back();
  if (comps.size() == 1 && last == "init.scope") {
    w.runtime = "host";  // PID 1 and what systemd keeps beside it
    w.unit = std::string(last);
    return w;
  }
  if (ends_with(last, ".service") || ends_with(last, ".scope") || ends_with(last, ".slice")) {
    w.runtime = "systemd";
    w.unit = std::string(last);
  }
  return w;
}

Workload parse_proc_cgroup(std::string_view content) {
  Workload best;
  int best_score = -1;
  bool best_is_v2 = false;
  size_t i = 0;
  while (i < content.size()) {
    size_t eol = content.find('\n', i);
    if (eol == std::string_view::npos) eol = content.size();
    std::string_view line = content.substr(i, eol - i);
    i = eol + 1;
    // hierarchy-id:controllers:path; the path itself may contain ':'.
    size_t c1 = line.find(':');
    if (c1 == std::string_view::npos) continue;
    size_t c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    bool v2 = line.substr(0, c1) == "0" && c2 == c1 + 1;
    Workload w = parse_cgroup_path(line.substr(c2 + 1));
    int s = score(w);
    if (s > best_score || (s == best_score && v2 && !best_is_v2)) {
      best = std::move(w);
      best_score = s;
      best_is_v2 = v2;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------
// Resolver

namespace {

// Cgroup trees are a few levels deep (kubepods/qos/pod/container plus what a
// container nests); 64 levels is far beyond any real layout and keeps a
// pathological tree from exhausting the stack.
constexpr int kMaxDepth = 64;

void walk_dir(int dirfd, const std::string& rel, int depth,
              std::unordered_map<uint64_t, std::string>& out) {
  if (depth > kMaxDepth) return;
  DIR* d = ::fdopendir(dirfd);
  if (!d) {
    ::close(dirfd);
    return;
  }
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) continue;
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    int fd = ::openat(::dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;  // removed meanwhile, or not a directory
    struct stat st{};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      continue;
    }
    std::string child = rel == "/" ? "/" + std::string(e->d_name) : rel + "/" + e->d_name;
    out[static_cast<uint64_t>(st.st_ino)] = child;
    walk_dir(fd, child, depth + 1, out);  // takes ownership of fd
  }
  ::closedir(d);
}

}  // namespace

Resolver::Resolver(std::string cgroup_root) {
  while (cgroup_root.size() > 1 && cgroup_root.back() == '/') cgroup_root.pop_back();
  if (fs::is_cgroup2(cgroup_root)) {
    root_ = cgroup_root;
    root_is_cgroup2_ = true;
  } else if (fs::is_cgroup2(cgroup_root + "/unified")) {
    root_ = cgroup_root + "/unified";
    root_is_cgroup2_ = true;
  } else {
    root_ = cgroup_root;
  }
  handles_work_ = root_is_cgroup2_;
}

void Resolver::set_rescan_interval(std::chrono::milliseconds d) {
  std::lock_guard lk(mu_);
  rescan_interval_ = d;
}

Resolver::Stats Resolver::stats() const {
  std::lock_guard lk(mu_);
  Stats s = stats_;
  s.cached = cache_.size();
  return s;
}

Result<void> Resolver::walk_locked() {
  int fd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error(errno, "cgroup root {}", root_);
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return errno_error(err, "cgroup root {}", root_);
  }
  std::unordered_map<uint64_t, std::string> paths;
  paths[static_cast<uint64_t>(st.st_ino)] = "/";
  walk_dir(fd, "/", 1, paths);
  // Replacing (not merging) drops cgroups that are gone, so the cache stays
  // bounded by the live tree.
  std::unordered_map<uint64_t, Workload> fresh;
  fresh.reserve(paths.size());
  for (auto& [id, path] : paths) fresh.emplace(id, parse_cgroup_path(path));
  cache_ = std::move(fresh);
  walked_ = true;
  last_walk_ = std::chrono::steady_clock::now();
  ++stats_.walks;
  return ok();
}

Result<const Workload*> Resolver::lookup_locked(uint64_t cgroup_id) {
  if (!walked_) KAGAMI_TRY(walk_locked());
  if (auto it = cache_.find(cgroup_id); it != cache_.end()) {
    ++stats_.hits;
    return &it->second;
  }
  ++stats_.misses;

  if (handles_work_) {
    Fd mount(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    auto opened = mount.valid() ? fs::open_cgroup_by_id(mount.get(), cgroup_id) : Result<Fd>(errno_error(errno, "{}", root_));
    Fd dir = opened ? std::move(*opened) : Fd();
    const int err = opened ? 0 : opened.error().code;
    ++stats_.handle_lookups;
    if (dir.valid()) {
      std::array<char, 4096> buf{};
      std::string link = "/proc/self/fd/" + std::to_string(dir.get());
      ssize_t n = ::readlink(link.c_str(), buf.data(), buf.size() - 1);
      if (n > 0) {
        std::string abs(buf.data(), static_cast<size_t>(n));
        std::string rel;
        if (abs == root_) rel = "/";
        else if (abs.size() > root_.size() && abs.compare(0, root_.size(), root_) == 0 && abs[root_.size()] == '/')
          rel = abs.substr(root_.size());
        if (!rel.empty()) {
          auto [it, _] = cache_.insert_or_assign(cgroup_id, parse_cgroup_path(rel));
          return &it->second;
        }
      }
      // Mounted elsewhere in our namespace than root_ says: fall back to a walk.
    } else if (err == ESTALE || err == ENOENT) {
      return make_error("cgroup id {}: no such cgroup under {} (exited, or a cgroup v1 id)", cgroup_id,
                        root_);
    } else if (err == EPERM || err == EOPNOTSUPP || err == EINVAL || err == ENOSYS) {
      handles_work_ = false;  // no CAP_DAC_READ_SEARCH or no kernfs export: walk instead
    }
  }

  auto now = std::chrono::steady_clock::now();
  if (now - last_walk_ < rescan_interval_)
    return make_error("cgroup id {}: not found under {} (tree rescans are rate-limited to one per {} ms)",
                      cgroup_id, root_, rescan_interval_.count());
  KAGAMI_TRY(walk_locked());
  if (auto it = cache_.find(cgroup_id); it != cache_.end()) return &it->second;
  return make_error("cgroup id {}: no such cgroup under {}", cgroup_id, root_);
}

Result<std::string> Resolver::path_of(uint64_t cgroup_id) {
  std::lock_guard lk(mu_);
  auto w = lookup_locked(cgroup_id);
  if (!w) return w.error();
  return (*w)->cgroup_path;
}

Result<Workload> Resolver::resolve(uint64_t cgroup_id) {
  std::lock_guard lk(mu_);
  auto w = lookup_locked(cgroup_id);
  if (!w) return w.error();
  return **w;
}

Result<uint64_t> Resolver::id_of(std::string_view rel_path) const {
  std::string full = root_ + (rel_path.empty() || rel_path.front() != '/' ? "/" : "") + std::string(rel_path);
  if (rel_path == "/" || rel_path.empty()) full = root_;
  struct stat st{};
  if (::stat(full.c_str(), &st) != 0) return errno_error(errno, "cgroup {}", full);
  if (!S_ISDIR(st.st_mode)) return make_error("cgroup {}: not a directory", full);
  return static_cast<uint64_t>(st.st_ino);
}

}  // namespace kagami::identity
