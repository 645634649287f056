// libFuzzer target for the workload-identity parsers: cgroup paths and
// /proc/<pid>/cgroup content come from the kernel, but a container can name
// its own nested cgroups anything, so the parsers see attacker-chosen text.
// Beyond "no crash", the invariants every caller relies on are checked:
// ids are 64 hex, pod UIDs carry dashes, and a pod always has a QoS class.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "identity/identity.h"

namespace {

void check(const kagami::identity::Workload& w) {
  if (!w.container_id.empty() && w.container_id.size() != 64) __builtin_trap();
  if (!w.pod_uid.empty()) {
    if (w.pod_uid.size() != 36 && w.pod_uid.size() != 32) __builtin_trap();
    if (w.pod_uid.find('_') != std::string::npos) __builtin_trap();
    if (w.qos.empty()) __builtin_trap();
  } else if (!w.qos.empty()) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto w = kagami::identity::parse_cgroup_path(in);
  if (w.cgroup_path != in) __builtin_trap();
  check(w);
  check(kagami::identity::parse_proc_cgroup(in));
  return 0;
}
