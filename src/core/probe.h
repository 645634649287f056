// Feature probe: which BPF hooks, map types, helpers, kfuncs and kernel
// facilities this kernel offers, so modules pick the best hook and fall back
// cleanly (`kagami probe`, docs/probe.md has every name and how it is probed).
//
// How each answer is obtained, cheapest first:
//   - kernel facts from /proc and /sys (version, sysctls, mounts);
//   - vmlinux BTF lookups (kfuncs, tcx/netkit attach types, register_kprobe);
//   - libbpf_probe_bpf_{prog_type,map_type,helper}: a tiny load the kernel
//     accepts or rejects, nothing attached;
//   - real trial loads AND attaches of the tiny programs in
//     bpf/probe/probe.bpf.c for the hooks whose program type alone proves
//     nothing (kprobe, fentry/fexit, LSM, tp_btf, raw_tp, uprobe, freplace,
//     iterators): a kernel may know BPF_PROG_TYPE_TRACING yet refuse every
//     fentry load (EPERM here), or know BPF_PROG_TYPE_KPROBE without kprobes.
// Each trial runs in its own bpf_object, so one refusal never hides another.
//
// Every probe is lazy and cached (bpftrace's BPFfeature): probe_feature()
// runs one probe at most once per process; probe_features() runs all of
// them once (well under a second) and caches the report. Both are
// thread-safe. Probing leaves nothing behind: every trial object, link and
// map is closed before the probe returns, and nothing is mounted.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"

namespace kagami::core {

// A kernel feature a module wants, and what it does without it.
struct FeatureNeed {
  std::string feature;   // a name from `kagami probe` ("tc", "xdp_native", "kprobe", ...)
  bool required = false; // false: the module falls back
  std::string fallback;  // what it uses instead, for the report
};

struct Feature {
  std::string name;      // stable, documented in docs/probe.md ("fentry", "ringbuf", ...)
  std::string category;  // prog_type | attach | map | helper | kfunc | kernel
  bool available = false;
  std::string detail;    // why not ("load: Operation not permitted"), or what ("6.18.44")
};

struct ProbeReport {
  std::vector<Feature> features;

  // Names and aliases ("sched_cls" = "tc", "freplace" = "ext") are accepted.
  bool has(std::string_view name) const;
  const Feature* find(std::string_view name) const;

  // {"features":[{"name","category","available","detail"}...],
  //  "summary":{"available":N,"unavailable":M}}
  nlohmann::json to_json() const;
  // Grouped by category, one feature per line, for terminals.
  std::string to_table() const;
};

// Runs every probe (once per process) and returns the cached report.
ProbeReport probe_features();

// Runs every probe again, bypassing and not touching the cache (for
// benchmarks and `kagami probe` in a long-lived process).
ProbeReport probe_features_fresh();

// Runs one probe (once per process). An unknown name yields a Feature with
// available=false and detail "unknown feature".
Feature probe_feature(std::string_view name);

// Every feature name probe_features() reports, in report order.
const std::vector<std::string>& feature_names();

// The outcome of matching a module's needs against a report.
struct Resolution {
  enum class State { Available, Fallback, Missing };
  struct Item {
    FeatureNeed need;
    State state = State::Missing;
    std::string detail;  // the probe's detail for an absent feature
  };
  std::vector<Item> items;

  // The state of one need by feature name; Missing for a name not needed.
  State state_of(std::string_view feature) const;
  bool available(std::string_view feature) const { return state_of(feature) == State::Available; }

  // True when no required need is missing.
  bool ok() const;
  // "" when ok(); else names every missing required feature with the
  // probe's reason, e.g. "kernel lacks required feature kprobe (load: ...)".
  std::string error() const;
  // The same as a Result, for KAGAMI_TRY at module start.
  Result<void> check() const;
  // One line per fallback taken: "kprobe unavailable (kernel built without
  // kprobes): using tracepoint".
  std::vector<std::string> fallbacks() const;
  nlohmann::json to_json() const;
};

Resolution resolve(const std::vector<FeatureNeed>& needs, const ProbeReport& report);

// --- internals shared by probe.cc and probe_kernel.cc --------------------
// probe_kernel.cc is the only part of the probe that calls libbpf or loads
// BPF; these are its entry points. Each returns one finished Feature.
namespace probe_detail {

Feature prog_type(const std::string& name);   // libbpf_probe_bpf_prog_type or a trial
Feature map_type(const std::string& name);    // libbpf_probe_bpf_map_type or a raw create
Feature helper(const std::string& name);      // libbpf_probe_bpf_helper
Feature kfunc(const std::string& name);       // vmlinux BTF lookup
Feature attach_mode(const std::string& name); // xdp_native/xdp_generic/tcx/netkit
Feature btf_vmlinux();
Feature bpf_stats();                          // BPF_ENABLE_STATS + the sysctl
Feature cgroup_id_inode();                    // BPF cgroup id == cgroup v2 inode, checked live

// The cgroup id bpf_get_current_cgroup_id() returns for the calling task,
// obtained by test-running probe_cgroup_id (BPF_PROG_TEST_RUN runs in the
// caller's context). Needs CAP_BPF.
Result<uint64_t> bpf_current_cgroup_id();

}  // namespace probe_detail

}  // namespace kagami::core
