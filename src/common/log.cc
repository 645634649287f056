#include "common/log.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <string>

#include <spdlog/pattern_formatter.h>
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

// "%*" in json mode: the message as a JSON string body. Messages carry
// operator input (paths, YAML errors, verifier output) with quotes,
// backslashes and newlines; unescaped, one such message breaks the log line
// for every JSON log pipeline.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static const char* hex = "0123456789abcdef";
    for (char ch : std::string_view(msg.payload.data(), msg.payload.size())) {
      const auto c = static_cast<unsigned char>(ch);
      switch (c) {
        case '"': dest.append(std::string_view("\\\"")); break;
        case '\\': dest.append(std::string_view("\\\\")); break;
        case '\n': dest.append(std::string_view("\\n")); break;
        case '\r': dest.append(std::string_view("\\r")); break;
        case '\t': dest.append(std::string_view("\\t")); break;
        default:
          if (c < 0x20) {
            const char esc[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            dest.append(esc, esc + sizeof(esc));
          } else {
            dest.push_back(ch);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessageFlag>(); }
};

}  // namespace

void init(const Options& opts) {
  auto logger = spdlog::get("kagami");
  if (!logger) logger = spdlog::stderr_color_mt("kagami");
  spdlog::set_default_logger(logger);
  if (opts.json) {
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    f->add_flag<JsonMessageFlag>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","pid":%P,"msg":"%*"})");
    spdlog::set_formatter(std::move(f));
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  }
  spdlog::set_level(spdlog::level::from_str(opts.level));
  libbpf_set_print(libbpf_print);
}

}  // namespace kagami::log
