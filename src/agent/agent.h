// Agent: the node daemon (`kagami agent`).
//
// Owns the ProgramManager (which adopts programs pinned by a previous run, so
// stopping or killing the agent never stops the data plane), the enabled
// modules, the control socket and the HTTP server. Configuration is applied as
// a diff (agent/plan.h): only programs whose object, attach list or module
// section changed are touched; programs loaded ad hoc through the CLI are
// left alone. An invalid configuration is rejected whole before anything in
// the kernel changes.
//
// Origins (config / module:<m> / cli) survive restarts in a small JSON state
// file (default /run/kagami/agent-state.json, beside the socket): bpffs holds
// only pins, and the manager's meta.json describes objects, not why they run.
//
// Thread-safety: every public method may be called from any thread; mutating
// operations are serialized by one mutex. /metrics does not take it: it
// reads a published view and the manager's lock-free listing, and a slow
// module cannot hold a scrape past its collect deadline.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/config.h"
#include "agent/plan.h"
#include "agent/protocol.h"
#include "common/result.h"
#include "core/module.h"
#include "core/program_manager.h"
#include "identity/identity.h"

namespace kagami::agent {

class ControlServer;
class HttpServer;
class EventBus;   // [events]
class EventLoop;  // [events]

struct AgentOptions {
  std::string config_path;  // "" = built-in defaults (docs/config.md)
  // Command-line overrides of the agent: section.
  std::optional<std::string> http, socket, pin_root, state_file;
};

class Agent {
 public:
  // Loads the config, creates the manager (adopting pins), applies the config.
  // A config that does not parse is an error; a kernel failure while applying
  // it is logged and reported by `kagami status`, and the agent still starts.
  static Result<std::unique_ptr<Agent>> create(const AgentOptions& opts);
  ~Agent();

  // Opens the control socket and the HTTP server.
  Result<void> start();
  // Blocks SIGHUP/SIGTERM/SIGINT and serves them until SIGTERM/SIGINT or
  // stop(); SIGHUP re-reads the config file. Returns the exit code.
  int run();
  void stop();

  // Control-socket dispatch (also used by tests directly).
  Result<nlohmann::json> handle(const Request& req);

  // Re-reads `path` (or the current config file when empty) and applies it.
  Result<nlohmann::json> reload(const std::string& path);

  // HTTP views.
  std::string metrics_text();
  nlohmann::json programs_json();
  Result<nlohmann::json> program_json(const std::string& name);
  nlohmann::json attachments_json();
  nlohmann::json maps_json();
  nlohmann::json stats_json();
  nlohmann::json modules_json();
  nlohmann::json status_json();
  // Turns kernel BPF stats on for `window` only (agent.bpf_stats:
  // on_demand) and returns each program's runs and run time in it.
  Result<nlohmann::json> sample_stats_json(std::chrono::milliseconds window);

  std::string http_address() const;  // as bound (port 0 resolved)

  // [events] The event bus (history, sinks, followers; docs/events.md) and
  // its counters as JSON. Defined in agent_events.cc.
  EventBus& event_bus();
  nlohmann::json events_stats_json();
  const std::string& socket_path() const { return settings_.socket; }

 private:
  struct Record {  // what the agent remembers about one program
    std::string origin;
    std::string sha256;
    std::vector<std::string> attach;  // canonical strings
  };

  struct PreparedApply;  // what the plan step decided (agent.cc)
  // An enabled module and the lock that serialises calls into it (plan,
  // configure, collect, snapshot), so that scrapes can run beside applies.
  struct ModuleSlot {
    std::shared_ptr<core::Module> module;
    std::mutex mu;             // held while the module runs
    std::mutex state_mu;       // guards the two fields below
    bool collecting = false;   // a collect() is in flight (maybe a slow one)
    std::vector<core::MetricFamily> last;  // the last collect() that succeeded
  };
  // What /metrics reads, swapped at the end of every apply and CLI change;
  // scrapes take view_mu_ only to copy the pointer, never mu_.
  struct View {
    std::vector<std::pair<std::string, std::shared_ptr<ModuleSlot>>> modules;
    std::map<std::string, std::string> origins;
    uint64_t applies_ok = 0, applies_failed = 0;
    bool last_apply_ok = true;
  };

  Agent() = default;
  // An apply is a plan step (no kernel change: config, module plans, the
  // diff) and an execute step (kernel changes, one rollback).
  Result<nlohmann::json> apply_locked(Config cfg);
  // What every module gets at plan(): one node name, its feature
  // resolution, the shared identity resolver, clock, logger and events.
  core::ModuleContext module_context(const std::string& name, const core::Resolution& features);
  Result<std::unique_ptr<PreparedApply>> plan_locked(Config cfg);
  Result<nlohmann::json> execute_locked(PreparedApply& prep);
  void publish_view_locked();
  std::shared_ptr<const View> view() const;
  // One module's families for a scrape: its collect() runs on its own
  // thread; past the deadline (or while the previous one still runs) the
  // scrape gets the module's last families and the error is counted.
  std::vector<core::MetricFamily> collect_module(const std::string& name, const std::shared_ptr<ModuleSlot>& slot);
  std::vector<CurrentProgram> current_locked() const;
  std::string origin_locked(const std::string& name) const;
  void load_state_locked();
  // Atomic (tmp, fsync, rename, fsync dir); an error fails the apply.
  Result<void> save_state_locked();
  nlohmann::json program_to_json_locked(const core::ProgramInfo& p) const;

  Result<nlohmann::json> op_prog_load(const Request& r);
  Result<nlohmann::json> op_prog_replace(const Request& r);
  Result<nlohmann::json> op_prog_unload(const Request& r);

  // [events] agent_events.cc: bus + loop creation, module start()/stop(),
  // the loop's sources after every apply, the "events" control op.
  void init_events();
  void stop_leaving_modules_locked(const std::map<std::string, std::shared_ptr<ModuleSlot>>& next);  // modules_ still holds the ones being disabled
  void after_apply_events_locked(const std::set<std::string>& configured, nlohmann::json& warnings);
  void shutdown_events();
  Result<nlohmann::json> op_events(const Request& r);

  mutable std::mutex mu_;
  AgentSettings settings_;  // fixed at start (changes need a restart)
  Config cfg_;              // last successfully applied config
  std::string config_path_;
  std::shared_ptr<core::ProgramManager> pm_;  // shared with in-flight collects
  identity::Resolver identity_;                // shared by every module
  core::EventPublisher* events_ = nullptr;     // the event bus
  std::map<std::string, std::shared_ptr<ModuleSlot>> modules_;  // enabled ones
  // Each enabled module's needs matched against this kernel (Resolution
  // JSON), as `kagami status` shows them.
  std::map<std::string, nlohmann::json> module_features_;
  std::map<std::string, Record> records_;
  nlohmann::json last_apply_ = nlohmann::json::object();
  uint64_t applies_ok_ = 0, applies_failed_ = 0;
  std::atomic<uint64_t> collect_errors_{0};
  mutable std::mutex view_mu_;
  std::shared_ptr<const View> view_ = std::make_shared<View>();
  std::chrono::steady_clock::time_point started_;
  double start_unix_ = 0;

  // [events]
  std::unique_ptr<EventBus> bus_;
  std::unique_ptr<EventLoop> loop_;
  std::set<std::string> running_modules_;  // modules whose start() succeeded (stop() pending)

  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<HttpServer> http_;
  std::atomic<bool> stop_{false};
};

// Hex sha256 of a file / a byte buffer (what the plan compares).
Result<std::string> sha256_file(const std::string& path);
std::string sha256_bytes(const std::vector<uint8_t>& bytes);

// JSON forms of manager data (stable API, docs/agent.md).
nlohmann::json to_json(const core::ProgramInfo& p);
nlohmann::json to_json(const core::AttachmentInfo& a);
nlohmann::json to_json(const core::MapInfo& m);

}  // namespace kagami::agent
