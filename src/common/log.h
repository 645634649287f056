// Structured logging for Kagami.
//
// Levels have a fixed meaning (after bpftrace's coding guidelines):
//   debug: detail for developers (libbpf's debug chatter lands here)
//   info:  a state change an operator cares about (program loaded, replaced)
//   warn:  something degraded but running (fallback hook in use)
//   error: an operation failed and was rolled back
// Output is one JSON object per line when json=true (for log pipelines),
// else spdlog's human format. libbpf's own print callback is routed here, so
// verifier logs and libbpf warnings end up in the same stream with a "libbpf"
// source field instead of on raw stderr.
#pragma once

#include <string>

#include <spdlog/spdlog.h>

namespace kagami::log {

struct Options {
  std::string level = "info";  // debug|info|warn|error
  bool json = false;
};

// Installs the default logger and the libbpf print callback. Idempotent.
void init(const Options& opts);

}  // namespace kagami::log
