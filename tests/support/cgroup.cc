#include "support/cgroup.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>

#include "common/fs.h"

namespace kagami::test {

namespace {

// Paths this process holds now. Names carry our pid, so a directory that
// already exists and is not one of these was left by a dead process whose
// pid we reuse (pid_max is 32768 on small VMs): its id and its processes
// must not leak into our test, so it is emptied and made again.
std::mutex g_live_mu;
std::set<std::string> g_live;

void kill_and_remove(const std::string& dir, const std::string& root) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.is_directory(ec)) kill_and_remove(e.path().string(), root);
  std::ifstream procs(dir + "/cgroup.procs");
  std::string pid;
  while (procs >> pid) {
    ::kill(std::stoi(pid), SIGKILL);
    std::ofstream(root + "/cgroup.procs") << pid;
  }
  for (int i = 0; i < 100 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; i++) ::usleep(10000);
}

}  // namespace

TestCgroup::TestCgroup(const std::string& suffix) {
  for (const char* r : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"})
    if (root_.empty() && fs::is_cgroup2(r)) root_ = r;
  if (root_.empty()) {
    error_ = "no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified";
    return;
  }
  static std::atomic<int> seq{0};
  const std::string name = suffix.empty() ? std::to_string(seq++) : suffix;
  const std::string path = root_ + "/kagami-test-" + std::to_string(getpid()) + "-" + name;
  std::lock_guard lk(g_live_mu);
  if (::mkdir(path.c_str(), 0755) != 0) {
    if (errno != EEXIST) {
      error_ = "mkdir " + path + ": " + std::strerror(errno);
      return;
    }
    if (!g_live.contains(path)) {
      kill_and_remove(path, root_);
      if (::mkdir(path.c_str(), 0755) != 0) {
        error_ = "mkdir " + path + " (after removing a stale one of a dead process with our pid): " +
                 std::strerror(errno);
        return;
      }
    }
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    error_ = "stat " + path + ": " + std::strerror(errno);
    return;
  }
  path_ = path;
  id_ = st.st_ino;
  g_live.insert(path_);
}

TestCgroup::~TestCgroup() {
  if (path_.empty()) return;
  {
    std::lock_guard lk(g_live_mu);
    g_live.erase(path_);
  }
  std::ifstream procs(path_ + "/cgroup.procs");
  std::string pid;
  while (procs >> pid) {
    ::kill(std::stoi(pid), SIGKILL);
    std::ofstream(root_ + "/cgroup.procs") << pid;
  }
  // A killed task leaves the cgroup a moment after the signal.
  for (int i = 0; i < 100 && ::rmdir(path_.c_str()) != 0 && errno == EBUSY; i++) ::usleep(10000);
}

uint64_t TestCgroup::usage_usec() const {
  std::ifstream f(path_ + "/cpu.stat");
  std::string k;
  uint64_t v;
  while (f >> k >> v)
    if (k == "usage_usec") return v;
  return 0;
}

}  // namespace kagami::test
