// /metrics rendering: exposition format details, and promtool (the real
// Prometheus parser and linter) as the judge of a rendered sample.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "agent/prometheus.h"

namespace kagami::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::vector<core::MetricFamily> sample_families() {
  core::ProgramInfo p;
  p.name = "counter";
  p.label = "/opt/x \"quoted\"\\path\nnewline";
  p.sha256 = std::string(64, 'a');
  p.generation = 3;
  p.progs = {{"count_xdp", 42, "xdp", 1000, 2500000000ull}};
  auto ap = core::AttachPoint::parse("xdp:eth0");
  p.attachments = {{*ap, "count_xdp", "xdp-native"}};
  auto fams = program_families({{p, "config"}});
  AgentFacts f;
  f.version = "0.1.0";
  f.node = "n1";
  f.uptime_seconds = 12.5;
  f.rss_bytes = 1 << 20;
  f.applies_ok = 2;
  auto agent = agent_families(f);
  fams.insert(fams.end(), agent.begin(), agent.end());
  core::MetricFamily hist{"kagami_obs_packet_size_bytes", "Packet sizes.", "histogram", {}};
  for (auto [le, v] : std::vector<std::pair<std::string, double>>{{"64", 3}, {"512", 7}, {"1500", 9}})
    hist.samples.push_back({{{"le", le}, {"iface", "eth0"}}, v, "_bucket"});
  hist.samples.push_back({{{"iface", "eth0"}}, 4321, "_sum"});
  hist.samples.push_back({{{"iface", "eth0"}}, 10, "_count"});
  fams.push_back(hist);
  fams.push_back({"kagami_obs_gtpu_packets_total", "GTP-U packets.\nBy TEID.", "counter",
                  {{{{"teid", "0x1"}, {"dir", "ul"}}, 5, ""}, {{{"teid", "0x2"}, {"dir", "dl"}}, 6, ""}}});
  return fams;
}

TEST(Prometheus, Escaping) {
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(escape_help("x\\y\nz\"q"), "x\\\\y\\nz\"q");  // quotes are legal in HELP
  EXPECT_EQ(sanitize_metric_name("kagami.obs-x"), "kagami_obs_x");
  EXPECT_EQ(sanitize_metric_name("9lives"), "_lives");
  EXPECT_EQ(format_value(3), "3");
  EXPECT_EQ(format_value(2.5), "2.5");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
  EXPECT_EQ(format_value(INFINITY), "+Inf");
  EXPECT_EQ(format_value(-INFINITY), "-Inf");
}

TEST(Prometheus, RendersHelpTypeAndSamples) {
  auto r = render_prometheus(sample_families());
  const std::string& t = r.text;
  EXPECT_THAT(t, HasSubstr("# HELP kagami_program_run_count_total "));
  EXPECT_THAT(t, HasSubstr("# TYPE kagami_program_run_count_total counter\n"));
  EXPECT_THAT(t, HasSubstr("kagami_program_run_count_total{id=\"42\",prog=\"count_xdp\",program=\"counter\",type=\"xdp\"} 1000\n"));
  EXPECT_THAT(t, HasSubstr("kagami_program_run_time_seconds_total{id=\"42\",prog=\"count_xdp\",program=\"counter\",type=\"xdp\"} 2.5\n"));
  EXPECT_THAT(t, HasSubstr("source=\"/opt/x \\\"quoted\\\"\\\\path\\nnewline\""));
  EXPECT_THAT(t, HasSubstr("# HELP kagami_obs_gtpu_packets_total GTP-U packets.\\nBy TEID.\n"));
  EXPECT_THAT(t, HasSubstr("kagami_agent_build_info{node=\"n1\",version=\"0.1.0\"} 1\n"));
}

TEST(Prometheus, HistogramGetsInfBucketSumAndCount) {
  auto r = render_prometheus(sample_families());
  const std::string& t = r.text;
  EXPECT_THAT(t, HasSubstr("kagami_obs_packet_size_bytes_bucket{iface=\"eth0\",le=\"64\"} 3\n"));
  EXPECT_THAT(t, HasSubstr("kagami_obs_packet_size_bytes_bucket{iface=\"eth0\",le=\"+Inf\"} 10\n"));
  EXPECT_THAT(t, HasSubstr("kagami_obs_packet_size_bytes_sum{iface=\"eth0\"} 4321\n"));
  EXPECT_THAT(t, HasSubstr("kagami_obs_packet_size_bytes_count{iface=\"eth0\"} 10\n"));
}

TEST(Prometheus, MergesSameNameAndDropsTypeConflicts) {
  std::vector<core::MetricFamily> f = {
      {"m_total", "h", "counter", {{{{"a", "1"}}, 1, ""}}},
      {"m_total", "h", "counter", {{{{"a", "2"}}, 2, ""}, {{{"a", "1"}}, 9, ""}}},
      {"m_total", "h", "gauge", {{{{"a", "3"}}, 3, ""}}},
  };
  auto r = render_prometheus(f);
  EXPECT_EQ(r.text,
            "# HELP m_total h\n# TYPE m_total counter\nm_total{a=\"1\"} 1\nm_total{a=\"2\"} 2\n");
  EXPECT_EQ(r.warnings.size(), 2u);  // the duplicate series and the gauge family
}

// promtool is Prometheus' own parser and linter; it exits non-zero on any
// parse error or lint problem (missing HELP, counter without _total, ...).
int promtool_check(const std::string& text, std::string* output) {
  char path[] = "/tmp/kagami-metrics-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  (void)!write(fd, text.data(), text.size());
  close(fd);
  const std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  output->clear();
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) output->append(buf, n);
  int rc = pclose(p);
  unlink(path);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(Prometheus, PromtoolAcceptsRenderedSample) {
  if (system("command -v promtool >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "promtool not installed (apt-get install prometheus)";
  std::string out;
  const std::string text = render_prometheus(sample_families()).text;
  EXPECT_EQ(promtool_check(text, &out), 0) << out << "\n--- rendered:\n" << text;
}

TEST(Prometheus, PromtoolRejectsWhatWeWouldNeverRender) {
  // Guards the judge itself: a broken exposition must fail the check.
  if (system("command -v promtool >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "promtool not installed (apt-get install prometheus)";
  std::string out;
  EXPECT_NE(promtool_check("# TYPE x counter\nx{a=\"unterminated} 1\n", &out), 0) << out;
}

}  // namespace
}  // namespace kagami::agent
