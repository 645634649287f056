#include "support/cgroup.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/fs.h"

namespace kagami::test {

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
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    error_ = "mkdir " + path + ": " + std::strerror(errno);
    return;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    error_ = "stat " + path + ": " + std::strerror(errno);
    return;
  }
  path_ = path;
  id_ = st.st_ino;
}

TestCgroup::~TestCgroup() {
  if (path_.empty()) return;
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
