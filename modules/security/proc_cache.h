// Process cache for the security module: who a pid is and who its parents
// were, for events whose processes may already be gone.
//
// Seeded from /proc at start (seed()), kept up to date by the module's own
// exec/fork/exit records when the policy asks for them, and filled lazily
// from /proc on a miss. Bounded: at most `capacity` entries; when full, the
// least recently touched one goes. A pid is reused by the kernel: every
// entry carries the process's start time (field 22 of /proc/<pid>/stat),
// and a live /proc entry with another start time replaces the cached one,
// so an ancestor is never a stranger who got its pid later.
//
// Thread safety: all methods lock one mutex (the event-loop thread decodes,
// the module's start() thread seeds).
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace kagami::modules::security {

struct ProcInfo {
  uint32_t tgid = 0, ppid = 0;
  uint64_t start_time = 0;  // clock ticks after boot (/proc/<pid>/stat field 22); 0 = unknown
  std::string comm, exe;
  std::vector<std::string> args;  // at most 32, each at most 256 bytes
};

class ProcCache {
 public:
  explicit ProcCache(size_t capacity = 32768, std::string proc_root = "/proc");

  // Reads every process under proc_root; returns how many were cached.
  size_t seed();

  // Info for tgid: the live /proc entry when it exists (refreshing a stale
  // cached one: pid reuse), else the cached one, else nullopt.
  std::optional<ProcInfo> get(uint32_t tgid);

  // Module records: an exec replaces the image, a fork adds a child, an
  // exit marks the process gone (kept for the ancestry of its children
  // until evicted).
  void on_exec(uint32_t tgid, uint32_t ppid, const std::string& comm, const std::string& exe,
               const std::vector<std::string>& args);
  void on_fork(uint32_t parent, uint32_t child);
  void on_exit(uint32_t tgid);

  // Parents of ppid upward (ppid first), at most `depth`, stopping at pid 1
  // or 0 or a loop.
  std::vector<ProcInfo> ancestry(uint32_t ppid, size_t depth);

  size_t size() const;
  size_t capacity() const { return capacity_; }

  // Reads /proc/<pid> (nullopt when it does not exist). Public for tests.
  std::optional<ProcInfo> read_proc(uint32_t tgid) const;

 private:
  void put_locked(const ProcInfo& p);
  ProcInfo* find_locked(uint32_t tgid);

  size_t capacity_;
  std::string proc_;
  mutable std::mutex mu_;
  std::list<ProcInfo> lru_;  // front = most recent
  std::unordered_map<uint32_t, std::list<ProcInfo>::iterator> index_;
};

}  // namespace kagami::modules::security
