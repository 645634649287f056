// Power sources on fake sysfs trees laid out as real kernels lay them out
// (powercap: /sys/class/powercap/intel-rapl:N[:M]/{name,energy_uj,
// max_energy_range_uj}; hwmon: /sys/class/hwmon/hwmonN/{name,powerN_input,
// energyN_input}), including counter wrap, missing and unreadable files,
// and the config of the model.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "modules/energy/energy.h"
#include "modules/energy/power.h"

namespace {

namespace fs = std::filesystem;
using namespace kagami::modules::energy;

// A temp dir removed at scope end, even when the test fails.
struct TempDir {
  fs::path p;
  TempDir() {
    char t[] = "/tmp/kagami-energy-XXXXXX";
    p = ::mkdtemp(t);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(p, ec);
  }
};

void put(const fs::path& f, const std::string& s) {
  fs::create_directories(f.parent_path());
  std::ofstream(f) << s << "\n";
}

// intel-rapl:0 package-0 with core (0:0) and dram (0:1) subzones, as on a
// one-socket server; psys optional as on client parts.
void rapl_tree(const fs::path& root, bool psys) {
  auto zone = [&](const std::string& dir, const std::string& name, uint64_t e, uint64_t range) {
    put(root / dir / "name", name);
    put(root / dir / "energy_uj", std::to_string(e));
    put(root / dir / "max_energy_range_uj", std::to_string(range));
  };
  zone("intel-rapl:0", "package-0", 1000, 262143328850);
  zone("intel-rapl:0:0", "core", 500, 262143328850);
  zone("intel-rapl:0:1", "dram", 100, 65712999613);
  if (psys) zone("intel-rapl:1", "psys", 5000, 262143328850);
}

TEST(energyRapl, PackagePlusDramNotCore) {
  TempDir t;
  rapl_tree(t.p, false);
  auto r = open_rapl(t.p.string());
  ASSERT_TRUE(r) << r.error().message;
  put(t.p / "intel-rapl:0/energy_uj", "3000");     // +2000 uJ
  put(t.p / "intel-rapl:0:0/energy_uj", "99999");  // core: inside package, ignored
  put(t.p / "intel-rapl:0:1/energy_uj", "400");    // +300 uJ
  auto s = (*r)->sample(1'000'000'000, 0.5);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_FALSE(s->first);
  EXPECT_EQ(s->energy_nj, 2300u * 1000);
  EXPECT_EQ((*r)->describe()["zones"].size(), 2u);
}

TEST(energyRapl, PsysPreferred) {
  TempDir t;
  rapl_tree(t.p, true);
  auto r = open_rapl(t.p.string());
  ASSERT_TRUE(r) << r.error().message;
  put(t.p / "intel-rapl:1/energy_uj", "6000");
  put(t.p / "intel-rapl:0/energy_uj", "9000");
  auto s = (*r)->sample(0, 0);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->energy_nj, 1000u * 1000);  // psys only
}

TEST(energyRapl, CounterWrap) {
  TempDir t;
  rapl_tree(t.p, false);
  put(t.p / "intel-rapl:0/energy_uj", "262143328000");  // 850 uJ before the wrap point
  auto r = open_rapl(t.p.string());
  ASSERT_TRUE(r) << r.error().message;
  put(t.p / "intel-rapl:0/energy_uj", "150");  // wrapped
  auto s = (*r)->sample(0, 0);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->energy_nj, (850u + 150u) * 1000);
  EXPECT_EQ((*r)->describe()["zones"][0]["wraps"], 1);
  EXPECT_EQ(wrapped_delta(10, 5, 0), 5u);  // unknown range: count from 0, never negative
  EXPECT_EQ(wrapped_delta(5, 10, 100), 5u);
}

TEST(energyRapl, MissingAndUnreadable) {
  TempDir t;
  auto r = open_rapl((t.p / "absent").string());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("absent"), std::string::npos);
  fs::create_directories(t.p / "empty");
  r = open_rapl((t.p / "empty").string());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("no package, dram or psys zone"), std::string::npos) << r.error().message;
  rapl_tree(t.p / "garbage", false);
  put(t.p / "garbage/intel-rapl:0/energy_uj", "not-a-number");
  r = open_rapl((t.p / "garbage").string());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not readable"), std::string::npos) << r.error().message;
  if (::geteuid() != 0) {  // root reads a 0000 file: only meaningful unprivileged
    rapl_tree(t.p / "locked", false);
    ::chmod((t.p / "locked/intel-rapl:0/energy_uj").c_str(), 0);
    r = open_rapl((t.p / "locked").string());
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("root-only"), std::string::npos) << r.error().message;
  }
}

TEST(energyRapl, FileVanishingMidRunIsAnError) {
  TempDir t;
  rapl_tree(t.p, false);
  auto r = open_rapl(t.p.string());
  ASSERT_TRUE(r);
  fs::remove(t.p / "intel-rapl:0/energy_uj");
  auto s = (*r)->sample(0, 0);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("package-0"), std::string::npos) << s.error().message;
}

TEST(energyHwmon, EnergyCountersPreferredPerDevice) {
  TempDir t;
  put(t.p / "hwmon0/name", "coretemp");
  put(t.p / "hwmon0/temp1_input", "45000");
  put(t.p / "hwmon1/name", "amd_energy");
  put(t.p / "hwmon1/energy1_input", "1000000");
  put(t.p / "hwmon1/power1_input", "99000000");  // ignored: the device has energy counters
  put(t.p / "hwmon2/name", "acpi_power_meter");
  put(t.p / "hwmon2/power1_average", "120000000");  // 120 W
  auto h = open_hwmon(t.p.string());
  ASSERT_TRUE(h) << h.error().message;
  put(t.p / "hwmon1/energy1_input", "3000000");  // +2 J
  auto s = (*h)->sample(500'000'000, 0);         // 0.5 s at 120 W = 60 J
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->energy_nj, 2'000'000'000ull + 60'000'000'000ull);
}

TEST(energyHwmon, NoSensors) {
  TempDir t;
  put(t.p / "hwmon0/name", "coretemp");
  put(t.p / "hwmon0/temp1_input", "45000");
  auto h = open_hwmon(t.p.string());
  ASSERT_FALSE(h);
  EXPECT_NE(h.error().message.find("no readable power or energy sensor"), std::string::npos);
}

TEST(energyModel, LinearAndCurve) {
  PowerModel m;
  m.units = 4;
  ASSERT_TRUE(m.validate());
  EXPECT_DOUBLE_EQ(m.node_watts(0), 4 * 0.74);
  EXPECT_DOUBLE_EQ(m.node_watts(1), 4 * 3.5);
  EXPECT_DOUBLE_EQ(m.node_watts(0.5), 4 * (0.74 + 0.5 * (3.5 - 0.74)));
  EXPECT_DOUBLE_EQ(m.node_watts(7), m.node_watts(1));   // clamped
  EXPECT_DOUBLE_EQ(m.node_watts(NAN), m.node_watts(0));  // NaN utilisation reads as 0
  m.curve = {0, 0.5, 1};
  EXPECT_DOUBLE_EQ(m.node_watts(0.25), 4 * (0.74 + 0.25 * (3.5 - 0.74)));
  auto src = make_model_source(m);
  auto s = src->sample(2'000'000'000, 1.0);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->energy_nj, 28'000'000'000ull);  // 14 W x 2 s
}

TEST(energyModel, ImpossibleValuesRejectedWithTheField) {
  auto bad = [](nlohmann::json model, const std::string& want) {
    auto c = parse_energy_config({{"model", model}});
    ASSERT_FALSE(c) << model.dump();
    EXPECT_NE(c.error().message.find(want), std::string::npos) << c.error().message;
  };
  bad({{"idle_watts", -1}}, "energy.model.idle_watts");
  bad({{"idle_watts", 5}, {"max_watts", 2}}, "below idle_watts");
  bad({{"max_watts", 50000}}, "not a plausible value");
  bad({{"max_watts", 0}, {"idle_watts", 0}}, "must be > 0");
  bad({{"curve", {0, 0.8, 0.5, 1}}}, "must not decrease");
  bad({{"curve", {0.1, 1}}}, "must start at 0");
  bad({{"curve", "linear"}}, "list of numbers");
  bad({{"per", "rack"}}, "energy.model.per");
  bad({{"frequency", 3}}, "frequency");
  auto c = parse_energy_config({{"idle_policy", "bogus"}});
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("energy.idle_policy"), std::string::npos) << c.error().message;
  auto good = parse_energy_config({{"model", {{"per", "socket"}, {"idle_watts", 60}, {"max_watts", 200},
                                              {"curve", {0, 0.3, 0.55, 0.75, 0.9, 1}}}}});
  ASSERT_TRUE(good) << good.error().message;
  EXPECT_EQ(good->model.curve.size(), 6u);
  EXPECT_TRUE(parse_energy_config(nullptr));
}

TEST(energySource, AutoFallsBackToModelAndSaysWhy) {
  TempDir t;
  PowerModel m;
  m.units = 2;
  auto c = choose_power_source("auto", (t.p / "powercap").string(), (t.p / "hwmon").string(), m);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->source->kind(), "model");
  ASSERT_EQ(c->tried.size(), 2u);
  EXPECT_NE(c->tried[0].find("rapl"), std::string::npos);
  EXPECT_NE(c->tried[1].find("hwmon"), std::string::npos);
  auto e = choose_power_source("rapl", (t.p / "powercap").string(), (t.p / "hwmon").string(), m);
  ASSERT_FALSE(e);  // explicit source that does not work: an error, not a silent fallback
  EXPECT_NE(e.error().message.find("energy.power_source"), std::string::npos);
  rapl_tree(t.p / "powercap", false);
  c = choose_power_source("auto", (t.p / "powercap").string(), (t.p / "hwmon").string(), m);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->source->kind(), "rapl");
}

TEST(energySource, ThisMachine) {
  // Which source this machine would use, for the record (no assertion on it).
  PowerModel m;
  m.units = 1;
  auto c = choose_power_source("auto", "/sys/class/powercap", "/sys/class/hwmon", m);
  ASSERT_TRUE(c) << c.error().message;
  std::string why;
  for (const auto& s : c->tried) why += " [" + s + "]";
  RecordProperty("source", c->source->kind());
  std::printf("this machine: %s%s\n", c->source->kind().c_str(), why.c_str());
}

TEST(energyHooks, Choice) {
  auto yes = [](std::string_view) { return true; };
  auto no = [](std::string_view) { return false; };
  EXPECT_EQ(choose_hooks("auto", yes)->hooks, Hooks::TpBtf);
  EXPECT_EQ(choose_hooks("auto", no)->hooks, Hooks::Tracepoint);
  EXPECT_FALSE(choose_hooks("tp_btf", no));
  auto req = energy_load_request(*choose_hooks("auto", no));
  ASSERT_EQ(req.attach.size(), 3u);
  EXPECT_EQ(req.attach[0].target, "sched/sched_switch");
  EXPECT_FALSE(req.source.bytes.empty());
}

}  // namespace
