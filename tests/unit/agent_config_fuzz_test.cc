// The config fuzz target (tests/fuzz/config_fuzz.cc) run as a plain GTest, so
// CI exercises it with g++ and no libFuzzer: every seed of the corpus, then
// deterministic mutations of them (byte flips, inserts of YAML punctuation,
// truncations, splices between seeds). A property violation in the target
// traps, which fails this test with the offending input printed first.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

std::vector<std::string> seeds() {
  std::vector<std::string> out;
  const fs::path dir = fs::path(KAGAMI_SOURCE_DIR) / "tests/fuzz/corpus/config";
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    out.push_back(ss.str());
  }
  return out;
}

// KAGAMI_FUZZ_DUMP=<file>: write each input there before running it, so the
// input that traps or hangs is on disk for a reproducer.
void run_one(const std::string& s) {
  if (const char* dump = std::getenv("KAGAMI_FUZZ_DUMP")) std::ofstream(dump, std::ios::trunc) << s;
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::string mutate(const std::string& in, const std::vector<std::string>& pool, std::mt19937& rng) {
  static const char* tokens[] = {":", "- ", "[", "]", "{", "}", "\n", "  ", "&a ", "*a", "!!str ", "\"",
                                 "'", "#", "---\n", "? ", ",", "|\n", ">\n", "\t", "\xff", "~"};
  std::string s = in;
  const int ops = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < ops; ++i) {
    const size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 6) {
      case 0:  // flip a byte
        if (!s.empty()) s[pos % s.size()] = static_cast<char>(rng() & 0xff);
        break;
      case 1:  // insert YAML punctuation
        s.insert(pos, tokens[rng() % (sizeof(tokens) / sizeof(tokens[0]))]);
        break;
      case 2:  // truncate
        s.resize(pos);
        break;
      case 3:  // delete a range
        if (!s.empty()) s.erase(pos % s.size(), 1 + rng() % 16);
        break;
      case 4: {  // splice a piece of another seed
        const std::string& o = pool[rng() % pool.size()];
        if (!o.empty()) {
          const size_t from = rng() % o.size();
          s.insert(pos, o.substr(from, 1 + rng() % 64));
        }
        break;
      }
      case 5:  // duplicate a line (duplicate keys, duplicate programs)
        if (!s.empty()) {
          const size_t b = s.rfind('\n', pos % s.size());
          const size_t start = b == std::string::npos ? 0 : b + 1;
          const size_t e = s.find('\n', start);
          const std::string line = s.substr(start, e == std::string::npos ? std::string::npos : e - start + 1);
          s.insert(start, line);
        }
        break;
    }
  }
  return s;
}

TEST(ConfigFuzzRegression, SeedsParseWithoutViolations) {
  auto pool = seeds();
  ASSERT_GE(pool.size(), 5u) << "seed corpus missing";
  for (const auto& s : pool) run_one(s);
}

TEST(ConfigFuzzRegression, DeterministicMutations) {
  auto pool = seeds();
  ASSERT_FALSE(pool.empty());
  std::mt19937 rng(0x6b6167);  // fixed: a failure reproduces exactly
  size_t runs = 0;
  for (int round = 0; round < 600; ++round) {
    for (const auto& seed : pool) {
      std::string s = mutate(seed, pool, rng);
      // Stack a few generations so mutations compound.
      for (int g = 0; g < 2; ++g) {
        run_one(s);
        ++runs;
        s = mutate(s, pool, rng);
      }
    }
  }
  EXPECT_GT(runs, 5000u);
}

TEST(ConfigFuzzRegression, PathologicalInputs) {
  run_one(std::string(100000, '['));                        // deep flow nesting
  run_one(std::string(20000, '-') + " x");                   // a very long scalar
  std::string nest;
  for (int i = 0; i < 3000; ++i) nest += "- ";              // deeply nested block sequences
  run_one(nest + "x\n");
  run_one(std::string(5 << 20, 'a'));                        // larger than the size cap
  std::string keys = "modules:\n  obs:\n";
  for (int i = 0; i < 5000; ++i) keys += "    k" + std::to_string(i) + ": " + std::to_string(i) + "\n";
  run_one(keys);
}

}  // namespace
