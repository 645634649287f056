#include "common/log.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace kagami::log {
namespace {

// libbpf hands us printf-style fragments; each call is one line (it ends in
// '\n'), so format it, strip the newline and re-emit it at a mapped level.
int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  char buf[2048];
  int n = std::vsnprintf(buf, sizeof(buf), fmt, args);
  if (n <= 0) return n;
  std::string msg(buf, std::min<size_t>(static_cast<size_t>(n), sizeof(buf) - 1));
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();
  if (msg.empty()) return n;
  switch (level) {
    case LIBBPF_WARN:
      spdlog::warn("libbpf: {}", msg);
      break;
    case LIBBPF_INFO:
      spdlog::debug("libbpf: {}", msg);  // libbpf's info is too chatty for operators
      break;
    default:
      spdlog::trace("libbpf: {}", msg);
  }
  return n;
}

}  // namespace

void init(const Options& opts) {
  auto logger = spdlog::get("kagami");
  if (!logger) logger = spdlog::stderr_color_mt("kagami");
  spdlog::set_default_logger(logger);
  if (opts.json) {
    spdlog::set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","pid":%P,"msg":"%v"})",
        spdlog::pattern_time_type::utc);
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  }
  spdlog::set_level(spdlog::level::from_str(opts.level));
  libbpf_set_print(libbpf_print);
}

}  // namespace kagami::log
