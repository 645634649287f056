// Power sources: RAPL (powercap), hwmon, model. See power.h.
#include "modules/energy/power.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace kagami::modules::energy {
namespace fs = std::filesystem;
namespace {

Result<std::string> read_line(const std::string& path) {
  std::ifstream f(path);
  if (!f) return make_error("{}: {}", path, std::strerror(errno ? errno : ENOENT));
  std::string s;
  std::getline(f, s);
  if (f.bad()) return make_error("{}: read error", path);
  return s;
}

Result<uint64_t> read_u64(const std::string& path) {
  auto s = read_line(path);
  if (!s) return s.error();
  const char* p = s->c_str();
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(p, &end, 10);
  if (end == p || errno != 0 || (*end != '\0' && *end != '\n' && *end != ' '))
    return make_error("{}: not an unsigned integer: '{}'", path, *s);
  return static_cast<uint64_t>(v);
}

// Saturating conversion of a non-negative double to integer nanojoules.
uint64_t to_nj(double joules) {
  if (!(joules > 0)) return 0;  // also NaN
  const double nj = joules * 1e9;
  if (nj >= 1.8e19) return UINT64_MAX;
  return static_cast<uint64_t>(std::llround(nj));
}

class RaplSource : public PowerSource {
 public:
  explicit RaplSource(std::vector<PowerZone> zones) : zones_(std::move(zones)) {}
  std::string kind() const override { return "rapl"; }
  Result<EnergySample> sample(uint64_t, double) override {
    EnergySample s;
    uint64_t uj = 0;
    for (auto& z : zones_) {
      auto v = read_u64(z.path);
      if (!v) return v.error().with_context("rapl zone " + z.name);
      if (!z.have_last) {
        s.first = true;
      } else {
        if (*v < z.last) z.wraps++;
        uj += wrapped_delta(z.last, *v, z.max_range);
      }
      z.last = *v;
      z.have_last = true;
    }
    s.energy_nj = s.first ? 0 : uj * 1000;
    return s;
  }
  nlohmann::json describe() const override {
    nlohmann::json zs = nlohmann::json::array();
    for (const auto& z : zones_)
      zs.push_back({{"name", z.name}, {"path", z.path}, {"max_energy_range_uj", z.max_range}, {"wraps", z.wraps}});
    return {{"kind", "rapl"}, {"zones", zs}};
  }
  double error_ratio() const override { return 0.1; }

 private:
  std::vector<PowerZone> zones_;
};

class HwmonSource : public PowerSource {
 public:
  HwmonSource(std::vector<PowerZone> energy, std::vector<PowerZone> power)
      : energy_(std::move(energy)), power_(std::move(power)) {}
  std::string kind() const override { return "hwmon"; }
  Result<EnergySample> sample(uint64_t interval_ns, double) override {
    EnergySample s;
    uint64_t nj = 0;
    for (auto& z : energy_) {  // cumulative microjoules (64-bit: no practical wrap)
      auto v = read_u64(z.path);
      if (!v) return v.error().with_context("hwmon sensor " + z.name);
      if (!z.have_last) s.first = true;
      else nj += (*v >= z.last ? *v - z.last : 0) * 1000;  // a reset (driver reload) counts 0
      z.last = *v;
      z.have_last = true;
    }
    for (auto& z : power_) {  // microwatts, averaged by the device
      auto v = read_u64(z.path);
      if (!v) return v.error().with_context("hwmon sensor " + z.name);
      // uW * ns = 1e-15 J = 1e-6 nJ
      nj += static_cast<uint64_t>(static_cast<long double>(*v) * interval_ns / 1e6L);
      z.last = *v;
    }
    if (!seen_) {
      s.first = true;
      seen_ = true;
    }
    s.energy_nj = s.first ? 0 : nj;
    return s;
  }
  nlohmann::json describe() const override {
    nlohmann::json zs = nlohmann::json::array();
    for (const auto& z : energy_) zs.push_back({{"name", z.name}, {"path", z.path}, {"unit", "uJ"}});
    for (const auto& z : power_) zs.push_back({{"name", z.name}, {"path", z.path}, {"unit", "uW"}});
    return {{"kind", "hwmon"}, {"sensors", zs}};
  }
  double error_ratio() const override { return 0.15; }

 private:
  std::vector<PowerZone> energy_, power_;
  bool seen_ = false;
};

class ModelSource : public PowerSource {
 public:
  explicit ModelSource(PowerModel m) : m_(std::move(m)) {}
  std::string kind() const override { return "model"; }
  Result<EnergySample> sample(uint64_t interval_ns, double u) override {
    EnergySample s;
    s.energy_nj = to_nj(m_.node_watts(u) * (static_cast<double>(interval_ns) / 1e9));
    return s;
  }
  nlohmann::json describe() const override {
    return {{"kind", "model"},       {"per", m_.per},     {"idle_watts", m_.idle_watts},
            {"max_watts", m_.max_watts}, {"units", m_.units}, {"curve", m_.curve},
            {"idle_node_watts", m_.idle_node_watts()}, {"max_node_watts", m_.node_watts(1.0)}};
  }
  double error_ratio() const override { return m_.error_ratio; }

 private:
  PowerModel m_;
};

bool zone_dir_name(const std::string& n) {
  return n.rfind("intel-rapl:", 0) == 0 || n.rfind("intel-rapl-mmio:", 0) == 0;
}

}  // namespace

uint64_t wrapped_delta(uint64_t last, uint64_t cur, uint64_t max_range) {
  if (cur >= last) return cur - last;
  if (max_range == 0 || last > max_range) return cur;  // unknown range: count from 0
  return (max_range - last) + cur;
}

Result<void> PowerModel::validate() const {
  auto bad = [](double w) { return !std::isfinite(w) || w < 0; };
  if (per != "vcpu" && per != "socket" && per != "node")
    return make_error("energy.model.per: must be one of vcpu, socket, node (got '{}')", per);
  if (bad(idle_watts)) return make_error("energy.model.idle_watts: must be a finite number >= 0 (got {})", idle_watts);
  if (bad(max_watts)) return make_error("energy.model.max_watts: must be a finite number >= 0 (got {})", max_watts);
  if (max_watts < idle_watts)
    return make_error("energy.model.max_watts: {} W is below idle_watts {} W (impossible)", max_watts, idle_watts);
  // No single vCPU draws 1 kW, no socket or node 100 kW: a typo in units.
  const double limit = per == "vcpu" ? 1000.0 : 100000.0;
  if (max_watts > limit)
    return make_error("energy.model.max_watts: {} W per {} is not a plausible value (limit {} W)", max_watts, per, limit);
  if (max_watts == 0) return make_error("energy.model.max_watts: must be > 0");
  if (curve.size() < 2 || curve.size() > 101)
    return make_error("energy.model.curve: needs 2..101 points (got {})", curve.size());
  for (size_t i = 0; i < curve.size(); i++) {
    if (!std::isfinite(curve[i]) || curve[i] < 0 || curve[i] > 1)
      return make_error("energy.model.curve[{}]: must be in [0, 1] (got {})", i, curve[i]);
    if (i > 0 && curve[i] < curve[i - 1])
      return make_error("energy.model.curve[{}]: must not decrease ({} after {})", i, curve[i], curve[i - 1]);
  }
  if (curve.front() != 0.0 || curve.back() != 1.0)
    return make_error("energy.model.curve: must start at 0 and end at 1 (fractions of max - idle)");
  if (error_ratio < 0 || error_ratio > 10 || !std::isfinite(error_ratio))
    return make_error("energy.model.error_ratio: must be in [0, 10] (got {})", error_ratio);
  return ok();
}

double PowerModel::node_watts(double u) const {
  if (!(u > 0)) u = 0;  // NaN too
  if (u > 1) u = 1;
  const double x = u * static_cast<double>(curve.size() - 1);
  size_t i = static_cast<size_t>(x);
  if (i >= curve.size() - 1) i = curve.size() - 2;
  const double f = curve[i] + (curve[i + 1] - curve[i]) * (x - static_cast<double>(i));
  const double n = units ? units : 1;
  return n * (idle_watts + (max_watts - idle_watts) * f);
}

Result<std::unique_ptr<PowerSource>> open_rapl(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return make_error("rapl: {} absent (no powercap driver)", root);
  std::vector<PowerZone> psys, pkg_dram;
  std::vector<fs::path> dirs;
  // Top-level zones (intel-rapl:0) and their subzones (intel-rapl:0:2); the
  // class directory lists both as symlinks.
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string n = e.path().filename().string();
    if (zone_dir_name(n)) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    auto name = read_line((d / "name").string());
    if (!name) continue;
    PowerZone z;
    z.name = *name;
    z.path = (d / "energy_uj").string();
    auto range = read_u64((d / "max_energy_range_uj").string());
    z.max_range = range ? *range : 0;
    if (z.name == "psys") psys.push_back(z);
    else if (z.name.rfind("package", 0) == 0 || z.name == "dram") pkg_dram.push_back(z);
    // core / uncore are parts of package: not added.
  }
  auto& zones = !psys.empty() ? psys : pkg_dram;
  if (zones.empty()) return make_error("rapl: no package, dram or psys zone under {}", root);
  for (auto& z : zones) {
    auto v = read_u64(z.path);
    if (!v)
      return make_error("rapl: {} not readable ({}); energy_uj is root-only since Linux 5.10", z.path,
                        v.error().message);
  }
  auto src = std::make_unique<RaplSource>(std::move(zones));
  auto first = src->sample(0, 0);  // primes last readings
  if (!first) return first.error();
  return std::unique_ptr<PowerSource>(std::move(src));
}

Result<std::unique_ptr<PowerSource>> open_hwmon(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return make_error("hwmon: {} absent", root);
  std::vector<fs::path> devs;
  for (const auto& e : fs::directory_iterator(root, ec)) devs.push_back(e.path());
  std::sort(devs.begin(), devs.end());
  std::vector<PowerZone> energy, power;
  for (const auto& d : devs) {
    std::vector<PowerZone> de, dp;
    for (const auto& f : fs::directory_iterator(d, ec)) {
      const std::string n = f.path().filename().string();
      const bool is_e = n.rfind("energy", 0) == 0 && n.ends_with("_input");
      const bool is_p = n.rfind("power", 0) == 0 && (n.ends_with("_input") || n.ends_with("_average"));
      if (!is_e && !is_p) continue;
      if (!read_u64(f.path().string())) continue;  // unreadable or not a number: not a usable sensor
      PowerZone z;
      auto dn = read_line((d / "name").string());
      z.name = (dn ? *dn : d.filename().string()) + "/" + n;
      z.path = f.path().string();
      (is_e ? de : dp).push_back(z);
    }
    // Per device: energy counters when it has any, else power sensors.
    // "_average" and "_input" of one channel would count twice: keep _input.
    if (!de.empty()) {
      for (auto& z : de) energy.push_back(z);
    } else {
      for (auto& z : dp) {
        const bool avg = z.path.ends_with("_average");
        if (avg) {
          std::string in = z.path.substr(0, z.path.size() - 8) + "_input";
          if (std::any_of(dp.begin(), dp.end(), [&](const PowerZone& o) { return o.path == in; })) continue;
        }
        power.push_back(z);
      }
    }
  }
  if (energy.empty() && power.empty()) return make_error("hwmon: no readable power or energy sensor under {}", root);
  std::sort(energy.begin(), energy.end(), [](auto& a, auto& b) { return a.path < b.path; });
  std::sort(power.begin(), power.end(), [](auto& a, auto& b) { return a.path < b.path; });
  auto src = std::make_unique<HwmonSource>(std::move(energy), std::move(power));
  auto first = src->sample(0, 0);
  if (!first) return first.error();
  return std::unique_ptr<PowerSource>(std::move(src));
}

std::unique_ptr<PowerSource> make_model_source(const PowerModel& m) { return std::make_unique<ModelSource>(m); }

Result<PowerChoice> choose_power_source(const std::string& wanted, const std::string& powercap_root,
                                        const std::string& hwmon_root, const PowerModel& model) {
  PowerChoice c;
  if (wanted == "auto" || wanted == "rapl") {
    auto r = open_rapl(powercap_root);
    if (r) {
      c.source = std::move(*r);
      return c;
    }
    if (wanted == "rapl") return r.error().with_context("energy.power_source");
    c.tried.push_back(r.error().message);
  }
  if (wanted == "auto" || wanted == "hwmon") {
    auto h = open_hwmon(hwmon_root);
    if (h) {
      c.source = std::move(*h);
      return c;
    }
    if (wanted == "hwmon") return h.error().with_context("energy.power_source");
    c.tried.push_back(h.error().message);
  }
  KAGAMI_TRY(model.validate());
  c.source = make_model_source(model);
  return c;
}

}  // namespace kagami::modules::energy
