// Prometheus text exposition (format 0.0.4) for /metrics.
//
// render_prometheus() turns MetricFamily data (from modules and from the
// agent itself) into the text format: one "# HELP" and one "# TYPE" line per
// family, label values escaped (\\, \", \n), names outside
// [a-zA-Z_:][a-zA-Z0-9_:]* repaired to '_', histogram samples written with
// their _bucket/_sum/_count suffix and a +Inf bucket guaranteed. Families with
// the same name are merged when their types agree; a later family whose type
// conflicts is dropped (and counted in the returned warnings), because a
// scrape with two TYPE lines for one name is rejected whole by Prometheus.
#pragma once

#include <string>
#include <vector>

#include "core/metrics.h"
#include "core/program_manager.h"

namespace kagami::agent {

struct RenderResult {
  std::string text;
  std::vector<std::string> warnings;  // families dropped or repaired
};

RenderResult render_prometheus(const std::vector<core::MetricFamily>& families);

// Escaping helpers (exposed for tests).
std::string escape_label_value(const std::string& v);
std::string escape_help(const std::string& v);
std::string sanitize_metric_name(const std::string& name);
std::string format_value(double v);

// Per-program families from the manager's list: kagami_program_info,
// kagami_program_run_count_total, kagami_program_run_time_seconds_total,
// kagami_program_generation, kagami_program_attachments.
// origin_of(name) gives the "origin" label.
struct ProgramRow {
  core::ProgramInfo info;
  std::string origin;
};
std::vector<core::MetricFamily> program_families(const std::vector<ProgramRow>& programs);

struct AgentFacts {
  std::string version;
  std::string node;
  double start_time_seconds = 0;  // unix time
  double uptime_seconds = 0;
  double rss_bytes = 0;
  double cpu_seconds = 0;
  uint64_t applies_ok = 0, applies_failed = 0;
  bool last_apply_ok = true;
  uint64_t collect_errors = 0;
};
std::vector<core::MetricFamily> agent_families(const AgentFacts& f);

}  // namespace kagami::agent
