#include "modules/security/proc_cache.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace kagami::modules::security {

ProcCache::ProcCache(size_t capacity, std::string proc_root)
    : capacity_(capacity == 0 ? 1 : capacity), proc_(std::move(proc_root)) {}

std::optional<ProcInfo> ProcCache::read_proc(uint32_t tgid) const {
  const std::string base = proc_ + "/" + std::to_string(tgid);
  std::ifstream st(base + "/stat");
  if (!st) return std::nullopt;
  std::string line;
  std::getline(st, line);
  // "pid (comm) state ppid ..."; comm may hold spaces and ')': the last ')'.
  const auto l = line.find('('), r = line.rfind(')');
  if (l == std::string::npos || r == std::string::npos || r < l) return std::nullopt;
  ProcInfo p;
  p.tgid = tgid;
  p.comm = line.substr(l + 1, r - l - 1);
  std::istringstream rest(line.substr(r + 2));
  std::string field;
  // Fields after comm: 3 state, 4 ppid, ..., 22 starttime.
  for (int i = 3; i <= 22 && (rest >> field); ++i) {
    if (i == 4) p.ppid = static_cast<uint32_t>(std::strtoul(field.c_str(), nullptr, 10));
    if (i == 22) p.start_time = std::strtoull(field.c_str(), nullptr, 10);
  }
  char buf[4096];
  const ssize_t n = ::readlink((base + "/exe").c_str(), buf, sizeof(buf) - 1);
  if (n > 0) p.exe.assign(buf, static_cast<size_t>(n));
  std::ifstream cl(base + "/cmdline", std::ios::binary);
  std::string arg;
  // Bounded: 32 arguments of 256 bytes (a process with thousands of
  // arguments costs the same as one with 32).
  while (p.args.size() < 32 && std::getline(cl, arg, '\0')) {
    if (arg.size() > 256) arg.resize(256);
    p.args.push_back(arg);
  }
  return p;
}

size_t ProcCache::seed() {
  DIR* d = ::opendir(proc_.c_str());
  if (!d) return 0;
  std::vector<uint32_t> pids;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(e->d_name, &end, 10);
    if (end && *end == '\0' && v > 0) pids.push_back(static_cast<uint32_t>(v));
  }
  ::closedir(d);
  size_t n = 0;
  for (uint32_t pid : pids) {
    auto p = read_proc(pid);
    if (!p) continue;
    std::lock_guard lk(mu_);
    put_locked(*p);
    ++n;
  }
  return n;
}

ProcInfo* ProcCache::find_locked(uint32_t tgid) {
  auto it = index_.find(tgid);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return &*it->second;
}

void ProcCache::put_locked(const ProcInfo& p) {
  if (auto* cur = find_locked(p.tgid)) {
    *cur = p;
    return;
  }
  lru_.push_front(p);
  index_[p.tgid] = lru_.begin();
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().tgid);
    lru_.pop_back();
  }
}

std::optional<ProcInfo> ProcCache::get(uint32_t tgid) {
  auto live = read_proc(tgid);
  std::lock_guard lk(mu_);
  ProcInfo* cur = find_locked(tgid);
  if (live) {
    // The live process wins: either the cache had it (same start time,
    // fresher data) or the pid was reused (another start time).
    if (!cur || cur->start_time != live->start_time || cur->start_time == 0) put_locked(*live);
    else if (cur->exe.empty()) *cur = *live;
    return *find_locked(tgid);
  }
  if (cur) return *cur;
  return std::nullopt;
}

void ProcCache::on_exec(uint32_t tgid, uint32_t ppid, const std::string& comm, const std::string& exe,
                        const std::vector<std::string>& args) {
  std::lock_guard lk(mu_);
  ProcInfo p;
  if (auto* cur = find_locked(tgid)) p = *cur;
  p.tgid = tgid;
  p.ppid = ppid;
  p.comm = comm;
  p.exe = exe;
  p.args = args;
  if (p.args.size() > 32) p.args.resize(32);
  put_locked(p);
}

void ProcCache::on_fork(uint32_t parent, uint32_t child) {
  std::lock_guard lk(mu_);
  ProcInfo p;
  if (auto* cur = find_locked(parent)) p = *cur;
  p.tgid = child;
  p.ppid = parent;
  p.start_time = 0;  // unknown until /proc is read
  put_locked(p);
}

void ProcCache::on_exit(uint32_t tgid) {
  // Kept: its children's ancestry still names it; eviction removes it.
  (void)tgid;
}

std::vector<ProcInfo> ProcCache::ancestry(uint32_t ppid, size_t depth) {
  std::vector<ProcInfo> out;
  std::set<uint32_t> seen;
  // Bounded by `depth` (and a loop check): a 10000-deep chain costs `depth`
  // lookups.
  for (uint32_t pid = ppid; pid > 0 && out.size() < depth && seen.insert(pid).second;) {
    auto p = get(pid);
    if (!p) break;
    out.push_back(*p);
    if (pid == 1) break;
    pid = p->ppid;
  }
  return out;
}

size_t ProcCache::size() const {
  std::lock_guard lk(mu_);
  return lru_.size();
}

}  // namespace kagami::modules::security
