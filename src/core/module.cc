#include "core/module.h"

#include <time.h>

namespace kagami::core {
namespace {

uint64_t now_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

class SystemClock final : public Clock {
 public:
  uint64_t monotonic_ns() const override { return now_ns(CLOCK_MONOTONIC); }
  uint64_t wall_ns() const override { return now_ns(CLOCK_REALTIME); }
};

}  // namespace

const Clock& Clock::system() {
  static const SystemClock c;
  return c;
}

}  // namespace kagami::core
