// EventLoop: the agent's one thread that drains every enabled module's ring
// buffers (docs/events.md). After each successful apply the agent hands it
// the new set of sources (opened through ProgramManager::map_fd); records go
// through the module's EventSource::decode into the EventBus. A record that
// is shorter than struct kg_event_hdr, disagrees with its own len, or that
// decode() refuses is counted as a "decode" drop, never published.
//
// The loop never takes the agent's apply mutex: set_sources() takes the
// loop's own lock, which the thread holds only while it drains (so a
// module's decoder is never called after set_sources() returned without it).
// The drops maps are read on scrape under a separate lock.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/events.h"
#include "bpf/ringbuf.h"
#include "common/fd.h"
#include "common/result.h"
#include "core/module.h"

namespace kagami::agent {

struct LoopSource {
  std::string module;
  core::EventSource source;
  Fd ring;   // BPF_MAP_TYPE_RINGBUF
  Fd drops;  // per-CPU array by kg_drop_cause; invalid when the source has none
};

// Kernel drop cause names, by enum kg_drop_cause value ("ring_full", ...).
const char* drop_cause_name(uint32_t cause);

class EventLoop {
 public:
  explicit EventLoop(EventBus& bus);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void start();  // the thread; sources may be set before or after
  void stop();   // joins; prompt (the thread wakes every poll_ms)

  // Replaces every source. On an Error (a map that is not a ring) the loop
  // keeps running without rings, and the Error names the module.
  Result<void> set_sources(std::vector<LoopSource> sources);
  size_t source_count() const;
  // Stops using the current rings and decoders (a module is about to go)
  // but keeps reading its drops maps until the next set_sources(), which
  // decides which of them went away: clearing with set_sources({}) and
  // setting the same maps again would count their drops twice.
  void pause();

  // Drains what is in the rings now, on the caller's thread (tests, and the
  // last drain at stop). Returns the number of records.
  Result<int> drain();

  // Kernel drops by module and cause, summed over CPUs and sources.
  EventBus::DropCounts kernel_drops() const;

  static constexpr int poll_ms = 100;

 private:
  void run();
  void on_record(size_t ring, std::span<const uint8_t> rec);

  EventBus& bus_;
  mutable std::mutex mu_;  // sources_, rb_: held while draining
  std::vector<LoopSource> sources_;
  bpf::RingBuffer rb_;
  struct Drops {
    std::string module;
    Fd fd;
  };
  mutable std::mutex drops_mu_;
  std::vector<Drops> drops_;
  // Counts of drops maps that went away (module disabled, map reset), so
  // kagami_events_dropped_total stays monotonic across applies.
  EventBus::DropCounts retired_;
  std::atomic<bool> stop_{false};
  std::atomic<int> waiters_{0};  // threads waiting for mu_: the loop steps aside
  std::condition_variable idle_cv_;
  std::thread thread_;
};

}  // namespace kagami::agent
