// PerfCounter: see perf_event.h.
#include "common/perf_event.h"

#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace kagami {

std::string_view to_string(PerfEventKind k) {
  switch (k) {
    case PerfEventKind::HwInstructions: return "hw_instructions";
    case PerfEventKind::HwCycles: return "hw_cycles";
    case PerfEventKind::SwCpuClock: return "sw_cpu_clock";
    case PerfEventKind::SwTaskClock: return "sw_task_clock";
  }
  return "unknown";
}

bool is_hardware(PerfEventKind k) { return k == PerfEventKind::HwInstructions || k == PerfEventKind::HwCycles; }

namespace {

int paranoid_level() {
  std::ifstream f("/proc/sys/kernel/perf_event_paranoid");
  int v = 2;
  if (!(f >> v)) return 2;
  return v;
}

std::string explain(PerfEventKind kind, int err) {
  switch (err) {
    case ENOENT:
    case EOPNOTSUPP:
      return is_hardware(kind) ? "the kernel has no such hardware counter here (no PMU it can program: a VM "
                                 "without a virtual PMU, or an unsupported CPU model)"
                               : "the kernel does not support this software event";
    case EACCES:
    case EPERM:
      return "not permitted (perf_event_paranoid is " + std::to_string(paranoid_level()) +
             "; per-CPU events for all tasks need CAP_PERFMON or CAP_SYS_ADMIN, or paranoid <= 0)";
    case ENODEV: return "CPU offline or no such CPU";
    case EBUSY: return "the counter is taken (another user holds it exclusively)";
    case EINVAL: return "the kernel rejects the event attributes";
    default: return std::strerror(err);
  }
}

}  // namespace

Result<PerfCounter> PerfCounter::open_on_cpu(PerfEventKind kind, int cpu) {
  perf_event_attr a{};
  a.size = sizeof(a);
  switch (kind) {
    case PerfEventKind::HwInstructions:
      a.type = PERF_TYPE_HARDWARE;
      a.config = PERF_COUNT_HW_INSTRUCTIONS;
      break;
    case PerfEventKind::HwCycles:
      a.type = PERF_TYPE_HARDWARE;
      a.config = PERF_COUNT_HW_CPU_CYCLES;
      break;
    case PerfEventKind::SwCpuClock:
      a.type = PERF_TYPE_SOFTWARE;
      a.config = PERF_COUNT_SW_CPU_CLOCK;
      break;
    case PerfEventKind::SwTaskClock:
      a.type = PERF_TYPE_SOFTWARE;
      a.config = PERF_COUNT_SW_TASK_CLOCK;
      break;
  }
  // Counting, every task on this CPU, kernel and user; pinned (never
  // multiplexed); no inherit (bpf_perf_event_read_value refuses inherited
  // events); enabled now.
  a.pinned = 1;
  a.disabled = 0;
  a.inherit = 0;
  a.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
  const long fd = ::syscall(SYS_perf_event_open, &a, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return Error{"perf_event_open(" + std::string(to_string(kind)) + ", cpu " + std::to_string(cpu) +
                     "): " + std::strerror(err) + ": " + explain(kind, err),
                 err};
  }
  PerfCounter c;
  c.fd_.reset(static_cast<int>(fd));
  c.cpu_ = cpu;
  c.kind_ = kind;
  return c;
}

Result<uint64_t> PerfCounter::read() const {
  uint64_t v[3] = {};  // value, time enabled, time running (read_format above)
  const ssize_t n = ::read(fd_.get(), v, sizeof(v));
  if (n != static_cast<ssize_t>(sizeof(v)))
    return errno_error(n < 0 ? errno : EIO, "reading perf counter {} on cpu {}", to_string(kind_), cpu_);
  return v[0];
}

Result<std::vector<int>> parse_cpu_list(std::string_view text) {
  std::vector<int> out;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text.empty()) return out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view part = text.substr(pos, end - pos);
    const size_t dash = part.find('-');
    auto num = [](std::string_view s, int& v) {
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      return ec == std::errc() && p == s.data() + s.size() && v >= 0 && v < 65536;
    };
    int lo = 0, hi = 0;
    if (dash == std::string_view::npos) {
      if (!num(part, lo)) return make_error("bad CPU list part '{}' in '{}'", part, text);
      hi = lo;
    } else if (!num(part.substr(0, dash), lo) || !num(part.substr(dash + 1), hi) || hi < lo) {
      return make_error("bad CPU range '{}' in '{}'", part, text);
    }
    for (int c = lo; c <= hi; c++) out.push_back(c);
    pos = end + 1;
  }
  return out;
}

Result<std::vector<int>> online_cpus(const std::string& path) {
  std::ifstream f(path);
  if (!f) return errno_error(errno ? errno : ENOENT, "reading {}", path);
  std::stringstream ss;
  ss << f.rdbuf();
  auto r = parse_cpu_list(ss.str());
  if (!r) return r.error().with_context(path);
  return r;
}

}  // namespace kagami
