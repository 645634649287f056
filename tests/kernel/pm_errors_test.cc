// Errors that say what happened (issue 8 item 9) and fd hygiene: each bad
// input gets the message an operator can act on, and attaching uprobes
// leaves no fd behind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <dirent.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "pm_fixture.h"

namespace kagami::test {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

size_t open_fds() {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    (void)e;
    n++;
  }
  return n;
}

extern "C" __attribute__((noinline)) int kagami_errors_uprobe_target(int x) {
  asm volatile("" ::: "memory");
  return x + 1;
}

class PmErrors : public PmTest {
 protected:
  void SetUp() override {
    PmTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    tmp_ = fs::temp_directory_path() / ("kagami-pm-errors-" + std::to_string(getpid()));
    fs::create_directories(tmp_);
  }
  void TearDown() override {
    std::error_code ec;
    if (!tmp_.empty()) fs::remove_all(tmp_, ec);
    PmTest::TearDown();
  }
  Result<core::ProgramInfo> load_path(const std::string& path, const std::string& point = "raw_tp:sys_enter") {
    auto req = request("e", "count_v1", {point});
    req.source.path = path;
    return pm_->load(req);
  }
  fs::path tmp_;
};

TEST_F(PmErrors, SymlinkLoopSaysSo) {
  const auto a = tmp_ / "a.bpf.o", b = tmp_ / "b.bpf.o";
  fs::create_symlink(b, a);
  fs::create_symlink(a, b);
  auto r = load_path(a.string());
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("symbolic link"));
  EXPECT_FALSE(fs::exists(pin_root_ + "/e"));
}

TEST_F(PmErrors, DeviceAndFifoAreNotRegularFilesAndNeverBlock) {
  auto r = load_path("/dev/zero");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("/dev/zero is a character device, not a regular file"));
  const auto fifo = tmp_ / "fifo.bpf.o";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0) << strerror(errno);
  // No writer: a blocking open would hang here (ctest's timeout would tell).
  r = load_path(fifo.string());
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("is a FIFO, not a regular file"));
  r = load_path(tmp_.string());
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("is a directory, not a regular file"));
}

TEST_F(PmErrors, HugeMapErrorNamesTheMapAndWhy) {
  auto req = request("big", "big_map", {"raw_tp:sys_enter"});
  auto r = pm_->load(req);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("creating map big (hash) failed"));
  EXPECT_THAT(r.error().message, HasSubstr("max_entries 2147483648"));
  EXPECT_THAT(r.error().message, ::testing::Not(HasSubstr("loading program big_tp")));
  EXPECT_FALSE(fs::exists(pin_root_ + "/big"));
}

TEST_F(PmErrors, UprobeOnDirectoryDeviceOrNonElfSaysWhatItIs) {
  const auto text = tmp_ / "script.sh";
  std::ofstream(text) << "#!/bin/sh\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {tmp_.string(), "is a directory, not a regular file"},
      {"/dev/zero", "is a character device, not a regular file"},
      {text.string(), "is not an ELF file"},
  };
  for (const auto& [bin, want] : cases) {
    auto r = pm_->load(request("up", "hooks", {"uprobe:" + bin + ":main"}));
    ASSERT_FALSE(r) << bin;
    EXPECT_THAT(r.error().message, HasSubstr(want)) << bin;
    EXPECT_THAT(r.error().message, ::testing::Not(HasSubstr("Unknown error")));
  }
}

TEST_F(PmErrors, UprobeAttachAndReplaceLeaveNoFdBehind) {
  const std::string self = fs::read_symlink("/proc/self/exe");
  const auto spec = "uprobe:" + self + ":kagami_errors_uprobe_target";
  // Warm up once (libbpf and the manager open lazily-cached fds, e.g. the
  // uprobe PMU type), then count.
  ASSERT_TRUE(pm_->load(request("warm", "hooks", {spec})));
  ASSERT_TRUE(pm_->unload("warm"));
  const size_t before = open_fds();
  ASSERT_TRUE(pm_->load(request("up", "hooks", {spec})));
  EXPECT_EQ(kagami_errors_uprobe_target(1), 2);
  auto held = open_fds();  // the manager keeps fds for its progs, maps and link
  for (int i = 0; i < 5; i++) {
    auto r = pm_->replace("up", request("up", "hooks", {}));
    ASSERT_TRUE(r) << r.error().message;
  }
  EXPECT_EQ(open_fds(), held) << "each uprobe replace leaked fds";
  ASSERT_TRUE(pm_->unload("up"));
  EXPECT_EQ(open_fds(), before) << "a uprobe attach leaked fds";
}

TEST_F(PmErrors, DamagedPinsAreReportedByAdoption) {
  // A complete record whose program pin was removed by hand: adoption
  // cannot take it over, and says so instead of adopting nothing silently.
  ASSERT_TRUE(pm_->load(request("ok", "hooks", {"raw_tp:sys_enter"})));
  ASSERT_EQ(::unlink((pin_root_ + "/ok/progs/hook_raw").c_str()), 0) << strerror(errno);
  restart();
  auto errs = pm_->adoption_errors();
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_THAT(errs[0], HasSubstr(pin_root_ + "/ok"));
  EXPECT_THAT(errs[0], HasSubstr("No such file"));
  // Clean up by hand what the manager refused to adopt.
  std::error_code ec;
  fs::remove_all(pin_root_ + "/ok", ec);
}

}  // namespace
}  // namespace kagami::test
