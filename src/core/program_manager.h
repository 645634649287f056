// ProgramManager: the core of the platform. Loads, verifies, attaches,
// replaces and unloads BPF objects, built-in modules and operators' custom
// code alike, and keeps them running across agent restarts through pins.
//
// Pin layout (docs/program-manager.md has the full contract):
//   <pin_root>/<name>/meta                 meta.json (what was loaded: source, sha256, attach,
//                                          generation) in a one-entry array map: bpffs holds
//                                          only BPF objects and refuses '.' in names
//   <pin_root>/<name>/maps/<map>           every map of the object ('.' -> '_': _rodata)
//   <pin_root>/<name>/progs/<prog>         every program
//   <pin_root>/<name>/links/<n>            bpf_links (hooks that have them)
//   <pin_root>/_xdp_chain/<ifname>/        XDP chain root: root, link, slots (shared)
// Hooks without links (TC via netlink, XDP chain slots) are recorded in
// meta.json so a restarted agent can find and detach them.
//
// Guarantees:
//   - a failed load/replace leaves everything already loaded untouched;
//   - replace is atomic per hook (bpf_link_update, or the XDP chain slot /
//     TC filter replaced in place) and carries map state over;
//   - unload removes exactly what this manager pinned and attached;
//   - all methods are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "core/attach.h"

namespace kagami::core {

struct ProgramSource {
  std::string path;               // a .bpf.o on disk, or
  std::vector<uint8_t> bytes;     // an embedded object (built-in modules)
  std::string label;              // shown in messages and listings
};

// How to carry one map across a replace when its layout changed.
struct MapMigration {
  enum class Rule {
    Refuse,  // default: a layout change is an error naming the map
    Reset,   // start the new map empty
    Extend,  // same key, larger value: old values copied, tail zeroed
  };
  std::string map;
  Rule rule = Rule::Refuse;
};

struct LoadRequest {
  std::string name;  // unique per manager: [a-z0-9_-]{1,32}, not starting with '_'

  ProgramSource source;
  std::vector<AttachPoint> attach;
  bool builtin = false;  // custom code is subject to the trust policy
  std::vector<MapMigration> migrations;  // used by replace()
  // Load with the maps of this already-loaded program: every map of the same
  // name and layout is the same kernel map (not a copy), so several loads of
  // one object count into one set of maps. A module uses it to put one
  // chain-aware XDP program on several interfaces (each chain slot and chain
  // map is per interface, so each interface takes a load of its own).
  // Internal maps (.rodata/.bss/...) and the XDP chain map are never shared.
  std::string share_maps_with;
};

struct MapInfo {
  std::string name;
  uint32_t id = 0;
  std::string type;  // "hash", "percpu_array", ...
  uint32_t key_size = 0, value_size = 0, max_entries = 0;
};

struct ProgInfo {
  std::string name;
  uint32_t id = 0;
  std::string type;          // "xdp", "sched_cls", "tracepoint", ...
  uint64_t run_cnt = 0;      // kernel BPF stats (enabled while the manager lives)
  uint64_t run_time_ns = 0;
};

struct AttachmentInfo {
  AttachPoint point;
  std::string program;   // program name in the object
  std::string mechanism; // "bpf_link", "xdp-native", "xdp-generic", "xdp-chain[2]", "tc-prio:100"
};

struct ProgramInfo {
  std::string name;
  std::string label;
  std::string sha256;
  bool builtin = false;
  bool adopted = false;      // found pinned at start-up rather than loaded by this process
  uint32_t generation = 1;   // 1 + number of successful replaces
  std::vector<ProgInfo> progs;
  std::vector<MapInfo> maps;
  std::vector<AttachmentInfo> attachments;
};

struct TrustPolicy {
  std::set<std::string> allowed_sha256;      // empty: any object
  std::set<std::string> allowed_prog_types;  // for custom code; empty: any
};

// Kernel BPF run-time statistics (run_cnt, run_time_ns). While they are on,
// every run of every BPF program on the node, not only ours, pays for two
// clock reads (docs/performance.md, "BPF run-time stats").
enum class StatsMode {
  Always,    // on for as long as the manager lives (library default, tests)
  OnDemand,  // off; sample_stats() turns them on for one window (the agent's default)
};

struct ManagerOptions {
  std::string pin_root = "/sys/fs/bpf/kagami";
  TrustPolicy trust;
  StatsMode stats = StatsMode::Always;
};

// run_cnt / run_time_ns accumulated by one program during a sampling window.
struct StatsSample {
  std::string program;  // manager name
  std::string prog;     // program inside the object
  uint32_t id = 0;
  uint64_t run_cnt = 0, run_time_ns = 0;
};

class ProgramManager {
 public:
  // Mounts bpffs if needed, enables kernel BPF run-time stats (StatsMode::
  // Always), and adopts every program found pinned under pin_root (no
  // reload, no reset), finishing or undoing whatever a crash interrupted.
  static Result<std::unique_ptr<ProgramManager>> create(ManagerOptions opts);
  virtual ~ProgramManager() = default;

  virtual Result<ProgramInfo> load(const LoadRequest& req) = 0;
  virtual Result<ProgramInfo> replace(const std::string& name, const LoadRequest& req) = 0;
  virtual Result<void> unload(const std::string& name) = 0;

  virtual std::vector<ProgramInfo> list() const = 0;
  virtual Result<ProgramInfo> get(const std::string& name) const = 0;

  // A new fd on one map of a loaded program, for modules that read counters.
  virtual Result<Fd> map_fd(const std::string& name, const std::string& map) const = 0;

  // Pinned programs that create() found but could not adopt (damaged pins),
  // one message each; empty when everything was adopted.
  virtual std::vector<std::string> adoption_errors() const { return {}; }

  // Turns kernel BPF stats on for `window` (BPF_ENABLE_STATS, as bpftop
  // does), and returns what each program ran meanwhile. Does not hold the
  // manager's lock while it waits.
  virtual Result<std::vector<StatsSample>> sample_stats(std::chrono::milliseconds window) const = 0;

  virtual const ManagerOptions& options() const = 0;
};

}  // namespace kagami::core
