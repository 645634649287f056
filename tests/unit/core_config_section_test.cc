// The one reader of module config sections: every module rejects the same
// mistakes with the same words, names the field, and leaves defaults alone.
#include <gmock/gmock.h>

#include <nlohmann/json.hpp>

#include "core/config_section.h"

namespace {

using kagami::core::ConfigSection;
using kagami::core::Need;
using nlohmann::json;
using ::testing::HasSubstr;

TEST(ConfigSection, AbsentKeysKeepTheirDefaults) {
  ConfigSection s("m", json::object());
  ASSERT_TRUE(s.allow({"a", "b"}));
  int64_t n = 7;
  std::string p = "", c = "auto";
  bool b = true;
  std::vector<std::string> l = {"x"};
  EXPECT_TRUE(s.integer("n", n, 0, 10));
  EXPECT_TRUE(s.path("p", p));  // an empty default is not validated
  EXPECT_TRUE(s.choice("c", c, {"auto", "x"}));
  EXPECT_TRUE(s.boolean("b", b));
  EXPECT_TRUE(s.strings("l", l));
  EXPECT_EQ(n, 7);
  EXPECT_EQ(p, "");
  EXPECT_EQ(c, "auto");
  EXPECT_TRUE(b);
  EXPECT_EQ(l, std::vector<std::string>{"x"});
  // A module enabled with no settings at all reads as empty.
  EXPECT_TRUE(ConfigSection("m", json()).allow({}));
}

TEST(ConfigSection, EveryMistakeNamesTheField) {
  json j = {{"enabled", true}, {"n", 11}, {"p", "rel/x"}, {"c", "y"}, {"b", "yes"}, {"l", {"a", "a"}}, {"f", -0.5}};
  ConfigSection s("mod", j);
  EXPECT_THAT(s.allow({"n", "p", "c", "l", "f"}).error().message, HasSubstr("mod.b: unknown key (known: n, p, c, l, f)"));
  int64_t n = 0;
  EXPECT_THAT(s.integer("n", n, 0, 10).error().message, HasSubstr("mod.n: must be an integer in 0..10 (got 11)"));
  uint32_t u = 0;
  EXPECT_FALSE(s.integer("n", u, 0, 10));
  std::string p, c;
  EXPECT_THAT(s.path("p", p).error().message, HasSubstr("mod.p: must be an absolute path"));
  EXPECT_THAT(s.choice("c", c, {"a", "b"}).error().message, HasSubstr("mod.c: must be one of a, b (got \"y\")"));
  bool b = false;
  EXPECT_THAT(s.boolean("b", b).error().message, HasSubstr("mod.b: must be true or false"));
  std::vector<std::string> l;
  EXPECT_THAT(s.strings("l", l).error().message, HasSubstr("mod.l: 'a' is listed twice"));
  double f = 0;
  EXPECT_THAT(s.number("f", f, 0, 1).error().message, HasSubstr("mod.f: must be a number in 0..1"));
  EXPECT_THAT(s.integer("missing", n, 0, 1, Need::Required).error().message, HasSubstr("mod.missing: is required"));
  EXPECT_THAT(ConfigSection("mod", json::array()).allow({}).error().message,
              HasSubstr("mod: the section must be a mapping"));
  // Values that fit are taken; a huge unsigned is refused, not wrapped.
  EXPECT_FALSE(ConfigSection("m", json{{"n", 18446744073709551615ull}}).integer("n", n, 0, 10));
}

}  // namespace
