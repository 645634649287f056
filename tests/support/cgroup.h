// A cgroup v2 directory of the test's own, under the v2 root (the unified
// hierarchy of a hybrid layout too), removed when the object goes, even
// when the test fails: stragglers are killed and moved out first.
#pragma once

#include <cstdint>
#include <string>

namespace kagami::test {

class TestCgroup {
 public:
  // "<root>/kagami-test-<pid>-<suffix>"; an empty suffix takes a sequence
  // number. On failure path() is empty and error() says why.
  explicit TestCgroup(const std::string& suffix = "");
  ~TestCgroup();
  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;

  const std::string& path() const { return path_; }
  const std::string& error() const { return error_; }
  uint64_t id() const { return id_; }  // the cgroup v2 id: the directory's inode number
  // The path relative to the v2 root, as the identity service reports it.
  std::string rel() const { return path_.substr(root_.size()); }
  // cpu.stat usage_usec (0 when unreadable).
  uint64_t usage_usec() const;

 private:
  std::string root_, path_, error_;
  uint64_t id_ = 0;
};

}  // namespace kagami::test
