// A bpffs pin root for one test: "/sys/fs/bpf/kagami-test-<pid>-<tag><n>".
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <string_view>

namespace kagami::test {

// The name is unique within this process (a sequence number), so a
// directory that already exists was left by a dead process whose pid we
// reuse (pid_max is 32768 on small VMs). It is removed: a program manager
// on it would adopt that run's programs, and the events left in its rings.
inline std::string fresh_pin_root(std::string_view tag) {
  static std::atomic<int> seq{0};
  std::string root = "/sys/fs/bpf/kagami-test-" + std::to_string(getpid()) + "-" + std::string(tag) +
                     std::to_string(seq++);
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  return root;
}

}  // namespace kagami::test
