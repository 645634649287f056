#include "core/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kagami::core {
namespace {

std::atomic<uint64_t> g_steps{0};

uint64_t crash_after() {
  static const uint64_t n = [] {
    const char* v = std::getenv("KAGAMI_TEST_CRASH_AFTER");
    return v && *v ? std::strtoull(v, nullptr, 10) : 0;
  }();
  return n;
}

uint64_t step_delay_ms() {
  static const uint64_t n = [] {
    const char* v = std::getenv("KAGAMI_TEST_STEP_DELAY_MS");
    return v && *v ? std::strtoull(v, nullptr, 10) : 0;
  }();
  return n;
}

}  // namespace

void crash_point(const char* what) {
  const uint64_t n = ++g_steps;
  if (step_delay_ms() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(step_delay_ms()));
  if (crash_after() != 0 && n == crash_after()) {
    // One line on stderr so the test log shows where it died; no stdio
    // buffering, no destructors, no atexit: as close to kill -9 as it gets.
    char line[256];
    const int len = std::snprintf(line, sizeof(line), "KAGAMI_TEST_CRASH_AFTER=%llu: killed after %s\n",
                                  static_cast<unsigned long long>(n), what);
    if (len > 0) (void)!::write(2, line, static_cast<size_t>(len));
    ::raise(SIGKILL);
    ::_exit(137);
  }
}

uint64_t crash_points_passed() { return g_steps.load(); }

}  // namespace kagami::core
