// [events] The agent's part of the event pipeline (docs/events.md): the
// bus and the loop, module start()/stop(), the loop's sources after every
// apply, and the "events" control op. Kept out of agent.cc so the apply
// code only calls in at three marked places.
#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "agent/event_loop.h"
#include "agent/events.h"

namespace kagami::agent {

void Agent::init_events() {
  bus_ = std::make_unique<EventBus>(settings_.events);
  if (auto r = bus_->open_sinks(); !r) spdlog::error("events: {} (file sink off)", r.error().message);
  events_ = bus_.get();
  loop_ = std::make_unique<EventLoop>(*bus_);
  loop_->start();
}

EventBus& Agent::event_bus() { return *bus_; }

nlohmann::json Agent::events_stats_json() {
  nlohmann::json j = bus_->stats_json();
  j["sources"] = loop_ ? loop_->source_count() : 0;
  return j;
}

void Agent::stop_leaving_modules_locked(const std::map<std::string, std::shared_ptr<ModuleSlot>>& next) {
  // The loop must not call a decoder of a module that is about to go: it
  // drops every source now and gets the new set in after_apply_events_locked.
  if (loop_) loop_->pause();
  for (auto& [name, slot] : modules_) {
    auto it = next.find(name);
    if (it != next.end() && it->second == slot) continue;  // the same instance stays
    if (!running_modules_.erase(name)) continue;
    std::lock_guard module_lock(slot->mu);
    slot->module->stop();
    spdlog::info("modules.{}: stopped", name);
  }
}

void Agent::after_apply_events_locked(const std::set<std::string>& configured, nlohmann::json& warnings) {
  for (const auto& name : configured) {
    if (running_modules_.count(name)) continue;
    auto& slot = modules_.at(name);
    std::lock_guard module_lock(slot->mu);
    if (auto r = slot->module->start(*pm_); !r) {
      warnings.push_back(fmt::format("modules.{}: start: {}", name, r.error().message));
      continue;
    }
    running_modules_.insert(name);
  }
  if (!loop_) return;
  std::vector<LoopSource> sources;
  for (const auto& [name, slot] : modules_) {
    for (auto& src : slot->module->event_sources()) {
      LoopSource s;
      s.module = name;
      auto ring = pm_->map_fd(src.program, src.ring_map);
      if (!ring) {
        warnings.push_back(fmt::format("modules.{}: events: {}", name, ring.error().message));
        continue;
      }
      s.ring = std::move(*ring);
      if (!src.drops_map.empty()) {
        auto drops = pm_->map_fd(src.program, src.drops_map);
        if (!drops) {
          warnings.push_back(fmt::format("modules.{}: events: {}", name, drops.error().message));
        } else {
          s.drops = std::move(*drops);
        }
      }
      s.source = std::move(src);
      sources.push_back(std::move(s));
    }
  }
  if (auto r = loop_->set_sources(std::move(sources)); !r)
    warnings.push_back(fmt::format("events: {}", r.error().message));
}

void Agent::shutdown_events() {
  {
    std::lock_guard lk(mu_);
    for (auto& [name, slot] : modules_) {
      if (!running_modules_.erase(name)) continue;
      std::lock_guard module_lock(slot->mu);
      slot->module->stop();
    }
  }
  if (loop_) loop_->stop();
}

Result<nlohmann::json> Agent::op_events(const Request& r) {
  std::map<std::string, std::string> q;
  for (const char* k : {"module", "limit", "after"}) {
    auto it = r.args.find(k);
    if (it == r.args.end() || it->is_null()) continue;
    if (it->is_string()) q[k] = it->get<std::string>();
    else if (it->is_number_integer() && it->get<int64_t>() >= 0) q[k] = std::to_string(it->get<uint64_t>());
    else return make_error("events: '{}' must be a string or a non-negative integer", k);
  }
  auto j = events_history_json(*bus_, q);
  if (!j) return j.error().with_context("events");
  if (r.args.value("stats", false)) (*j)["stats"] = events_stats_json();
  return j;
}

}  // namespace kagami::agent
