// Module: a built-in capability (observability, security, energy, ...) made of
// BPF objects that the ProgramManager loads, plus the userspace that turns
// their maps and ring buffers into metrics, JSON and events.
//
// Life of a module inside the agent (docs/writing-a-module.md walks through
// writing one):
//
//   make_module(name)            registry (modules/<name>/CMakeLists.txt registers it)
//   plan(section, ctx)           config section -> LoadRequests; no kernel access
//   [agent loads/replaces/adopts the requests through the ProgramManager]
//   configure(pm)                fill userspace-written maps (interface slots, policy)
//   start(pm)                    optional: the module's own work (watches, timers)
//   event_sources()              ring buffers the agent's event loop drains
//   collect(pm) / snapshot(pm)   on every scrape / API call, from any thread
//   stop()                       before the module is disabled or the agent exits
//
// Every module gets one ModuleContext (node name, the feature resolution of
// its needs, the shared identity resolver, a clock, a logger and the event
// publisher) before plan(). Modules never probe the kernel, pick a node name
// or build an identity resolver of their own: the context is the one answer,
// so every module's series agree.
//
// Modules never call libbpf for loading; they read maps through
// ProgramManager::map_fd and the typed views of src/bpf/map_view.h.
//
// Thread safety: the agent calls plan/configure/start/stop with its apply
// lock held (one at a time), and collect/snapshot from scrape threads, one
// scrape per module at a time. Event decoders run on the event-loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "core/metrics.h"
#include "core/probe.h"
#include "core/program_manager.h"

namespace spdlog {
class logger;
}

namespace kagami::identity {
class Resolver;
}

namespace kagami::core {

// Time for modules: monotonic for intervals, wall clock for records. Tests
// swap in a fixed clock.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual uint64_t monotonic_ns() const = 0;  // CLOCK_MONOTONIC (what bpf_ktime_get_ns returns)
  virtual uint64_t wall_ns() const = 0;       // CLOCK_REALTIME
  static const Clock& system();
};

// Where events go: the agent's event bus (history, JSON lines, HTTP stream).
// publish() never blocks; a full sink drops and counts (docs/events.md).
class EventPublisher {
 public:
  virtual ~EventPublisher() = default;
  // `event` is a JSON object; the bus adds "module", "seq" and, when
  // missing, "time" (RFC 3339) and "mono_ns".
  virtual void publish(const std::string& module, nlohmann::json event) = 0;
  // Counts an event the module lost before publishing it (a record it could
  // not decode, a userspace queue that was full), by cause.
  virtual void count_drop(const std::string& module, const std::string& cause, uint64_t n = 1) = 0;
};

struct ModuleContext {
  std::string name;  // the module's own name ("obs")
  // The node label of every series: agent.node, else $NODE_NAME, else the
  // host name (resolved once by the agent).
  std::string node;
  // The module's needs() matched against this kernel at apply: modules pick
  // their hooks from here (features.state_of("xdp") ...) and never probe.
  Resolution features;
  identity::Resolver* identity = nullptr;  // shared, thread-safe; never null in the agent
  const Clock* clock = &Clock::system();
  std::shared_ptr<spdlog::logger> log;     // named "<module>", never null
  EventPublisher* events = nullptr;        // never null in the agent
};

// A BPF ring buffer that one of the module's programs writes (see
// include/kagami/abi/events.h for the record header and bpf/lib/events.h
// for the BPF side). The agent's event loop opens it through the manager,
// drains it and hands every record to decode().
struct EventSource {
  std::string program;    // the LoadRequest name that owns the map ("exec")
  std::string ring_map;   // BPF_MAP_TYPE_RINGBUF map name ("exec_events")
  std::string drops_map;  // per-CPU array of drops by cause (KG_DROP_*), "" if none
  // One record -> one JSON event. An Error counts as a "decode" drop and is
  // never published.
  std::function<Result<nlohmann::json>(std::span<const uint8_t> record)> decode;
};

class ReplayRun;

class Module {
 public:
  virtual ~Module() = default;
  virtual std::string name() const = 0;
  virtual std::vector<FeatureNeed> needs() const = 0;

  // The programs this module runs for its config section (YAML turned JSON).
  // Must not touch the kernel. An invalid section is an Error naming the
  // field. A module keeps a copy of `ctx`; the objects it points to
  // (identity, clock, log, events) live as long as the agent.
  virtual Result<std::vector<LoadRequest>> plan(const nlohmann::json& config, const ModuleContext& ctx) = 0;

  // Called after every successful apply, once the module's programs are
  // loaded, replaced, adopted or unchanged: writes what the programs read
  // from userspace-filled maps (obs: which interface slot an ifindex has).
  // An Error becomes an apply warning; the programs keep running.
  virtual Result<void> configure(const ProgramManager& pm) {
    (void)pm;
    return ok();
  }

  // Work of the module's own (watches, timers): start() after the first
  // successful configure(), stop() before the module is disabled or the
  // agent exits. Both are called once per enable; stop() must be prompt.
  virtual Result<void> start(const ProgramManager& pm) {
    (void)pm;
    return ok();
  }
  virtual void stop() {}

  // Ring buffers for the agent's event loop; empty for modules without events.
  virtual std::vector<EventSource> event_sources() const { return {}; }

  // Reads the module's maps (through pm) into metric families.
  virtual Result<std::vector<MetricFamily>> collect(const ProgramManager& pm) = 0;

  // The same counters as JSON, for the API and `kagami status`.
  virtual Result<nlohmann::json> snapshot(const ProgramManager& pm) = 0;

  // Replay capability (packet modules): a run of this module's replay
  // program over a capture (src/replay drives every module that has one in
  // one pass). nullptr: the module has no packet programs.
  // Both cheap to call on a fresh instance: replay asks every registered
  // module, and loads only the ones it drives.
  virtual bool has_replay() const { return false; }
  virtual Result<std::unique_ptr<ReplayRun>> open_replay() {
    return make_error("module {} has no replay program", name());
  }
};

// One module's replay program, loaded without attaching or pinning. The
// driver feeds it batches of frames in the layout of
// include/kagami/abi/replay.h through BPF_PROG_TEST_RUN on prog_fd().
class ReplayRun {
 public:
  virtual ~ReplayRun() = default;
  virtual int prog_fd() const = 0;
  // After each batch has run (every module's program): a module that
  // decodes in userspace drains the ring buffer its replay program filled.
  // An Error ends the replay.
  virtual Result<void> after_batch() { return ok(); }
  // After the last batch: the module's counters as top-level report sections
  // (named as in the tshark truth files: "gtpu", "pfcp", "ngap", ...). A
  // module checks its own consistency here (every frame counted).
  virtual Result<nlohmann::json> finish(uint64_t replayed_frames) = 0;
};

// Registry of built-in modules by name ("obs", ...); nullptr if unknown.
// Each module folder registers itself with one kagami_module() line; the
// list is generated at configure time (build/generated/module_registry.cc).
std::unique_ptr<Module> make_module(const std::string& name);
std::vector<std::string> builtin_module_names();

}  // namespace kagami::core

// In the module's .cc, at namespace scope: KAGAMI_REGISTER_MODULE(obs, obs::ObsModule)
// defines the factory the generated registry calls.
#define KAGAMI_REGISTER_MODULE(NAME, CLASS)                              \
  namespace kagami::core {                                               \
  std::unique_ptr<Module> kagami_make_module_##NAME() { return std::make_unique<CLASS>(); } \
  }
