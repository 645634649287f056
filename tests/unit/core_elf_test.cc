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
  EXPECT_THAT(r.error().message, HasSubstr("/nonexistent/kagami.o: cannot open"));
}

}  // namespace
