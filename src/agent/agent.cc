#include "agent/agent.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <thread>
#include <cerrno>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <spdlog/spdlog.h>

#include "agent/control_socket.h"
#include "agent/event_loop.h"  // [events]
#include "agent/events.h"      // [events]
#include "agent/http_server.h"
#include "agent/prometheus.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/names.h"
#include "core/session_directory.h"
#include "core/crash_point.h"
#include "core/probe.h"

#ifndef KAGAMI_VERSION
#define KAGAMI_VERSION "0.0.0"
#endif

namespace kagami::agent {
namespace {

namespace fs = std::filesystem;


std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

// agent.node, then $NODE_NAME (the downward API's usual name), then the host name.
std::string node_name(const std::string& configured) {
  if (!configured.empty()) return configured;
  if (const char* n = std::getenv("NODE_NAME"); n && *n) return n;
  return hostname();
}


double rss_bytes() {
  std::ifstream in("/proc/self/statm");
  long pages_total = 0, pages_rss = 0;
  in >> pages_total >> pages_rss;
  return static_cast<double>(pages_rss) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

std::vector<std::string> attach_strings(const core::ProgramInfo& p) {
  std::vector<core::AttachPoint> pts;
  for (const auto& a : p.attachments) pts.push_back(a.point);
  return canonical_attach(pts);
}

Result<std::vector<core::MapMigration>> parse_migrations(const Request& r) {
  std::vector<core::MapMigration> out;
  auto it = r.args.find("migrations");
  if (it == r.args.end() || it->is_null()) return out;
  if (!it->is_array()) return make_error("{}: 'migrations' must be a list", r.op);
  for (const auto& m : *it) {
    if (!m.is_object() || !m.contains("map") || !m["map"].is_string() || !m.contains("rule") ||
        !m["rule"].is_string())
      return make_error("{}: each migration needs string 'map' and 'rule'", r.op);
    auto rule = parse_migration_rule(m["rule"].get<std::string>());
    if (!rule) return rule.error().with_context(r.op);
    out.push_back({m["map"].get<std::string>(), *rule});
  }
  return out;
}

std::vector<std::string> module_names_or_empty() {
  try {
    return core::builtin_module_names();
  } catch (...) {
    return {};
  }
}

}  // namespace

// ---- hashing and JSON forms -------------------------------------------------

std::string sha256_bytes(const std::vector<uint8_t>& bytes) { return names::sha256_hex(bytes); }

Result<std::string> sha256_file(const std::string& path) {
  // The bounded, non-blocking reader: a FIFO or /dev/zero named as an object
  // is refused by name instead of blocking the agent or filling its memory.
  auto bytes = kagami::fs::read_regular_file(path, "object");
  if (!bytes) return bytes.error();
  return names::sha256_hex(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()));
}

nlohmann::json to_json(const core::AttachmentInfo& a) {
  return {{"point", a.point.to_string()}, {"program", a.program}, {"mechanism", a.mechanism}};
}

nlohmann::json to_json(const core::MapInfo& m) {
  return {{"name", m.name},         {"id", m.id},
          {"type", m.type},         {"key_size", m.key_size},
          {"value_size", m.value_size}, {"max_entries", m.max_entries}};
}

nlohmann::json to_json(const core::ProgramInfo& p) {
  nlohmann::json progs = nlohmann::json::array(), maps = nlohmann::json::array(),
                 atts = nlohmann::json::array();
  for (const auto& pr : p.progs)
    progs.push_back({{"name", pr.name},
                     {"id", pr.id},
                     {"type", pr.type},
                     {"run_cnt", pr.run_cnt},
                     {"run_time_ns", pr.run_time_ns}});
  for (const auto& m : p.maps) maps.push_back(to_json(m));
  for (const auto& a : p.attachments) atts.push_back(to_json(a));
  return {{"name", p.name},         {"label", p.label},      {"sha256", p.sha256},
          {"builtin", p.builtin},   {"adopted", p.adopted},  {"generation", p.generation},
          {"progs", progs},         {"maps", maps},          {"attachments", atts}};
}

// ---- lifecycle ----------------------------------------------------------------

Result<std::unique_ptr<Agent>> Agent::create(const AgentOptions& opts) {
  Config cfg = default_config();
  const auto known = module_names_or_empty();
  if (!opts.config_path.empty()) {
    auto c = load_config(opts.config_path, known);
    if (!c) return c.error();
    cfg = std::move(*c);
  }
  if (opts.http) {
    auto hp = parse_host_port(*opts.http);
    if (!hp) return hp.error().with_context("--http");
    cfg.agent.http = *opts.http;
  }
  if (opts.socket) cfg.agent.socket = *opts.socket;
  if (opts.pin_root) cfg.agent.pin_root = *opts.pin_root;
  if (opts.state_file) cfg.agent.state_file = *opts.state_file;
  cfg.agent.node = node_name(cfg.agent.node);
  log::init(cfg.agent.log);

  std::unique_ptr<Agent> a(new Agent());
  a->started_ = std::chrono::steady_clock::now();
  a->start_unix_ = static_cast<double>(std::time(nullptr));
  a->settings_ = cfg.agent;
  a->config_path_ = cfg.path;
  // The baseline for "changed, needs a restart" notes is what we start with.
  a->cfg_.agent = cfg.agent;
  a->cfg_.trust = cfg.trust;

  core::ManagerOptions mo;
  mo.pin_root = cfg.agent.pin_root;
  mo.trust = cfg.trust;
  mo.stats = cfg.agent.bpf_stats;
  auto pm = core::ProgramManager::create(mo);
  if (!pm) return pm.error().with_context("starting the program manager");
  a->pm_ = std::move(*pm);

  a->init_events();  // [events] before the first apply: modules publish from start()

  std::lock_guard lk(a->mu_);
  a->load_state_locked();
  spdlog::info("agent {} on node {}: pin root {}, {} program(s) adopted", KAGAMI_VERSION,
               cfg.agent.node, cfg.agent.pin_root, a->pm_->list().size());
  auto r = a->apply_locked(std::move(cfg));
  if (!r) spdlog::error("initial config apply failed: {}", r.error().message);
  return a;
}

Agent::~Agent() { stop(); }

namespace {
// The 5G context join's directory (core/session_directory.h: n2 writes,
// obs reads), installed for the process once the first module is planned.
void install_session_directory() {
  static core::SessionDirectory directory;
  static core::ScopedSessionDirectory installed(&directory);
}
}  // namespace

core::ModuleContext Agent::module_context(const std::string& name, const core::Resolution& features) {
  install_session_directory();
  core::ModuleContext ctx;
  ctx.name = name;
  ctx.node = settings_.node;
  ctx.features = features;
  ctx.identity = &identity_;
  ctx.clock = &core::Clock::system();
  ctx.log = spdlog::default_logger()->clone(name);
  ctx.events = events_;
  return ctx;
}

Result<void> Agent::start() {
  // Block the signals run() handles before any thread exists, so that every
  // thread inherits the mask and only run()'s sigtimedwait sees them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  control_ = std::make_unique<ControlServer>(settings_.socket,
                                             [this](const Request& r) { return handle(r); });
  KAGAMI_TRY_CTX(control_->start(), "control socket");
  http_ = std::make_unique<HttpServer>(*this);
  auto h = http_->start(settings_.http);
  if (!h) {
    control_->stop();
    return h.error();
  }
  spdlog::info("control socket {} (root only)", settings_.socket);
  return ok();
}

int Agent::run() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  while (!stop_) {
    timespec ts{1, 0};  // wake up once a second to notice stop()
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: re-reading {}", config_path_.empty() ? "(no config file)" : config_path_);
      auto r = reload("");
      if (!r) spdlog::error("config reload rejected, running state unchanged: {}", r.error().message);
    } else if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("{}: stopping the agent; loaded programs keep running (pinned)",
                   sig == SIGTERM ? "SIGTERM" : "SIGINT");
      break;
    }
  }
  stop();
  return 0;
}

void Agent::stop() {
  stop_ = true;
  if (bus_) bus_->close_subscribers();  // [events] followers return, so the HTTP server can stop
  if (http_) http_->stop();
  if (control_) control_->stop();
  shutdown_events();  // [events] modules' stop(), then the event loop
}

std::string Agent::http_address() const { return http_ ? http_->address() : settings_.http; }

// ---- state file ----------------------------------------------------------------

void Agent::load_state_locked() {
  const std::string path = state_file_path(settings_);
  std::ifstream in(path);
  std::set<std::string> live;
  for (const auto& p : pm_->list()) live.insert(p.name);
  if (in) {
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_object() && j.contains("programs") && j["programs"].is_object()) {
      for (auto it = j["programs"].begin(); it != j["programs"].end(); ++it) {
        if (!live.count(it.key()) || !it->is_object()) continue;  // unloaded while we were away
        Record r;
        r.origin = it->value("origin", std::string(kOriginCli));
        r.sha256 = it->value("sha256", std::string());
        r.attach = it->value("attach", std::vector<std::string>());
        records_[it.key()] = std::move(r);
      }
    } else {
      spdlog::warn("state file {} is unreadable; adopted programs count as ad hoc (cli)", path);
    }
  }
  // Programs pinned without a record (state file lost): keep them, as ad hoc.
  // The config apply that follows takes over the ones it declares.
  for (const auto& p : pm_->list()) {
    if (records_.count(p.name)) continue;
    records_[p.name] = Record{kOriginCli, p.sha256, attach_strings(p)};
  }
}

Result<void> Agent::save_state_locked() {
  nlohmann::json progs = nlohmann::json::object();
  for (const auto& [name, r] : records_)
    progs[name] = {{"origin", r.origin}, {"sha256", r.sha256}, {"attach", r.attach}};
  const std::string path = state_file_path(settings_);
  const std::string tmp = path + ".tmp";
  std::error_code ec;
  const fs::path dir = fs::path(path).parent_path();
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    ::chmod(dir.c_str(), 0700);  // shared with the control socket: root only
  }
  const std::string text = nlohmann::json{{"version", 1}, {"programs", progs}}.dump(2) + "\n";
  // write + fsync + rename + fsync(dir): a crash leaves the old or the new
  // file, complete, never half of one or a rename that did not reach disk.
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return errno_error(errno, "writing state file {}", tmp);
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_error(n < 0 ? errno : EIO, "writing state file {}", tmp);
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return errno_error(errno, "writing state file {} (fsync)", tmp);
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return errno_error(errno, "replacing state file {}", path);
  Fd d(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.valid()) (void)::fsync(d.get());
  core::crash_point("write agent state");
  return ok();
}

std::string Agent::origin_locked(const std::string& name) const {
  auto it = records_.find(name);
  return it == records_.end() ? kOriginCli : it->second.origin;
}

std::vector<CurrentProgram> Agent::current_locked() const {
  std::vector<CurrentProgram> out;
  for (const auto& p : pm_->list()) {
    CurrentProgram c;
    c.name = p.name;
    // What runs is the manager's truth (object digest, hooks); the record
    // adds only why it runs. A record written as an intent before a kill
    // may name a version that never ran.
    auto it = records_.find(p.name);
    c.origin = it != records_.end() ? it->second.origin : kOriginCli;
    c.sha256 = p.sha256;
    c.attach = attach_strings(p);
    out.push_back(std::move(c));
  }
  return out;
}

// ---- apply ---------------------------------------------------------------------

Result<nlohmann::json> Agent::reload(const std::string& path) {
  std::lock_guard lk(mu_);
  const std::string file = path.empty() ? config_path_ : path;
  if (file.empty())
    return make_error("the agent runs without a config file; pass one (kagami apply FILE)");
  auto cfg = load_config(file, module_names_or_empty());
  if (!cfg) {
    ++applies_failed_;
    last_apply_ = {{"ok", false}, {"error", cfg.error().message}, {"time", std::time(nullptr)}};
    publish_view_locked();
    return cfg.error();
  }
  return apply_locked(std::move(*cfg));
}

// Everything an apply decided before touching the kernel (the plan step).
// Module instances that stay enabled are moved into next_modules; the
// destructor gives them back to the agent unless the apply committed.
struct Agent::PreparedApply {
  explicit PreparedApply(Agent& a) : agent(a) {}
  ~PreparedApply() {
    if (committed) return;
    for (auto& [n, m] : next_modules)
      if (taken.count(n) && m) agent.modules_[n] = std::move(m);
  }
  Agent& agent;
  Config cfg;
  std::vector<DesiredProgram> desired;
  std::map<std::string, std::string> owner;  // program name -> "programs[i]" / "modules.x"
  std::map<std::string, std::shared_ptr<ModuleSlot>> next_modules;
  std::map<std::string, nlohmann::json> next_features;
  std::set<std::string> taken;  // instances moved out of modules_
  nlohmann::json warnings = nlohmann::json::array();
  ApplyPlan plan;
  bool committed = false;
};

Result<nlohmann::json> Agent::apply_locked(Config cfg) {
  auto prep = plan_locked(std::move(cfg));
  if (!prep) {
    ++applies_failed_;
    last_apply_ = {{"ok", false}, {"error", prep.error().message}, {"time", std::time(nullptr)}};
    publish_view_locked();
    return prep.error();
  }
  auto r = execute_locked(**prep);
  if (!r) {
    ++applies_failed_;
    last_apply_ = {{"ok", false}, {"error", r.error().message}, {"time", std::time(nullptr)}};
  }
  prep->reset();  // gives the modules back on failure, before the view is taken
  publish_view_locked();
  return r;
}

// 1. Everything that can be checked without the kernel, for the whole
// config, and 2. the diff against what runs.
Result<std::unique_ptr<Agent::PreparedApply>> Agent::plan_locked(Config cfg) {
  auto prep = std::make_unique<PreparedApply>(*this);
  auto& warnings = prep->warnings;
  auto restart_note = [&](const char* key, const std::string& was, const std::string& now) {
    if (was != now)
      warnings.push_back(fmt::format("agent.{} changed ({} -> {}): takes effect after a restart", key,
                                     was, now));
  };
  // Settings fixed at start-up: note changes instead of silently ignoring them.
  if (!cfg.path.empty() || !cfg_.path.empty()) {
    restart_note("pin_root", settings_.pin_root, cfg.agent.pin_root);
    restart_note("socket", settings_.socket, cfg.agent.socket);
    restart_note("bpf_stats", bpf_stats_name(settings_.bpf_stats), bpf_stats_name(cfg.agent.bpf_stats));
    if (cfg_.agent.http != cfg.agent.http) restart_note("http", cfg_.agent.http, cfg.agent.http);
    if (cfg.trust.allowed_sha256 != pm_->options().trust.allowed_sha256 ||
        cfg.trust.allowed_prog_types != pm_->options().trust.allowed_prog_types)
      warnings.push_back("trust changed: takes effect after a restart");
  }
  auto& desired = prep->desired;
  auto& owner = prep->owner;
  for (size_t i = 0; i < cfg.programs.size(); ++i) {
    const auto& ps = cfg.programs[i];
    DesiredProgram d;
    d.origin = kOriginConfig;
    d.request.name = ps.name;
    d.request.source.path = ps.object;
    d.request.source.label = ps.object;
    d.request.attach = ps.attach;
    d.request.migrations = ps.migrations;
    auto sha = sha256_file(ps.object);
    if (!sha) return make_error("programs[{}].object: {} (line {})", i, sha.error().message, ps.line);
    d.sha256 = *sha;
    owner[ps.name] = fmt::format("programs[{}]", i);
    desired.push_back(std::move(d));
  }
  for (const auto& [name, ms] : cfg.modules) {
    if (!ms.enabled) continue;
    std::shared_ptr<ModuleSlot> slot;
    if (auto it = modules_.find(name); it != modules_.end()) {
      slot = it->second;  // given back by ~PreparedApply if the apply fails
      modules_.erase(it);
      prep->taken.insert(name);
    } else {
      auto mod = core::make_module(name);
      if (!mod) return make_error("modules.{}: unknown module (line {})", name, ms.line);
      slot = std::make_shared<ModuleSlot>();
      slot->module = std::move(mod);
    }
    // Kept in next_modules at once, so that every return below gives it back.
    prep->next_modules[name] = slot;
    std::lock_guard module_lock(slot->mu);  // a scrape may be collecting it
    core::Module& m = *slot->module;
    // The kernel features the module needs, probed one by one (each probe
    // runs once per process): a missing required one fails the apply before
    // anything is loaded; fallbacks are logged and shown in `kagami status`.
    core::ProbeReport probed;
    for (const auto& n : m.needs()) probed.features.push_back(core::probe_feature(n.feature));
    const core::Resolution res = core::resolve(m.needs(), probed);
    if (!res.ok()) return make_error("modules.{}: {} (line {})", name, res.error(), ms.line);
    for (const auto& f : res.fallbacks()) spdlog::info("modules.{}: {}", name, f);
    prep->next_features[name] = res.to_json();
    auto reqs = m.plan(ms.section, module_context(name, res));
    if (!reqs) return make_error("modules.{}: {} (line {})", name, reqs.error().message, ms.line);
    for (auto& req : *reqs) {
      if (auto o = owner.find(req.name); o != owner.end())
        return make_error("modules.{}: program name '{}' is also used by {} (line {})", name, req.name,
                          o->second, ms.line);
      owner[req.name] = "modules." + name;
      DesiredProgram d;
      d.origin = module_origin(name);
      if (!req.source.path.empty()) {
        auto sha = sha256_file(req.source.path);
        if (!sha) return sha.error().with_context("modules." + name);
        d.sha256 = *sha;
      } else {
        d.sha256 = sha256_bytes(req.source.bytes);
      }
      d.request = std::move(req);
      desired.push_back(std::move(d));
    }
  }
  prep->plan = plan_apply(desired, current_locked());
  prep->cfg = std::move(cfg);
  return prep;
}

// 3. Execute: adds, replaces, removes. The agent state file is written
// BEFORE each kernel change (an intent: a restart after a kill never counts
// a config or module program as ad hoc), and again after it.
Result<nlohmann::json> Agent::execute_locked(PreparedApply& prep) {
  const auto& plan = prep.plan;
  auto& warnings = prep.warnings;
  nlohmann::json report = {{"config", prep.cfg.path}, {"added", nlohmann::json::array()},
                           {"replaced", nlohmann::json::array()}, {"removed", nlohmann::json::array()},
                           {"unchanged", nlohmann::json::array()}, {"steps", nlohmann::json::array()}};
  std::vector<std::string> added_now;
  // The one rollback: unload what this apply added, forget the records it
  // wrote, and (through ~PreparedApply) give the old modules back.
  auto rollback = [&](const Error& e) -> Result<nlohmann::json> {
    for (auto it = added_now.rbegin(); it != added_now.rend(); ++it) {
      (void)pm_->unload(*it);
      records_.erase(*it);
    }
    if (auto w = save_state_locked(); !w) spdlog::error("apply rollback: {}", w.error().message);
    return e;
  };
  auto intend = [&](const std::string& name, Record r) -> Result<void> {
    records_[name] = std::move(r);
    return save_state_locked();
  };

  for (const auto& s : plan.steps) {
    const DesiredProgram* d = s.desired >= 0 ? &prep.desired[static_cast<size_t>(s.desired)] : nullptr;
    report["steps"].push_back({{"action", action_name(s.action)}, {"program", s.name},
                               {"origin", s.origin}, {"reason", s.reason}});
    const std::string who = prep.owner.count(s.name) ? prep.owner.at(s.name) : s.origin;
    switch (s.action) {
      case Action::Add: {
        if (auto w = intend(s.name, Record{s.origin, d->sha256, canonical_attach(d->request.attach)}); !w) {
          records_.erase(s.name);
          return rollback(w.error().with_context(fmt::format("loading '{}' ({})", s.name, who)));
        }
        auto r = pm_->load(d->request);
        if (!r) {
          records_.erase(s.name);
          return rollback(r.error().with_context(fmt::format("loading '{}' ({})", s.name, who)));
        }
        added_now.push_back(s.name);
        report["added"].push_back(s.name);
        spdlog::info("apply: loaded {} ({})", s.name, s.origin);
        break;
      }
      case Action::Replace: {
        const std::optional<Record> before =
            records_.count(s.name) ? std::optional<Record>(records_.at(s.name)) : std::nullopt;
        auto already = [&] {
          return fmt::format("; already applied: added {}, replaced {}", report["added"].dump(),
                             report["replaced"].dump());
        };
        if (auto w = intend(s.name, Record{s.origin, d->sha256, canonical_attach(d->request.attach)}); !w) {
          if (before) records_[s.name] = *before;
          return rollback(w.error().with_context(fmt::format("replacing '{}'", s.name)));
        }
        Result<core::ProgramInfo> r = make_error("not run");
        bool gone = false;
        if (s.attach_changed) {
          // Moving hooks is unload + load: the manager's replace is atomic per
          // hook and therefore keeps the hooks (docs/agent.md).
          auto u = pm_->unload(s.name);
          gone = static_cast<bool>(u);
          r = u ? pm_->load(d->request) : Result<core::ProgramInfo>(u.error());
        } else {
          r = pm_->replace(s.name, d->request);
        }
        if (!r) {
          if (gone) records_.erase(s.name);
          else if (before) records_[s.name] = *before;
          if (auto w = save_state_locked(); !w) spdlog::error("apply: {}", w.error().message);
          // Earlier steps of this apply stay (they succeeded); the error says which.
          return r.error().with_context(fmt::format("replacing '{}' ({}){}", s.name, s.reason, already()));
        }
        report["replaced"].push_back(s.name);
        spdlog::info("apply: replaced {} ({})", s.name, s.reason);
        break;
      }
      case Action::Remove: {
        // The record stays until the program is gone: a kill in between
        // leaves a record of a program that no longer runs, which the next
        // start drops.
        auto r = pm_->unload(s.name);
        if (!r) {
          warnings.push_back(fmt::format("unloading '{}': {}", s.name, r.error().message));
          spdlog::error("apply: unloading {}: {}", s.name, r.error().message);
          break;
        }
        records_.erase(s.name);
        if (auto w = save_state_locked(); !w) warnings.push_back(w.error().message);
        report["removed"].push_back(s.name);
        spdlog::info("apply: unloaded {} ({})", s.name, s.reason);
        break;
      }
      case Action::Keep: {
        Record& rec = records_[s.name];
        rec.origin = s.origin;  // a take-over from the CLI changes only the origin
        if (rec.sha256.empty()) rec.sha256 = d->sha256;
        if (rec.attach.empty()) rec.attach = canonical_attach(d->request.attach);
        report["unchanged"].push_back(s.name);
        break;
      }
    }
  }
  // Commit.
  prep.committed = true;
  stop_leaving_modules_locked(prep.next_modules);  // [events] stop() for modules going away
  modules_ = std::move(prep.next_modules);
  module_features_ = std::move(prep.next_features);
  std::set<std::string> configured;  // [events]
  for (auto& [n, slot] : modules_) {
    std::lock_guard module_lock(slot->mu);
    if (auto c = slot->module->configure(*pm_); !c) {
      warnings.push_back(fmt::format("modules.{}: {}", n, c.error().message));
    } else {
      configured.insert(n);  // [events]
    }
  }
  after_apply_events_locked(configured, warnings);  // [events] start(), event sources
  Config& effective = prep.cfg;
  if (effective.agent.log.level != cfg_.agent.log.level || effective.agent.log.json != cfg_.agent.log.json)
    log::init(effective.agent.log);
  if (!effective.path.empty()) config_path_ = effective.path;
  cfg_ = std::move(effective);
  if (auto w = save_state_locked(); !w)
    return w.error().with_context("applied, but the agent state (program origins) was not saved");
  report["warnings"] = warnings;
  for (const auto& w : warnings) spdlog::warn("apply: {}", w.get<std::string>());
  ++applies_ok_;
  last_apply_ = {{"ok", true},
                 {"time", std::time(nullptr)},
                 {"added", report["added"].size()},
                 {"replaced", report["replaced"].size()},
                 {"removed", report["removed"].size()},
                 {"unchanged", report["unchanged"].size()}};
  return report;
}

// ---- control operations ------------------------------------------------------------

Result<nlohmann::json> Agent::handle(const Request& req) {
  using Handler = Result<nlohmann::json> (*)(Agent&, const Request&);
  // The protocol's op table (docs/agent.md lists the same ops and arguments).
  static const std::map<std::string, Handler> ops = {
      {"prog.load", [](Agent& a, const Request& r) { return a.op_prog_load(r); }},
      {"prog.replace", [](Agent& a, const Request& r) { return a.op_prog_replace(r); }},
      {"prog.unload", [](Agent& a, const Request& r) { return a.op_prog_unload(r); }},
      {"prog.list", [](Agent& a, const Request&) -> Result<nlohmann::json> { return a.programs_json(); }},
      {"prog.get",
       [](Agent& a, const Request& r) -> Result<nlohmann::json> {
         auto n = arg_string(r, "name");
         if (!n) return n.error();
         return a.program_json(*n);
       }},
      {"apply",
       [](Agent& a, const Request& r) -> Result<nlohmann::json> {
         auto f = arg_string(r, "file", false);
         if (!f) return f.error();
         return a.reload(*f);
       }},
      {"status", [](Agent& a, const Request&) -> Result<nlohmann::json> { return a.status_json(); }},
      {"modules", [](Agent& a, const Request&) -> Result<nlohmann::json> { return a.modules_json(); }},
      {"stats", [](Agent& a, const Request&) -> Result<nlohmann::json> { return a.stats_json(); }},
      {"prog.stats",
       [](Agent& a, const Request& r) -> Result<nlohmann::json> {
         int64_t ms = 1000;
         if (auto it = r.args.find("window_ms"); it != r.args.end()) {
           if (!it->is_number_integer()) return make_error("prog.stats: 'window_ms' must be an integer");
           ms = it->get<int64_t>();
         }
         return a.sample_stats_json(std::chrono::milliseconds(ms));
       }},
      {"events", [](Agent& a, const Request& r) { return a.op_events(r); }},  // [events]
  };
  auto it = ops.find(req.op);
  if (it == ops.end()) {
    std::string known;
    for (const auto& [k, v] : ops) known += (known.empty() ? "" : ", ") + k;
    return make_error("unknown op '{}' (known: {})", req.op, known);
  }
  return it->second(*this, req);
}

Result<nlohmann::json> Agent::op_prog_load(const Request& r) {
  auto name = arg_string(r, "name");
  if (!name) return name.error();
  auto object = arg_string(r, "object");
  if (!object) return object.error();
  auto specs = arg_string_list(r, "attach");
  if (!specs) return specs.error();
  if (!names::valid_program_name(*name))
    return make_error("invalid program name '{}' (use [a-z0-9_-], 1 to 32 characters)", *name);
  if (object->empty() || (*object)[0] != '/')
    return make_error("object path '{}' must be absolute (the CLI resolves it)", *object);
  core::LoadRequest req;
  req.name = *name;
  req.source.path = *object;
  req.source.label = *object;
  for (const auto& s : *specs) {
    auto ap = core::AttachPoint::parse(s);
    if (!ap) return ap.error().with_context("--attach " + s);
    req.attach.push_back(std::move(*ap));
  }
  std::lock_guard lk(mu_);
  if (auto it = records_.find(*name); it != records_.end())
    return make_error("program '{}' is already loaded (origin {}); use prog replace", *name,
                      it->second.origin);
  auto sha = sha256_file(*object);
  if (!sha) return sha.error();
  auto info = pm_->load(req);
  if (!info) return info.error();
  records_[*name] = Record{kOriginCli, *sha, canonical_attach(req.attach)};
  auto saved = save_state_locked();
  publish_view_locked();
  spdlog::info("cli: loaded {} from {}", *name, *object);
  nlohmann::json j = program_to_json_locked(*info);
  if (!saved) j["warning"] = saved.error().message;
  return j;
}

Result<nlohmann::json> Agent::op_prog_replace(const Request& r) {
  auto name = arg_string(r, "name");
  if (!name) return name.error();
  auto object = arg_string(r, "object");
  if (!object) return object.error();
  if (object->empty() || (*object)[0] != '/')
    return make_error("object path '{}' must be absolute (the CLI resolves it)", *object);
  auto migrations = parse_migrations(r);
  if (!migrations) return migrations.error();
  auto specs = arg_string_list(r, "attach");
  if (!specs) return specs.error();
  std::lock_guard lk(mu_);
  auto cur = pm_->get(*name);
  if (!cur) return cur.error();
  const std::string origin = origin_locked(*name);
  if (origin.rfind("module:", 0) == 0)
    return make_error("program '{}' belongs to {}; change the module's config section instead", *name,
                      origin);
  core::LoadRequest req;
  req.name = *name;
  req.source.path = *object;
  req.source.label = *object;
  req.migrations = *migrations;
  if (specs->empty()) {
    for (const auto& a : cur->attachments) req.attach.push_back(a.point);  // keep the hooks
  } else {
    for (const auto& s : *specs) {
      auto ap = core::AttachPoint::parse(s);
      if (!ap) return ap.error().with_context("--attach " + s);
      req.attach.push_back(std::move(*ap));
    }
  }
  auto sha = sha256_file(*object);
  if (!sha) return sha.error();
  auto info = pm_->replace(*name, req);
  if (!info) return info.error();
  records_[*name] = Record{origin, *sha, canonical_attach(req.attach)};
  auto saved = save_state_locked();
  publish_view_locked();
  spdlog::info("cli: replaced {} with {} (generation {})", *name, *object, info->generation);
  nlohmann::json j = program_to_json_locked(*info);
  if (!saved) j["warning"] = saved.error().message;
  if (origin == kOriginConfig)
    j["warning"] = "this program comes from the config; the next apply restores the config's object";
  return j;
}

Result<nlohmann::json> Agent::op_prog_unload(const Request& r) {
  auto name = arg_string(r, "name");
  if (!name) return name.error();
  std::lock_guard lk(mu_);
  const std::string origin = origin_locked(*name);
  if (origin.rfind("module:", 0) == 0)
    return make_error("program '{}' belongs to {}; disable the module in the config instead", *name,
                      origin);
  KAGAMI_TRY(pm_->unload(*name));
  records_.erase(*name);
  if (auto w = save_state_locked(); !w) spdlog::error("cli: unloaded {}: {}", *name, w.error().message);
  publish_view_locked();
  spdlog::info("cli: unloaded {}", *name);
  nlohmann::json j = {{"unloaded", *name}, {"origin", origin}};
  if (origin == kOriginConfig)
    j["warning"] = "this program is in the config; the next apply loads it again";
  return j;
}

// ---- views -------------------------------------------------------------------------

nlohmann::json Agent::program_to_json_locked(const core::ProgramInfo& p) const {
  nlohmann::json j = to_json(p);
  j["origin"] = origin_locked(p.name);
  return j;
}

nlohmann::json Agent::programs_json() {
  std::lock_guard lk(mu_);
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& p : pm_->list()) arr.push_back(program_to_json_locked(p));
  return arr;
}

Result<nlohmann::json> Agent::program_json(const std::string& name) {
  std::lock_guard lk(mu_);
  auto p = pm_->get(name);
  if (!p) return p.error();
  return program_to_json_locked(*p);
}

nlohmann::json Agent::attachments_json() {
  std::lock_guard lk(mu_);
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& p : pm_->list())
    for (const auto& a : p.attachments) {
      nlohmann::json j = to_json(a);
      j["owner"] = p.name;
      arr.push_back(std::move(j));
    }
  return arr;
}

nlohmann::json Agent::maps_json() {
  std::lock_guard lk(mu_);
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& p : pm_->list())
    for (const auto& m : p.maps) {
      nlohmann::json j = to_json(m);
      j["owner"] = p.name;
      arr.push_back(std::move(j));
    }
  return arr;
}

nlohmann::json Agent::stats_json() {
  std::lock_guard lk(mu_);
  uint64_t runs = 0, ns = 0;
  size_t progs = 0;
  auto list = pm_->list();
  for (const auto& p : list)
    for (const auto& pr : p.progs) {
      runs += pr.run_cnt;
      ns += pr.run_time_ns;
      ++progs;
    }
  return {{"uptime_seconds",
           std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count()},
          {"rss_bytes", rss_bytes()},
          {"cpu_seconds", cpu_seconds()},
          {"program_sets", list.size()},
          {"bpf_programs", progs},
          {"run_count_total", runs},
          {"run_time_ns_total", ns},
          {"applies_ok", applies_ok_},
          {"applies_failed", applies_failed_},
          {"last_apply", last_apply_},
          {"module_collect_errors", collect_errors_.load()}};
}

nlohmann::json Agent::modules_json() {
  std::lock_guard lk(mu_);
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, slot] : modules_) {
    std::lock_guard module_lock(slot->mu);
    auto s = slot->module->snapshot(*pm_);
    out[name] = s ? *s : nlohmann::json{{"error", s.error().message}};
  }
  return out;
}

nlohmann::json Agent::status_json() {
  nlohmann::json stats = stats_json();
  std::lock_guard lk(mu_);
  nlohmann::json mods = nlohmann::json::array();
  for (const auto& [name, m] : modules_) mods.push_back(name);
  std::map<std::string, int> per_origin;
  for (const auto& p : pm_->list()) per_origin[origin_locked(p.name)]++;
  return {{"version", KAGAMI_VERSION},
          {"node", settings_.node},
          {"pid", ::getpid()},
          {"http", http_address()},
          {"socket", settings_.socket},
          {"pin_root", settings_.pin_root},
          {"state_file", state_file_path(settings_)},
          {"config", config_path_},
          {"modules", mods},
          {"module_features", module_features_},
          {"programs_by_origin", per_origin},
          {"adoption_errors", pm_->adoption_errors()},
          {"stats", stats}};
}

Result<nlohmann::json> Agent::sample_stats_json(std::chrono::milliseconds window) {
  if (window.count() < 10 || window.count() > 10000)
    return make_error("stats window {} ms is out of range (10 to 10000 ms)", window.count());
  // Not under mu_: the window must not hold up applies or the CLI.
  auto samples = pm_->sample_stats(window);
  if (!samples) return samples.error();
  nlohmann::json arr = nlohmann::json::array();
  const double secs = std::chrono::duration<double>(window).count();
  for (const auto& s : *samples)
    arr.push_back({{"program", s.program},
                   {"prog", s.prog},
                   {"id", s.id},
                   {"run_cnt", s.run_cnt},
                   {"run_time_ns", s.run_time_ns},
                   {"runs_per_second", static_cast<double>(s.run_cnt) / secs},
                   {"avg_ns", s.run_cnt ? static_cast<double>(s.run_time_ns) / static_cast<double>(s.run_cnt) : 0.0}});
  return nlohmann::json{{"window_ms", window.count()}, {"programs", arr}};
}

void Agent::publish_view_locked() {
  auto v = std::make_shared<View>();
  for (const auto& [n, slot] : modules_) v->modules.emplace_back(n, slot);
  for (const auto& [n, r] : records_) v->origins[n] = r.origin;
  v->applies_ok = applies_ok_;
  v->applies_failed = applies_failed_;
  v->last_apply_ok = last_apply_.value("ok", true);
  std::lock_guard lk(view_mu_);
  view_ = std::move(v);
}

std::shared_ptr<const Agent::View> Agent::view() const {
  std::lock_guard lk(view_mu_);
  return view_;
}

std::vector<core::MetricFamily> Agent::collect_module(const std::string& name,
                                                      const std::shared_ptr<ModuleSlot>& slot) {
  // Long enough for any healthy collect (they take milliseconds), short
  // enough to stay well inside Prometheus' default 10 s scrape timeout.
  constexpr auto kDeadline = std::chrono::seconds(2);
  struct Call {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Result<std::vector<core::MetricFamily>> result = make_error("not run");
  };
  {
    std::lock_guard lk(slot->state_mu);
    if (slot->collecting) {
      ++collect_errors_;
      spdlog::warn("metrics: module {}: the previous collect is still running; serving its last metrics", name);
      return slot->last;
    }
    slot->collecting = true;
  }
  auto call = std::make_shared<Call>();
  std::thread([slot, call, pm = pm_] {
    Result<std::vector<core::MetricFamily>> r = make_error("not run");
    {
      std::lock_guard ml(slot->mu);
      r = slot->module->collect(*pm);
    }
    {
      std::lock_guard lk(slot->state_mu);
      slot->collecting = false;
      if (r) slot->last = *r;
    }
    std::lock_guard lk(call->mu);
    call->result = std::move(r);
    call->done = true;
    call->cv.notify_all();
  }).detach();
  std::unique_lock lk(call->mu);
  if (!call->cv.wait_for(lk, kDeadline, [&] { return call->done; })) {
    ++collect_errors_;
    spdlog::warn("metrics: module {}: collect takes longer than {} s; serving its last metrics", name,
                 kDeadline.count());
    std::lock_guard sl(slot->state_mu);
    return slot->last;
  }
  if (!call->result) {
    ++collect_errors_;
    spdlog::warn("metrics: module {}: {}", name, call->result.error().message);
    return {};
  }
  return *call->result;
}

std::string Agent::metrics_text() {
  // Neither the agent's mutex nor the manager's: an apply (or a load the
  // verifier takes seconds over) does not hold up a scrape.
  const auto v = view();
  std::vector<ProgramRow> rows;
  for (auto& p : pm_->list()) {
    auto o = v->origins.find(p.name);
    rows.push_back({p, o == v->origins.end() ? std::string(kOriginCli) : o->second});
  }
  std::vector<core::MetricFamily> families = program_families(rows);
  for (const auto& [name, slot] : v->modules) {
    auto fams = collect_module(name, slot);
    families.insert(families.end(), fams.begin(), fams.end());
  }
  AgentFacts f;
  f.version = KAGAMI_VERSION;
  f.node = settings_.node;
  f.applies_ok = v->applies_ok;
  f.applies_failed = v->applies_failed;
  f.last_apply_ok = v->last_apply_ok;
  f.start_time_seconds = start_unix_;
  f.uptime_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  f.rss_bytes = rss_bytes();
  f.cpu_seconds = cpu_seconds();
  f.collect_errors = collect_errors_.load();
  auto agent = agent_families(f);
  families.insert(families.begin(), agent.begin(), agent.end());
  if (bus_) {  // [events] kagami_events_total, kagami_events_dropped_total (kernel + userspace causes)
    auto ev = bus_->metric_families(settings_.node);
    families.insert(families.end(), ev.begin(), ev.end());
  }
  auto r = render_prometheus(families);
  for (const auto& w : r.warnings) spdlog::debug("metrics: {}", w);
  return r.text;
}

}  // namespace kagami::agent
