// bpf::check_elf: what the manager refuses before libbpf ever parses an
// object. No root needed: pure byte checks.
#include <gmock/gmock.h>

#include "bpf/object.h"

using ::testing::HasSubstr;

namespace {

std::vector<uint8_t> good() {
  auto b = kagami::bpf::read_file(std::string(KAGAMI_BPF_DIR) + "/count_v1.bpf.o");
  EXPECT_TRUE(b) << (b ? "" : b.error().message);
  return b ? *b : std::vector<uint8_t>{};
}

std::string refuse(const std::vector<uint8_t>& b) {
  auto r = kagami::bpf::check_elf(b, "x.o");
  EXPECT_FALSE(r);
  return r ? "" : r.error().message;
}

TEST(CheckElf, AcceptsABpfObject) { EXPECT_TRUE(kagami::bpf::check_elf(good(), "count_v1.bpf.o")); }

TEST(CheckElf, RefusesNonElfAndTruncated) {
  EXPECT_THAT(refuse({}), HasSubstr("x.o: not an ELF file"));
  EXPECT_THAT(refuse({'h', 'e', 'l', 'l', 'o'}), HasSubstr("not an ELF file"));
  auto b = good();
  b.resize(64);  // header only: the section table points past the end
  EXPECT_THAT(refuse(b), HasSubstr("x.o: malformed ELF section table"));
}

TEST(CheckElf, RefusesOtherMachines) {
  auto b = good();
  b[18] = 62;  // e_machine = EM_X86_64
  b[19] = 0;
  EXPECT_THAT(refuse(b), HasSubstr("ELF machine is 62 not BPF (247)"));
  auto host = kagami::bpf::read_file("/bin/true");
  ASSERT_TRUE(host);
  EXPECT_THAT(refuse(*host), HasSubstr("not BPF"));
}

TEST(CheckElf, RefusesObjectWithoutLicense) {
  auto b = good();
  std::string s(b.begin(), b.end());
  for (size_t p = s.find(std::string("license\0", 8)); p != std::string::npos;
       p = s.find(std::string("license\0", 8), p + 1))
    b[p + 6] = 'X';
  EXPECT_THAT(refuse(b), HasSubstr("no \"license\" section"));
}

TEST(CheckElf, ReadFileNamesTheMissingFile) {
  auto r = kagami::bpf::read_file("/nonexistent/kagami.o");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("/nonexistent/kagami.o: No such file"));
}

}  // namespace

#include "bpf/kernel.h"

namespace {

TEST(BpfObject, MissingProgramOrMapIsAnErrorNotMinusOne) {
  auto o = kagami::bpf::Object::open(good(), "count_v1.bpf.o");
  ASSERT_TRUE(o) << o.error().message;
  auto p = o->prog_fd("nope");
  ASSERT_FALSE(p);
  EXPECT_THAT(p.error().message, HasSubstr("count_v1.bpf.o has no program named nope"));
  auto m = o->map_fd("nope");
  ASSERT_FALSE(m);
  EXPECT_THAT(m.error().message, HasSubstr("has no map named nope"));
  // Not loaded yet: the program exists but has no fd.
  auto q = o->prog_fd("count_tc");
  ASSERT_FALSE(q);
  EXPECT_THAT(q.error().message, HasSubstr("not loaded"));
}

TEST(BpfKernel, ListDirReportsErrors) {
  auto r = kagami::bpf::list_dir("/nonexistent/kagami");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT);
  auto d = kagami::bpf::list_dir("/proc/self");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_FALSE(d->empty());
}

TEST(BpfObject, ReadFileSaysWhatTheFileIs) {
  auto r = kagami::bpf::read_file("/tmp");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("is a directory, not a regular file"));
}

}  // namespace
