// EventBus: where every module's events go (docs/events.md).
//
//   publish(module, event)  adds "module", "seq" (1, 2, ... per agent run),
//                           "time" (RFC 3339, from the event's mono_ns when it
//                           has one) and "mono_ns"; counts it by (module, kind);
//                           keeps it in a bounded history; writes it as one
//                           JSON line to stdout and/or a file; and hands it to
//                           every subscriber (HTTP followers).
//   count_drop(m, cause, n) an event lost in userspace ("decode",
//                           "subscriber_slow", "sink_write").
//
// Nothing blocks on a subscriber: each has a bounded queue; when it is full
// the subscriber loses the event, the loss is counted as
// kagami_events_dropped_total{cause="subscriber_slow"} and the subscriber is
// told in-band by a {"kind":"dropped","cause":"subscriber_slow","count":N}
// event before its next real one. The kernel causes (ring_full, rate_limit)
// come from each module's drops map through the provider the event loop sets.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/config.h"
#include "common/result.h"
#include "core/metrics.h"
#include "core/module.h"

namespace kagami::agent {

// RFC 3339 UTC with nanoseconds: "2026-12-03T08:35:00.123456789Z".
std::string rfc3339_ns(uint64_t wall_ns);

// An event (as published, with its envelope) in Falco's JSON output shape,
// so Falcosidekick and other Falco consumers take it as is:
//   {"rule","priority","time","output","output_fields":{...},"source","tags","hostname"}
// rule: the event's "rule", else "kagami <module> <kind>"; priority: its
// "severity" capitalised as Falco spells it ("Warning"), else
// "Informational". docs/events.md lists the output_fields.
nlohmann::json to_falco(const nlohmann::json& event, const std::string& hostname);

class EventBus;

class Subscription {
 public:
  // The next event (or in-band "dropped" notice), waiting up to `timeout`;
  // nullopt on timeout or once the bus is closed (closed() tells).
  std::optional<nlohmann::json> next(std::chrono::milliseconds timeout);
  bool closed() const;
  const std::string& module() const { return module_; }

 private:
  friend class EventBus;
  Subscription(std::string module, size_t capacity) : module_(std::move(module)), capacity_(capacity) {}
  std::string module_;  // "" = every module
  size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<nlohmann::json> queue_;
  uint64_t missed_ = 0;  // lost since the last delivered event
  bool closed_ = false;
};

class EventBus : public core::EventPublisher {
 public:
  // Kernel drop counts (cumulative) by module, then cause name.
  using DropCounts = std::map<std::string, std::map<std::string, uint64_t>>;

  explicit EventBus(EventsSettings settings = {}, const core::Clock* clock = &core::Clock::system(),
                    std::ostream* out = nullptr /* stdout sink stream; nullptr = std::cout */);
  ~EventBus() override;
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  // Opens the file sink (append). An Error names the file.
  Result<void> open_sinks();

  void publish(const std::string& module, nlohmann::json event) override;
  void count_drop(const std::string& module, const std::string& cause, uint64_t n = 1) override;

  // The newest `limit` kept events (0 = every kept one) of `module` ("" =
  // all) with seq > after_seq, oldest first.
  std::vector<nlohmann::json> history(const std::string& module = "", size_t limit = 0,
                                      uint64_t after_seq = 0) const;
  uint64_t last_seq() const;

  // A follower. Its queue holds at most `capacity` events (0 = the
  // configured subscriber_queue). Dropping the pointer unsubscribes.
  std::shared_ptr<Subscription> subscribe(const std::string& module = "", size_t capacity = 0);
  // Wakes and ends every subscription (agent shutdown); publish() still
  // records history and sinks afterwards.
  void close_subscribers();

  void set_kernel_drops(std::function<DropCounts()> provider);

  // kagami_events_total{module,kind}, kagami_events_dropped_total{module,cause}
  // (kernel and userspace causes), kagami_events_subscribers.
  std::vector<core::MetricFamily> metric_families(const std::string& node) const;
  // {"published":{module:{kind:n}},"dropped":{module:{cause:n}},"last_seq":..,
  //  "history":{"kept":..,"capacity":..},"subscribers":..}
  nlohmann::json stats_json() const;

 private:
  DropCounts all_drops() const;

  const EventsSettings settings_;
  const core::Clock* clock_;
  std::ostream* out_;
  mutable std::mutex mu_;
  uint64_t seq_ = 0;
  // Kept serialized: a line is ~400 bytes where a json object of the same
  // event is several KiB of nodes (10000 events: ~4 MB instead of ~20 MB).
  struct Kept {
    uint64_t seq;
    std::string module;
    std::string line;  // the event as one JSON text, without newline
  };
  std::deque<Kept> history_;
  std::map<std::pair<std::string, std::string>, uint64_t> published_;  // (module, kind)
  std::map<std::pair<std::string, std::string>, uint64_t> dropped_;    // (module, cause), userspace
  std::vector<std::weak_ptr<Subscription>> subs_;
  bool subs_closed_ = false;
  std::ofstream file_;
  std::mutex sink_mu_;  // one line at a time per sink
  std::function<DropCounts()> kernel_drops_;
  mutable std::mutex kd_mu_;
  // Per (module, rule, container) GCRA buckets of settings_.rule_rate:
  // theoretical arrival time in ns; bounded (rule_limit_allow_locked).
  std::map<std::string, uint64_t> rule_tat_;  // guarded by mu_
  bool rule_limit_allow_locked(const std::string& module, const nlohmann::json& event, uint64_t now_mono);
  std::string hostname_;
};

// The HTTP follow stream, independent of the HTTP library: subscribes,
// writes the newest `history` kept events (query "history", default 0),
// then every new event, each as one chunk, until `write` returns false, the
// bus closes its subscribers or `stop` becomes true. Query keys:
//   module=M       only this module's events
//   format=sse     server-sent events ("data: {...}\n\n"); default JSON
//                  lines ("{...}\n"); format=falco: JSON lines in Falco's
//                  shape (to_falco)
//   history=N      start with the newest N kept events
// An idle stream gets a keepalive every `keepalive` (an empty line, or an
// SSE comment) so a gone client is noticed.
using StreamWriter = std::function<bool(std::string_view chunk)>;
void stream_events(EventBus& bus, const std::map<std::string, std::string>& query, const StreamWriter& write,
                   const std::atomic<bool>* stop = nullptr,
                   std::chrono::milliseconds keepalive = std::chrono::seconds(2));
// "text/event-stream" or "application/x-ndjson" for a query.
std::string stream_content_type(const std::map<std::string, std::string>& query);

// Turns the query of GET /api/v1/events (and the control op "events") into
// a history reply: {"events":[...],"last_seq":N}. Errors name the key.
Result<nlohmann::json> events_history_json(const EventBus& bus, const std::map<std::string, std::string>& query);

}  // namespace kagami::agent
