#include "agent/events.h"

#include <unistd.h>

#include <cctype>
#include <ctime>
#include <iostream>
#include <set>

#include <fmt/format.h>

namespace kagami::agent {

using nlohmann::json;

std::string rfc3339_ns(uint64_t wall_ns) {
  const time_t secs = static_cast<time_t>(wall_ns / 1000000000ULL);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:09}Z", buf, wall_ns % 1000000000ULL);
}

json to_falco(const json& ev, const std::string& hostname) {
  auto str = [&](const json& j, const char* k) -> std::string {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string module = str(ev, "module"), kind = str(ev, "kind");
  std::string rule = str(ev, "rule");
  if (rule.empty()) rule = "kagami " + module + " " + kind;
  std::string prio = str(ev, "severity");
  if (prio.empty()) prio = "informational";
  prio[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(prio[0])));
  json f = json::object();
  f["evt.type"] = kind;
  if (auto it = ev.find("mono_ns"); it != ev.end()) f["kagami.mono_ns"] = *it;
  if (auto it = ev.find("seq"); it != ev.end()) f["kagami.seq"] = *it;
  f["kagami.module"] = module;
  const json empty = json::object();
  const json& p = ev.contains("process") && ev["process"].is_object() ? ev["process"] : ev;
  for (const auto& [from, to] : std::initializer_list<std::pair<const char*, const char*>>{
           {"tgid", "proc.pid"}, {"pid", "thread.tid"}, {"ppid", "proc.ppid"}, {"comm", "proc.name"},
           {"exe", "proc.exepath"}, {"uid", "user.uid"}, {"gid", "group.gid"}, {"filename", "proc.exepath"}})
    if (auto it = p.find(from); it != p.end() && !f.contains(to)) f[to] = *it;
  if (auto it = p.find("args"); it != p.end() && it->is_array()) {
    std::string cl;
    for (const auto& a : *it) cl += (cl.empty() ? "" : " ") + (a.is_string() ? a.get<std::string>() : a.dump());
    f["proc.cmdline"] = cl;
  }
  const json& c = ev.contains("container") ? ev["container"] : ev.contains("workload") ? ev["workload"] : empty;
  // Falco's container.id is the 12-character short id.
  const std::string cid = str(c, "id").empty() ? str(c, "container_id") : str(c, "id");
  f["container.id"] = cid.empty() ? "host" : cid.substr(0, 12);
  if (!cid.empty()) f["container.full_id"] = cid;
  if (auto u = str(c, "pod_uid"); !u.empty()) f["k8s.pod.uid"] = u;
  if (ev.contains("file") && ev["file"].is_object()) {
    f["fd.name"] = ev["file"].value("path", json());
    if (ev["file"].contains("flags")) f["evt.arg.flags"] = ev["file"]["flags"];
  }
  if (ev.contains("net") && ev["net"].is_object()) {
    f["fd.rip"] = ev["net"].value("addr", "");
    f["fd.rport"] = ev["net"].value("port", 0);
  }
  if (ev.contains("actions")) f["kagami.actions"] = ev["actions"];
  std::string out = fmt::format("{}: {} {} (evt.type={} proc.name={} proc.pid={} container.id={}", str(ev, "time"),
                                prio, rule, kind, f.value("proc.name", json("")).get<std::string>(),
                                f.value("proc.pid", json(0)).dump(), f["container.id"].get<std::string>());
  if (f.contains("fd.name") && f["fd.name"].is_string()) out += " fd.name=" + f["fd.name"].get<std::string>();
  if (f.contains("fd.rip")) out += fmt::format(" fd.rip={} fd.rport={}", f["fd.rip"].get<std::string>(), f["fd.rport"].dump());
  if (ev.value("killed", false)) out += " action=killed";
  if (ev.value("denied", false)) out += " action=denied";
  out += ")";
  return json{{"rule", rule},
              {"priority", prio},
              {"time", str(ev, "time")},
              {"output", out},
              {"output_fields", std::move(f)},
              {"source", "syscall"},
              {"tags", json::array({"kagami", module})},
              {"hostname", hostname}};
}

// ---- Subscription ---------------------------------------------------------------

std::optional<json> Subscription::next(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, timeout, [&] { return closed_ || missed_ > 0 || !queue_.empty(); });
  if (missed_ > 0) {
    // The notice goes before the next real event, in its place in the order.
    json j = {{"kind", "dropped"}, {"cause", "subscriber_slow"}, {"count", missed_}};
    missed_ = 0;
    return j;
  }
  if (queue_.empty()) return std::nullopt;
  json j = std::move(queue_.front());
  queue_.pop_front();
  return j;
}

bool Subscription::closed() const {
  std::lock_guard lk(mu_);
  return closed_ && queue_.empty() && missed_ == 0;
}

// ---- EventBus -----------------------------------------------------------------------

EventBus::EventBus(EventsSettings settings, const core::Clock* clock, std::ostream* out)
    : settings_(std::move(settings)), clock_(clock ? clock : &core::Clock::system()), out_(out ? out : &std::cout) {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) == 0) hostname_ = host;
}

bool EventBus::rule_limit_allow_locked(const std::string& module, const json& event, uint64_t now) {
  if (settings_.rule_rate == 0) return true;
  auto r = event.find("rule");
  if (r == event.end() || !r->is_string() || r->get_ref<const std::string&>().empty()) return true;
  // The container: its id, else its cgroup id (host processes: per cgroup).
  std::string who;
  for (const char* k : {"container", "workload"}) {
    auto c = event.find(k);
    if (c == event.end() || !c->is_object()) continue;
    if (auto id = c->find("id"); id != c->end() && id->is_string()) who = id->get<std::string>();
    else if (auto id2 = c->find("container_id"); id2 != c->end() && id2->is_string()) who = id2->get<std::string>();
    else if (auto cg = c->find("cgroup_id"); cg != c->end()) who = cg->dump();
  }
  const std::string key = module + '\0' + r->get<std::string>() + '\0' + who;
  const uint64_t interval = 1000000000ULL / std::max<uint64_t>(settings_.rule_rate, 1);
  const uint64_t burst = std::max<uint64_t>(settings_.rule_burst, 1);
  auto it = rule_tat_.find(key);
  if (it == rule_tat_.end()) {
    // Bounded: past 65536 keys, the ones whose bucket is full again go
    // (they are indistinguishable from new keys).
    if (rule_tat_.size() >= 65536)
      std::erase_if(rule_tat_, [&](const auto& kv) { return kv.second <= now; });
    if (rule_tat_.size() >= 65536) rule_tat_.clear();
    rule_tat_[key] = now + interval;
    return true;
  }
  const uint64_t tat = std::max(it->second, now);
  if (tat + interval - now > burst * interval) return false;
  it->second = tat + interval;
  return true;
}

EventBus::~EventBus() { close_subscribers(); }

Result<void> EventBus::open_sinks() {
  if (settings_.file.empty()) return ok();
  std::lock_guard lk(sink_mu_);
  file_.open(settings_.file, std::ios::app);
  if (!file_) return errno_error(errno ? errno : EIO, "agent.events.file: cannot open {}", settings_.file);
  return ok();
}

void EventBus::publish(const std::string& module, json event) {
  if (!event.is_object()) event = json{{"value", std::move(event)}};
  const uint64_t now_mono = clock_->monotonic_ns(), now_wall = clock_->wall_ns();
  uint64_t mono = now_mono;
  if (auto it = event.find("mono_ns"); it != event.end() && it->is_number_unsigned()) mono = it->get<uint64_t>();
  else event["mono_ns"] = mono;
  if (!event.contains("time")) {
    // The record's own kernel time, on the wall clock.
    const uint64_t age = now_mono > mono ? now_mono - mono : 0;
    event["time"] = rfc3339_ns(now_wall > age ? now_wall - age : now_wall);
  }
  event["module"] = module;
  if (!event.contains("kind") || !event["kind"].is_string()) event["kind"] = "unknown";
  const std::string kind = event["kind"].get<std::string>();

  std::vector<std::shared_ptr<Subscription>> subs;
  std::string line;
  {
    std::lock_guard lk(mu_);
    if (!rule_limit_allow_locked(module, event, now_mono)) {
      ++dropped_[{module, "rule_rate_limit"}];
      return;
    }
    const uint64_t seq = ++seq_;
    event["seq"] = seq;
    ++published_[{module, kind}];
    line = event.dump(-1, ' ', false, json::error_handler_t::replace);
    if (settings_.history > 0) {
      history_.push_back({seq, module, line});
      while (history_.size() > settings_.history) history_.pop_front();
    }
    for (auto it = subs_.begin(); it != subs_.end();) {
      if (auto s = it->lock()) {
        subs.push_back(std::move(s));
        ++it;
      } else {
        it = subs_.erase(it);
      }
    }
  }

  uint64_t slow = 0;
  for (auto& s : subs) {
    if (!s->module_.empty() && s->module_ != module) continue;
    std::lock_guard lk(s->mu_);
    if (s->closed_) continue;
    if (s->queue_.size() >= s->capacity_) {
      ++s->missed_;
      ++slow;
    } else {
      s->queue_.push_back(event);
    }
    s->cv_.notify_one();
  }
  if (slow) count_drop(module, "subscriber_slow", slow);

  if (settings_.to_stdout || file_.is_open()) {
    if (settings_.format == "falco") line = to_falco(event, hostname_).dump(-1, ' ', false, json::error_handler_t::replace);
    line += "\n";
    bool failed = false;
    {
      std::lock_guard lk(sink_mu_);
      if (settings_.to_stdout) {
        *out_ << line << std::flush;
        if (!*out_) {
          out_->clear();
          failed = true;
        }
      }
      if (file_.is_open()) {
        file_ << line << std::flush;
        if (!file_) {
          file_.clear();
          failed = true;
        }
      }
    }
    if (failed) count_drop(module, "sink_write");
  }
}

void EventBus::count_drop(const std::string& module, const std::string& cause, uint64_t n) {
  if (n == 0) return;
  std::lock_guard lk(mu_);
  dropped_[{module, cause}] += n;
}

std::vector<json> EventBus::history(const std::string& module, size_t limit, uint64_t after_seq) const {
  std::vector<std::string> lines;
  {
    std::lock_guard lk(mu_);
    for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
      if (limit && lines.size() >= limit) break;
      if (it->seq <= after_seq) break;
      if (!module.empty() && it->module != module) continue;
      lines.push_back(it->line);
    }
  }
  std::vector<json> out;
  out.reserve(lines.size());
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) out.push_back(json::parse(*it, nullptr, false));
  return out;
}

uint64_t EventBus::last_seq() const {
  std::lock_guard lk(mu_);
  return seq_;
}

std::shared_ptr<Subscription> EventBus::subscribe(const std::string& module, size_t capacity) {
  std::shared_ptr<Subscription> s(
      new Subscription(module, capacity ? capacity : std::max<size_t>(settings_.subscriber_queue, 1)));
  std::lock_guard lk(mu_);
  if (subs_closed_) s->closed_ = true;
  subs_.push_back(s);
  return s;
}

void EventBus::close_subscribers() {
  std::vector<std::shared_ptr<Subscription>> subs;
  {
    std::lock_guard lk(mu_);
    subs_closed_ = true;
    for (auto& w : subs_)
      if (auto s = w.lock()) subs.push_back(std::move(s));
  }
  for (auto& s : subs) {
    std::lock_guard lk(s->mu_);
    s->closed_ = true;
    s->cv_.notify_all();
  }
}

void EventBus::set_kernel_drops(std::function<DropCounts()> provider) {
  std::lock_guard lk(kd_mu_);
  kernel_drops_ = std::move(provider);
}

EventBus::DropCounts EventBus::all_drops() const {
  DropCounts d;
  {
    std::lock_guard lk(kd_mu_);
    if (kernel_drops_) d = kernel_drops_();
  }
  std::lock_guard lk(mu_);
  for (const auto& [k, n] : dropped_) d[k.first][k.second] += n;
  return d;
}

std::vector<core::MetricFamily> EventBus::metric_families(const std::string& node) const {
  core::MetricFamily total{"kagami_events_total", "Events published by the agent's event bus, by module and kind",
                           "counter", {}};
  core::MetricFamily dropped{"kagami_events_dropped_total",
                             "Events lost before publishing or delivery, by module and cause "
                             "(ring_full, rate_limit: in BPF; decode, subscriber_slow, sink_write: in the agent)",
                             "counter", {}};
  core::MetricFamily subs{"kagami_events_subscribers", "Event stream followers connected now", "gauge", {}};
  const DropCounts drops = all_drops();
  {
    std::lock_guard lk(mu_);
    for (const auto& [k, n] : published_)
      total.samples.push_back({{{"node", node}, {"module", k.first}, {"kind", k.second}}, double(n), ""});
    size_t live = 0;
    for (const auto& w : subs_) live += !w.expired();
    subs.samples.push_back({{{"node", node}}, double(live), ""});
  }
  for (const auto& [m, causes] : drops)
    for (const auto& [c, n] : causes)
      dropped.samples.push_back({{{"node", node}, {"module", m}, {"cause", c}}, double(n), ""});
  return {total, dropped, subs};
}

json EventBus::stats_json() const {
  json pub = json::object(), drop = json::object();
  for (const auto& [m, causes] : all_drops())
    for (const auto& [c, n] : causes) drop[m][c] = n;
  std::lock_guard lk(mu_);
  for (const auto& [k, n] : published_) pub[k.first][k.second] = n;
  size_t live = 0;
  for (const auto& w : subs_) live += !w.expired();
  return {{"published", pub},
          {"dropped", drop},
          {"last_seq", seq_},
          {"history", {{"kept", history_.size()}, {"capacity", settings_.history}}},
          {"subscribers", live}};
}

// ---- streaming and the history API ----------------------------------------------------

namespace {

Result<uint64_t> query_uint(const std::map<std::string, std::string>& q, const char* key, uint64_t def,
                            uint64_t max) {
  auto it = q.find(key);
  if (it == q.end() || it->second.empty()) return def;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(it->second.c_str(), &end, 10);
  if (errno || !end || *end || !std::isdigit(static_cast<unsigned char>(it->second[0])) || v > max)
    return make_error("{}: must be an integer in 0..{}, got '{}'", key, max, it->second);
  return v;
}

// This node's name, as the sinks' Falco lines carry it (EventBus reads it
// the same way).
const std::string& node_hostname() {
  static const std::string name = [] {
    char host[256] = {};
    return ::gethostname(host, sizeof(host) - 1) == 0 ? std::string(host) : std::string();
  }();
  return name;
}

std::string frame(const json& j, bool sse, bool falco = false, const std::string& host = "") {
  // In-band notices (no seq) stay in the agent's shape.
  const std::string s = (falco && j.contains("seq") ? to_falco(j, host) : j).dump(-1, ' ', false, json::error_handler_t::replace);
  return sse ? "data: " + s + "\n\n" : s + "\n";
}

}  // namespace

std::string stream_content_type(const std::map<std::string, std::string>& query) {
  auto it = query.find("format");
  return it != query.end() && it->second == "sse" ? "text/event-stream" : "application/x-ndjson";
}

void stream_events(EventBus& bus, const std::map<std::string, std::string>& query, const StreamWriter& write,
                   const std::atomic<bool>* stop, std::chrono::milliseconds keepalive) {
  const bool sse = stream_content_type(query) == "text/event-stream";
  const bool falco = query.count("format") && query.at("format") == "falco";
  std::string module;
  if (auto it = query.find("module"); it != query.end()) module = it->second;
  const auto hist = query_uint(query, "history", 0, 1000000);
  const uint64_t backlog = hist ? *hist : 0;
  // Subscribe before reading the history, then skip what the history sent:
  // no event falls between the two, none comes twice.
  auto sub = bus.subscribe(module);
  uint64_t sent_upto = 0;
  if (backlog > 0) {
    for (const auto& e : bus.history(module, backlog)) {
      if (!write(frame(e, sse, falco, node_hostname()))) return;
      sent_upto = e["seq"].get<uint64_t>();
    }
  }
  auto idle_since = std::chrono::steady_clock::now();
  const auto tick = std::min<std::chrono::milliseconds>(keepalive, std::chrono::milliseconds(250));
  while (!(stop && stop->load())) {
    auto e = sub->next(tick);
    if (!e) {
      if (sub->closed()) return;
      if (std::chrono::steady_clock::now() - idle_since >= keepalive) {
        if (!write(sse ? ": keepalive\n\n" : "\n")) return;
        idle_since = std::chrono::steady_clock::now();
      }
      continue;
    }
    if (e->contains("seq") && (*e)["seq"].get<uint64_t>() <= sent_upto) continue;
    if (!write(frame(*e, sse, falco, node_hostname()))) return;
    idle_since = std::chrono::steady_clock::now();
  }
}

Result<json> events_history_json(const EventBus& bus, const std::map<std::string, std::string>& query) {
  static const std::set<std::string> known = {"module", "limit", "after", "follow", "format", "history"};
  for (const auto& [k, v] : query)
    if (!known.count(k)) return make_error("unknown query key '{}' (known: module, limit, after, follow)", k);
  auto limit = query_uint(query, "limit", 100, 1000000);
  if (!limit) return limit.error();
  auto after = query_uint(query, "after", 0, UINT64_MAX);
  if (!after) return after.error();
  std::string module;
  if (auto it = query.find("module"); it != query.end()) module = it->second;
  json arr = json::array();
  for (auto& e : bus.history(module, *limit, *after)) arr.push_back(std::move(e));
  return json{{"events", std::move(arr)}, {"last_seq", bus.last_seq()}};
}

}  // namespace kagami::agent
