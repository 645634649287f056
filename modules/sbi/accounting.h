// Accounting: SBI exchanges -> bounded counters and latency histograms, for
// Prometheus (metrics()) and the JSON snapshot (to_json()).
//
// Label sets are bounded (docs/sbi.md, "Metrics"): at most kMaxSeries
// (service, method, status) series and kMaxTemplates path templates; an
// exchange past either bound is counted under service/template "other"
// and in `overflow`.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/metrics.h"
#include "modules/sbi/decoder.h"

namespace kagami::sbi {

// Request-to-response latency buckets, seconds (upper bounds). SBI calls
// inside one core take 0.5-50 ms; timeouts are seconds.
inline constexpr std::array<double, 13> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                           0.1,    0.25,  0.5,    1.0,   2.5,   5.0};

struct Histogram {
  std::array<uint64_t, kLatencyBuckets.size()> buckets{};  // not cumulative
  uint64_t count = 0;
  double sum = 0;  // seconds
  void add(double seconds);
};

class Accounting {
 public:
  static constexpr size_t kMaxSeries = 512;
  static constexpr size_t kMaxTemplates = 256;

  void add(const Exchange& e);

  std::vector<core::MetricFamily> metrics(const std::string& node) const;
  nlohmann::json to_json() const;

  uint64_t total() const { return total_; }
  // (service, method, status) -> exchanges; service "" is "/".
  const std::map<std::tuple<std::string, std::string, int>, uint64_t>& requests() const { return requests_; }
  const std::map<std::pair<std::string, std::string>, Histogram>& latency() const { return latency_; }
  const std::map<std::tuple<std::string, std::string, std::string>, uint64_t>& templates() const { return templates_; }

 private:
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  std::map<std::pair<std::string, std::string>, Histogram> latency_;  // (service, method)
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> templates_;  // service, method, template
  uint64_t total_ = 0, overflow_ = 0;
};

}  // namespace kagami::sbi
