// PerfCounter: one perf_event_open(2) counting event, owned (RAII, move-only),
// for modules that put counters into a BPF_MAP_TYPE_PERF_EVENT_ARRAY and read
// them with bpf_perf_event_read_value() (energy's instructions counter).
//
// Counting only (no sampling, no ring buffer): the kernel keeps the count and
// BPF reads it on the CPU it belongs to. open_on_cpu() opens a per-CPU event
// (pid = -1, cpu = N), pinned so it is never multiplexed away: a pinned
// event that cannot get a counter goes into an error state instead of
// silently counting a fraction of the time.
//
// Errors name the event and the CPU and explain the errno in the terms an
// operator can act on (ENOENT/EOPNOTSUPP: this CPU model or hypervisor
// exposes no such counter; EACCES/EPERM: perf_event_paranoid and the missing
// capability; ENODEV: CPU offline).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "common/result.h"

namespace kagami {

// The events the platform knows by name. Hardware ones need a PMU the kernel
// can program (bare metal, or a hypervisor that passes the vPMU through);
// software ones always exist and are meant for tests of the perf-array path.
enum class PerfEventKind {
  HwInstructions,  // PERF_TYPE_HARDWARE / PERF_COUNT_HW_INSTRUCTIONS
  HwCycles,        // PERF_TYPE_HARDWARE / PERF_COUNT_HW_CPU_CYCLES
  SwCpuClock,      // PERF_TYPE_SOFTWARE / PERF_COUNT_SW_CPU_CLOCK (ns)
  SwTaskClock,     // PERF_TYPE_SOFTWARE / PERF_COUNT_SW_TASK_CLOCK (ns)
};
std::string_view to_string(PerfEventKind k);  // "hw_instructions", ...
bool is_hardware(PerfEventKind k);

class PerfCounter {
 public:
  PerfCounter() = default;
  // A counting event of `kind` on `cpu` for every task (needs CAP_PERFMON or
  // root, or perf_event_paranoid <= 0). Enabled at once.
  static Result<PerfCounter> open_on_cpu(PerfEventKind kind, int cpu);

  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }
  int cpu() const { return cpu_; }
  PerfEventKind kind() const { return kind_; }
  // The count so far, read(2) from userspace (tests and diagnostics; BPF
  // reads through the perf array).
  Result<uint64_t> read() const;

 private:
  Fd fd_;
  int cpu_ = -1;
  PerfEventKind kind_ = PerfEventKind::HwInstructions;
};

// Online CPUs from /sys/devices/system/cpu/online ("0-3,6"): sorted ids.
// Error when the file is missing or malformed (names the file and the text).
Result<std::vector<int>> online_cpus(const std::string& path = "/sys/devices/system/cpu/online");
// Parses a kernel CPU list ("0-3,6", "" = none); an Error names the bad part.
Result<std::vector<int>> parse_cpu_list(std::string_view text);

}  // namespace kagami
