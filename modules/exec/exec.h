// The "exec" built-in module: one event per successful execve/execveat on
// the node, from the tracepoint sched/sched_process_exec, streamed through
// the agent's event pipeline (modules/exec/README.md, docs/events.md); or
// from tp_btf sched_process_exec where the kernel has it.
//
//   config   modules.exec: {rate, burst, ring_kb, cgroup, hooks}
//   events   {"kind":"exec","pid","tgid","ppid","uid","gid","comm","filename",
//             "filename_truncated","cgroup_id","workload":{...}}
//   metrics  kagami_exec_execs_total{node,outcome=seen|sent|out_of_scope};
//            drops (ring_full, rate_limit, decode) are the bus's
//            kagami_events_dropped_total{module="exec",cause}
//
// Thread safety: plan/configure/start/stop/collect/snapshot as core::Module
// says; the decoder (event_sources()) captures only the identity resolver,
// which is thread-safe, and runs on the agent's event-loop thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <thread>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "core/module.h"

namespace kagami::identity {
class Resolver;
}

namespace kagami::modules {

// Which object: tp_btf (typed arguments, preferred) or the classic
// tracepoint (fallback). Both write the same maps and records.
enum class ExecHooks { TpBtf, Tracepoint };
const char* to_string(ExecHooks h);

struct ExecConfig {
  uint64_t rate = 1000;   // events per second per cgroup and CPU; 0 = unlimited
  uint64_t burst = 2000;  // token-bucket depth, events
  uint32_t ring_kb = 256; // ring buffer size: a power of two, >= the page size
  std::string cgroup;     // "" = every task; else only tasks under this cgroup v2 directory
  std::string hooks = "auto";  // auto | tp_btf | tracepoint
};

// Unknown keys and bad values are errors naming the field ("exec.ring_kb: ...").
Result<ExecConfig> parse_exec_config(const nlohmann::json& section);

// auto: tp_btf when available; an explicit tp_btf the kernel lacks is an
// error, not a silent fallback.
Result<ExecHooks> choose_exec_hooks(const std::string& wanted, bool tp_btf_available);

// exec.bpf.o / exec_btf.bpf.o with the ring sized to ring_kb (the object's
// BTF patched).
Result<std::vector<uint8_t>> exec_object_bytes(uint32_t ring_kb, ExecHooks h = ExecHooks::Tracepoint);

// The load request: one object, one hook; a changed ring size resets the
// ring (MapMigration reset) instead of refusing the replace.
Result<core::LoadRequest> exec_load_request(const ExecConfig& c, ExecHooks h = ExecHooks::Tracepoint);

// One ring record -> the event's JSON (without the bus's envelope fields
// other than kind and mono_ns). `resolver` may be null (no "workload").
Result<nlohmann::json> decode_exec_record(std::span<const uint8_t> rec, identity::Resolver* resolver);

// start()/stop(): with exec.cgroup set, a watch re-points the program's
// scope every second when the directory was removed and created again (a
// new cgroup, e.g. a restarted pod's slice): the cgroup array keeps the old,
// dead cgroup otherwise and every exec would be out of scope.
class ExecModule : public core::Module {
 public:
  ~ExecModule() override;
  std::string name() const override { return "exec"; }
  std::vector<core::FeatureNeed> needs() const override;
  Result<std::vector<core::LoadRequest>> plan(const nlohmann::json& config, const core::ModuleContext& ctx) override;
  Result<void> configure(const core::ProgramManager& pm) override;
  Result<void> start(const core::ProgramManager& pm) override;
  void stop() override;
  std::vector<core::EventSource> event_sources() const override;
  Result<std::vector<core::MetricFamily>> collect(const core::ProgramManager& pm) override;
  Result<nlohmann::json> snapshot(const core::ProgramManager& pm) override;

  const ExecConfig& config() const { return config_; }
  ExecHooks hooks() const { return hooks_; }

 private:
  void watch_scope(std::string cgroup, int scope_fd);

  core::ModuleContext ctx_;
  ExecConfig config_;
  ExecHooks hooks_ = ExecHooks::Tracepoint;
  // The scope watch (start/stop).
  std::thread watch_;
  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  bool watch_stop_ = false;           // guarded by watch_mu_
  std::atomic<bool> watching_{false};
  std::atomic<uint64_t> scope_refreshes_{0};
};

}  // namespace kagami::modules
