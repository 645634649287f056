#include "agent/event_loop.h"

#include <linux/types.h>

#include <cstring>

#include <spdlog/spdlog.h>

#include "bpf/kernel.h"
#include "kagami/abi/events.h"

namespace kagami::agent {
namespace {

// Cumulative drops of one map (sum over CPUs), by cause name.
std::map<std::string, uint64_t> read_drops(int fd) {
  std::map<std::string, uint64_t> out;
  auto d = bpf::map_read_array(fd, KG_DROP__MAX, sizeof(__u64), true);
  if (!d) return out;
  for (uint32_t c = 0; c < KG_DROP__MAX; ++c) {
    uint64_t sum = 0;
    for (int cpu = 0; cpu < d->cpus; ++cpu) {
      uint64_t v = 0;
      std::memcpy(&v, d->at(c, cpu), sizeof(v));
      sum += v;
    }
    out[drop_cause_name(c)] = sum;
  }
  return out;
}

}  // namespace

const char* drop_cause_name(uint32_t cause) {
  switch (cause) {
    case KG_DROP_RING_FULL: return "ring_full";
    case KG_DROP_RATE_LIMIT: return "rate_limit";
    default: return "unknown";
  }
}

EventLoop::EventLoop(EventBus& bus) : bus_(bus) {
  bus_.set_kernel_drops([this] { return kernel_drops(); });
}

EventLoop::~EventLoop() {
  stop();
  bus_.set_kernel_drops({});
}

void EventLoop::start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { run(); });
}

void EventLoop::stop() {
  stop_ = true;
  idle_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

size_t EventLoop::source_count() const {
  std::lock_guard lk(mu_);
  return sources_.size();
}

void EventLoop::on_record(size_t ring, std::span<const uint8_t> rec) {
  if (ring >= sources_.size()) return;
  const LoopSource& s = sources_[ring];
  kg_event_hdr h{};
  if (rec.size() < sizeof(h)) {
    bus_.count_drop(s.module, "decode");
    return;
  }
  std::memcpy(&h, rec.data(), sizeof(h));
  if (h.len != rec.size() || !s.source.decode) {
    bus_.count_drop(s.module, "decode");
    return;
  }
  auto j = s.source.decode(rec);
  // A JSON null: the module's own userspace filter said no (security's
  // exec argument patterns): not an event, and not a drop either.
  if (j && j->is_null()) return;
  if (!j || !j->is_object()) {
    bus_.count_drop(s.module, "decode");
    return;
  }
  if (!j->contains("mono_ns")) (*j)["mono_ns"] = h.mono_ns;
  bus_.publish(s.module, std::move(*j));
}

Result<void> EventLoop::set_sources(std::vector<LoopSource> sources) {
  // Old drops maps: keep their last counts so the exported totals never go
  // down when a map goes away; maps that stay are read live again.
  EventBus::DropCounts gone;
  {
    std::lock_guard lk(drops_mu_);
    for (const auto& d : drops_) {
      bool kept = false;
      for (const auto& s : sources) {
        if (s.module != d.module || !s.drops.valid()) continue;
        auto a = bpf::map_info(s.drops.get()), b = bpf::map_info(d.fd.get());
        kept |= a && b && a->id == b->id;
      }
      if (!kept)
        for (const auto& [c, n] : read_drops(d.fd.get())) gone[d.module][c] += n;
    }
  }
  std::vector<int> fds;
  for (const auto& s : sources) fds.push_back(s.ring.get());
  Result<void> result = ok();
  bpf::RingBuffer rb;
  if (!fds.empty()) {
    auto r = bpf::RingBuffer::open(fds, [this](size_t i, std::span<const uint8_t> rec) { on_record(i, rec); });
    if (!r) {
      std::string mods;
      for (const auto& s : sources) mods += (mods.empty() ? "" : ", ") + s.module;
      result = r.error().with_context("event sources of " + mods);
    } else {
      rb = std::move(*r);
    }
  }
  std::vector<Drops> drops;
  for (auto& s : sources)
    if (s.drops.valid()) {
      auto fd = bpf::dup_fd(s.drops.get());
      if (fd) drops.push_back({s.module, std::move(*fd)});
    }
  {
    ++waiters_;
    std::lock_guard lk(mu_);
    --waiters_;
    rb_ = result ? std::move(rb) : bpf::RingBuffer();
    sources_ = result ? std::move(sources) : std::vector<LoopSource>();
  }
  {
    std::lock_guard lk(drops_mu_);
    drops_ = std::move(drops);
    for (const auto& [m, causes] : gone)
      for (const auto& [c, n] : causes) retired_[m][c] += n;
  }
  idle_cv_.notify_all();
  return result;
}

void EventLoop::pause() {
  ++waiters_;
  std::lock_guard lk(mu_);
  --waiters_;
  rb_ = bpf::RingBuffer();
  sources_.clear();
}

Result<int> EventLoop::drain() {
  ++waiters_;
  std::lock_guard lk(mu_);
  --waiters_;
  if (!rb_.valid()) return 0;
  return rb_.consume();
}

EventBus::DropCounts EventLoop::kernel_drops() const {
  std::lock_guard lk(drops_mu_);
  EventBus::DropCounts out = retired_;
  for (const auto& d : drops_)
    for (const auto& [c, n] : read_drops(d.fd.get())) out[d.module][c] += n;
  return out;
}

void EventLoop::run() {
  while (!stop_) {
    // std::mutex is not fair: let set_sources()/drain() in before draining again.
    while (waiters_.load() > 0 && !stop_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::unique_lock lk(mu_);
    if (!rb_.valid()) {
      idle_cv_.wait_for(lk, std::chrono::milliseconds(poll_ms), [&] { return stop_.load() || rb_.valid(); });
      continue;
    }
    auto n = rb_.poll(poll_ms);
    if (!n) {
      spdlog::warn("events: {}", n.error().message);
      lk.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
    }
  }
  // What is already in the rings goes out before the agent stops.
  (void)drain();
}

}  // namespace kagami::agent
