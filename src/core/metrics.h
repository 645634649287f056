// MetricFamily: what a module hands to the agent's /metrics endpoint.
// Plain data; the agent renders Prometheus text format from it. Label sets
// are bounded by the module (top-N plus an "other" series, each module's README lists its families).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace kagami::core {

struct Sample {
  std::map<std::string, std::string> labels;
  double value = 0;
  std::string suffix;  // histogram parts: "_bucket", "_sum", "_count"; else ""
};

struct MetricFamily {
  std::string name;  // kagami_<module>_<what>[_total]
  std::string help;
  std::string type;  // counter | gauge | histogram
  std::vector<Sample> samples;
};

}  // namespace kagami::core
