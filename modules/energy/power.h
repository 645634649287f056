// Node power sources for the energy module (docs/energy.md, "Node power"):
//
//   RaplSource   powercap sysfs (intel-rapl:*, intel-rapl-mmio:*): psys when
//                present, else every package plus every dram zone (core and
//                uncore are inside package and are not added); counter wrap
//                at max_energy_range_uj handled.
//   HwmonSource  hwmon power sensors: energyN_input (cumulative uJ) when a
//                device has them, else powerN_input (uW) times the interval.
//   ModelSource  a power model from config: idle and maximum watts per vCPU,
//                per socket or per node, and a utilisation curve.
//
// All of them take a root directory so tests run them on fake sysfs trees.
// Each reports energy over an interval in integer nanojoules: the
// attribution arithmetic (attribution.h) then conserves energy exactly.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"

namespace kagami::modules::energy {

// One counter zone (RAPL) or sensor (hwmon) that contributes to node energy.
struct PowerZone {
  std::string name;        // "package-0", "dram", "psys", "hwmon0/power1"
  std::string path;        // the file read
  uint64_t max_range = 0;  // wrap point in the file's unit (RAPL); 0 = no wrap
  uint64_t last = 0;       // last raw reading
  bool have_last = false;
  uint64_t wraps = 0;      // wraps seen
};

// The power model: P(u) = idle + (max - idle) * curve(u) for each unit
// (vCPU, socket or node), u = utilisation in [0, 1].
struct PowerModel {
  std::string per = "vcpu";   // vcpu | socket | node
  double idle_watts = 0.74;   // Cloud Carbon Footprint, AWS average min watts per vCPU
  double max_watts = 3.5;     // Cloud Carbon Footprint, AWS average max watts per vCPU
  // curve[i] = fraction of (max - idle) at utilisation i/(n-1); linearly
  // interpolated. Default linear (CCF). SPECpower-style 11 points allowed.
  std::vector<double> curve = {0.0, 1.0};
  uint32_t units = 0;         // vCPUs/sockets; 0 = from the machine at plan()
  double error_ratio = 0.4;   // the documented error estimate of a model (docs/energy.md)

  // Errors name the field: negative, NaN, max < idle, absurd values, a
  // curve that is not non-decreasing in [0, 1] from 0 to 1.
  Result<void> validate() const;
  // Watts of the whole node at utilisation u (clamped to [0, 1]).
  double node_watts(double u) const;
  double idle_node_watts() const { return node_watts(0.0); }
};

// What a source says about one interval.
struct EnergySample {
  uint64_t energy_nj = 0;  // node energy over the interval
  bool first = false;      // first reading: no interval yet (energy 0)
};

class PowerSource {
 public:
  virtual ~PowerSource() = default;
  virtual std::string kind() const = 0;  // rapl | hwmon | model
  // Energy since the previous call. `interval_ns` and `utilisation` feed the
  // model and the power-sensor integration; counters ignore them.
  virtual Result<EnergySample> sample(uint64_t interval_ns, double utilisation) = 0;
  virtual nlohmann::json describe() const = 0;  // zones / model, for the info metric and JSON
  virtual double error_ratio() const = 0;       // relative error estimate (docs/energy.md)
};

// Finds the zones under `root` (default /sys/class/powercap) and reads
// them once; an Error says why RAPL is not usable ("no intel-rapl zones",
// "energy_uj not readable (root only since Linux 5.10)").
Result<std::unique_ptr<PowerSource>> open_rapl(const std::string& root);
// Same for hwmon (default /sys/class/hwmon).
Result<std::unique_ptr<PowerSource>> open_hwmon(const std::string& root);
std::unique_ptr<PowerSource> make_model_source(const PowerModel& m);

// Counter delta with wrap: `cur` after `last` on a counter that wraps at
// `max_range` (RAPL: max_energy_range_uj). One wrap at most is assumed.
uint64_t wrapped_delta(uint64_t last, uint64_t cur, uint64_t max_range);

struct PowerChoice {
  std::unique_ptr<PowerSource> source;
  std::vector<std::string> tried;  // "rapl: no intel-rapl zones under /sys/class/powercap", ...
};
// The first source that works, in order rapl, hwmon, model, or the one
// configured ("auto" | "rapl" | "hwmon" | "model"). An explicit source that
// does not work is an Error.
Result<PowerChoice> choose_power_source(const std::string& wanted, const std::string& powercap_root,
                                        const std::string& hwmon_root, const PowerModel& model);

}  // namespace kagami::modules::energy
