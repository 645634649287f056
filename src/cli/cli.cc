#include "cli/cli.h"

#include "common/names.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>
#include <variant>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/control_socket.h"
#include "cli/events_cmd.h"  // [events]
#include "core/probe.h"
#include "replay/replay.h"
#include "replay/table.h"
#include "replay/ue_timeline.h"

namespace kagami::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kDefaultSocket = "/run/kagami/kagami.sock";

// Every value any command takes; the table below says which command uses which.
struct Opts {
  std::string socket = kDefaultSocket;
  bool socket_given = false;
  bool json = false;
  std::string config, http, pin_root, state_file;
  std::string object, name, file;
  std::string watch, count, window;
  std::vector<std::string> sections;
  bool brief = false;
  std::vector<std::string> attach, migrate, modules;
  std::string event_module, limit = "100";  // [events]
  bool follow = false;                      // [events]
  bool falco = false;                       // [events]
  bool ue_timeline = false;                 // replay --ue-timeline
};

struct Io {
  std::ostream& out;
  std::ostream& err;
};

// A command fails with an Error; the runner prints it as "kagami: <message>".
using Runner = Result<void> (*)(const Opts&, Io&);

struct Arg {
  enum Kind { Positional, Option, Flag };
  Kind kind;
  const char* name;  // "OBJ", "--name,-n", "--json"
  const char* help;
  std::variant<std::string Opts::*, std::vector<std::string> Opts::*, bool Opts::*> field;
  bool required = false;
};

struct Command {
  const char* path;  // "prog load": the subcommand chain
  const char* help;
  std::vector<Arg> args;
  Runner run;
};

// ---- helpers ------------------------------------------------------------------

Result<json> call(const Opts& o, const std::string& op, const json& args) {
  return agent::call_agent(o.socket, op, args);
}

std::string absolute(const std::string& p) {
  std::error_code ec;
  auto a = fs::absolute(p, ec);
  return ec ? p : a.lexically_normal().string();
}

void print_json(Io& io, const json& j) {
  io.out << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

std::string short_sha(const json& p) {
  std::string s = p.value("sha256", "");
  return s.substr(0, 12);
}

std::string prog_ids(const json& p) {
  std::string out;
  for (const auto& pr : p.value("progs", json::array()))
    out += (out.empty() ? "" : ",") + std::to_string(pr.value("id", 0u));
  return out.empty() ? "-" : out;
}

std::string attach_list(const json& p) {
  std::string out;
  for (const auto& a : p.value("attachments", json::array()))
    out += (out.empty() ? "" : " ") + a.value("point", std::string());
  return out.empty() ? "-" : out;
}

void print_program_table(Io& io, const json& list) {
  std::vector<std::vector<std::string>> rows = {{"NAME", "ORIGIN", "GEN", "PROG IDS", "SHA256", "ATTACH"}};
  for (const auto& p : list)
    rows.push_back({p.value("name", ""), p.value("origin", ""), std::to_string(p.value("generation", 0u)),
                    prog_ids(p), short_sha(p), attach_list(p)});
  std::vector<size_t> w(rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i)
      line += i + 1 == r.size() ? r[i] : fmt::format("{:<{}}  ", r[i], w[i]);
    io.out << line << "\n";
  }
}

Result<json> parse_migrate_flags(const std::vector<std::string>& flags) {
  json out = json::array();
  for (const auto& f : flags) {
    auto eq = f.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == f.size())
      return make_error("invalid --migrate '{}': expected MAP=RULE (rule: reset, extend, refuse)", f);
    auto rule = agent::parse_migration_rule(f.substr(eq + 1));
    if (!rule) return rule.error().with_context("invalid --migrate '" + f + "'");
    out.push_back({{"map", f.substr(0, eq)}, {"rule", f.substr(eq + 1)}});
  }
  return out;
}

// ---- commands -------------------------------------------------------------------

Result<void> cmd_agent(const Opts& o, Io& io) {
  agent::AgentOptions ao;
  if (!o.config.empty()) ao.config_path = absolute(o.config);
  if (!o.http.empty()) ao.http = o.http;
  if (!o.pin_root.empty()) ao.pin_root = o.pin_root;
  if (!o.state_file.empty()) ao.state_file = o.state_file;
  if (o.socket_given) ao.socket = o.socket;
  auto a = agent::Agent::create(ao);
  if (!a) return a.error();
  KAGAMI_TRY((*a)->start());
  if (o.json)
    io.out << (*a)->status_json().dump() << "\n" << std::flush;
  else
    io.out << fmt::format("kagami agent running: http {}, socket {}\n", (*a)->http_address(),
                          (*a)->socket_path())
           << std::flush;
  const int rc = (*a)->run();
  if (rc != 0) return make_error("agent exited with status {}", rc);
  return ok();
}

Result<void> cmd_prog_load(const Opts& o, Io& io) {
  if (!names::valid_program_name(o.name))
    return make_error("invalid --name '{}' (use [a-z0-9_-], 1 to 32 characters)", o.name);
  for (const auto& s : o.attach) {
    auto ap = core::AttachPoint::parse(s);
    if (!ap) return ap.error().with_context("invalid --attach '" + s + "'");
  }
  const std::string obj = absolute(o.object);
  std::error_code ec;
  if (!fs::is_regular_file(obj, ec)) return make_error("object {}: no such file", obj);
  auto r = call(o, "prog.load", {{"name", o.name}, {"object", obj}, {"attach", o.attach}});
  if (!r) return r.error();
  if (o.json) print_json(io, *r);
  else io.out << fmt::format("loaded {} (prog ids {}) attached to {}\n", o.name, prog_ids(*r), attach_list(*r));
  return ok();
}

Result<void> cmd_prog_replace(const Opts& o, Io& io) {
  auto migrations = parse_migrate_flags(o.migrate);
  if (!migrations) return migrations.error();
  const std::string obj = absolute(o.object);
  std::error_code ec;
  if (!fs::is_regular_file(obj, ec)) return make_error("object {}: no such file", obj);
  json args = {{"name", o.name}, {"object", obj}, {"migrations", *migrations}};
  if (!o.attach.empty()) args["attach"] = o.attach;
  auto r = call(o, "prog.replace", args);
  if (!r) return r.error();
  if (o.json) {
    print_json(io, *r);
  } else {
    io.out << fmt::format("replaced {} (generation {}, prog ids {})\n", o.name, r->value("generation", 0u),
                          prog_ids(*r));
    if (r->contains("warning")) io.err << "kagami: warning: " << (*r)["warning"].get<std::string>() << "\n";
  }
  return ok();
}

Result<void> cmd_prog_list(const Opts& o, Io& io) {
  auto r = call(o, "prog.list", json::object());
  if (!r) return r.error();
  if (o.json) print_json(io, *r);
  else print_program_table(io, *r);
  return ok();
}

// Kernel run-time stats for one sampling window (as bpftop does): the agent
// turns BPF_ENABLE_STATS on for the window only, so no program on the node
// pays for the clock reads the rest of the time (agent.bpf_stats).
Result<void> cmd_prog_stats(const Opts& o, Io& io) {
  int64_t ms = 1000;
  if (!o.window.empty()) {
    try {
      size_t used = 0;
      ms = std::stoll(o.window, &used);
      if (used != o.window.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      return make_error("invalid --window '{}': expected milliseconds (10 to 10000)", o.window);
    }
  }
  auto r = call(o, "prog.stats", {{"window_ms", ms}});
  if (!r) return r.error();
  if (o.json) {
    print_json(io, *r);
    return ok();
  }
  io.out << fmt::format("{:<24} {:<24} {:>8} {:>14} {:>10}\n", "PROGRAM", "PROG", "ID", "RUNS/S", "AVG NS");
  for (const auto& p : (*r)["programs"])
    io.out << fmt::format("{:<24} {:<24} {:>8} {:>14.1f} {:>10.1f}\n", p.value("program", ""), p.value("prog", ""),
                          p.value("id", 0u), p.value("runs_per_second", 0.0), p.value("avg_ns", 0.0));
  return ok();
}

Result<void> cmd_prog_show(const Opts& o, Io& io) {
  auto r = call(o, "prog.get", {{"name", o.name}});
  if (!r) return r.error();
  print_json(io, *r);  // the full record is nested; JSON is its readable form too
  return ok();
}

Result<void> cmd_prog_unload(const Opts& o, Io& io) {
  auto r = call(o, "prog.unload", {{"name", o.name}});
  if (!r) return r.error();
  if (o.json) {
    print_json(io, *r);
  } else {
    io.out << "unloaded " << o.name << "\n";
    if (r->contains("warning")) io.err << "kagami: warning: " << (*r)["warning"].get<std::string>() << "\n";
  }
  return ok();
}

Result<void> cmd_apply(const Opts& o, Io& io) {
  json args = json::object();
  if (!o.file.empty()) {
    const std::string f = absolute(o.file);
    // Validate locally first: the operator sees the error even when the agent
    // runs elsewhere, and the agent re-validates anyway.
    auto cfg = agent::load_config(f);
    if (!cfg) return cfg.error();
    args["file"] = f;
  }
  auto r = call(o, "apply", args);
  if (!r) return r.error();
  if (o.json) {
    print_json(io, *r);
    return ok();
  }
  auto names = [](const json& a) {
    std::string s;
    for (const auto& n : a) s += (s.empty() ? "" : ", ") + n.get<std::string>();
    return s.empty() ? std::string("none") : s;
  };
  io.out << fmt::format("applied {}: added {}; replaced {}; removed {}; unchanged {}\n",
                        r->value("config", std::string("config")), names((*r)["added"]),
                        names((*r)["replaced"]), names((*r)["removed"]), (*r)["unchanged"].size());
  for (const auto& w : r->value("warnings", json::array()))
    io.err << "kagami: warning: " << w.get<std::string>() << "\n";
  return ok();
}

Result<void> cmd_status(const Opts& o, Io& io) {
  auto r = call(o, "status", json::object());
  if (!r) return r.error();
  if (o.json) {
    print_json(io, *r);
    return ok();
  }
  const json& s = *r;
  const json stats = s.value("stats", json::object());
  io.out << fmt::format("agent      kagami {} on {} (pid {})\n", s.value("version", ""), s.value("node", ""),
                        s.value("pid", 0));
  io.out << fmt::format("http       {}\n", s.value("http", ""));
  io.out << fmt::format("socket     {}\n", s.value("socket", ""));
  io.out << fmt::format("pin root   {}\n", s.value("pin_root", ""));
  io.out << fmt::format("config     {}\n", s.value("config", std::string()).empty()
                                               ? std::string("(defaults)")
                                               : s.value("config", std::string()));
  std::string mods;
  for (const auto& m : s.value("modules", json::array())) mods += (mods.empty() ? "" : ", ") + m.get<std::string>();
  io.out << fmt::format("modules    {}\n", mods.empty() ? "none" : mods);
  io.out << fmt::format("programs   {} ({} BPF programs)\n", stats.value("program_sets", 0),
                        stats.value("bpf_programs", 0));
  io.out << fmt::format("uptime     {:.0f} s, rss {:.1f} MiB\n", stats.value("uptime_seconds", 0.0),
                        stats.value("rss_bytes", 0.0) / 1048576.0);
  const json last = stats.value("last_apply", json::object());
  if (last.value("ok", true)) io.out << "last apply ok\n";
  else io.out << "last apply FAILED: " << last.value("error", std::string()) << "\n";
  return ok();
}

Result<void> cmd_probe(const Opts& o, Io& io) {
  const core::ProbeReport rep = core::probe_features();
  if (o.json) print_json(io, rep.to_json());
  else io.out << rep.to_table();
  return ok();
}

Result<void> cmd_replay(const Opts& o, Io& io) {
  replay::ReplayOptions ro;
  ro.file = o.file;
  ro.modules = o.modules;
  if (o.ue_timeline) {
    // The timeline is n2's: run it alone unless modules were named.
    if (ro.modules.empty()) ro.modules = {"n2"};
    else if (std::find(ro.modules.begin(), ro.modules.end(), "n2") == ro.modules.end())
      return make_error("replay --ue-timeline: needs the n2 module (--module n2)");
  }
  auto r = replay::run(ro);
  if (!r) return r.error();
  if (o.ue_timeline) {
    auto lines = replay::ue_timeline(*r);
    if (!lines) return lines.error();
    for (const auto& l : *lines) io.out << l.dump() << "\n";
    return ok();
  }
  if (o.json) print_json(io, *r);
  else io.out << replay::render_text(*r);
  return ok();
}

// Module snapshots as tables (replay/table.h): "[obs.gtpu]" per section.
// With `previous` (the snapshot `seconds` earlier), counters get rates.
// --section: "obs" keeps a module, "obs.gtpu" one section; none keeps all.
bool wanted(const std::vector<std::string>& sections, const std::string& mod, const std::string& sec) {
  if (sections.empty()) return true;
  for (const auto& w : sections)
    if (w == mod || w == mod + "." + sec) return true;
  return false;
}

std::string render_modules(const json& mods, const json* previous, double seconds,
                           const std::vector<std::string>& sections, bool brief) {
  if (!mods.is_object()) return "not a module snapshot: " + mods.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  std::string out;
  for (auto it = mods.begin(); it != mods.end(); ++it) {
    const json* prev_mod = previous && previous->is_object() && previous->contains(it.key()) ? &(*previous)[it.key()] : nullptr;
    if (!it->is_object()) {
      out += fmt::format("[{}] {}\n", it.key(), it->dump(-1, ' ', false, json::error_handler_t::replace));
      continue;
    }
    std::string scalars;
    for (auto s = it->begin(); s != it->end(); ++s) {
      if (!wanted(sections, it.key(), s.key())) continue;
      const json* prev = prev_mod && prev_mod->is_object() && prev_mod->contains(s.key()) ? &(*prev_mod)[s.key()] : nullptr;
      replay::TableStyle style;
      style.seconds = seconds;
      style.previous = prev;
      style.brief = brief;
      if (!s->is_structured()) {
        json one = {{s.key(), *s}};
        json prev_one = prev ? json{{s.key(), *prev}} : json::object();
        style.previous = prev ? &prev_one : nullptr;
        scalars += replay::render_section(one, style);
        continue;
      }
      std::string body = replay::render_section(*s, style);
      out += fmt::format("[{}.{}]\n{}", it.key(), s.key(), body.empty() ? "  (all zero)\n" : body);
    }
    if (!scalars.empty()) out += fmt::format("[{}]\n{}", it.key(), scalars);
  }
  return out;
}

Result<double> positive_number(const std::string& flag, const std::string& v) {
  try {
    size_t used = 0;
    double d = std::stod(v, &used);
    if (used == v.size() && d > 0 && d < 86400) return d;
  } catch (const std::exception&) {
  }
  return make_error("invalid {} '{}': expected a positive number", flag, v);
}

Result<void> cmd_modules(const Opts& o, Io& io) {
  double interval = 0, count = 0;
  if (!o.watch.empty()) {
    auto w = positive_number("--watch", o.watch);
    if (!w) return w.error();
    interval = *w;
  }
  if (!o.count.empty()) {
    auto c = positive_number("--count", o.count);
    if (!c) return c.error();
    count = *c;
  }
  if (o.watch.empty()) {
    auto r = call(o, "modules", json::object());
    if (!r) return r.error();
    if (o.json) print_json(io, *r);
    else io.out << render_modules(*r, nullptr, 0, o.sections, o.brief);
    return ok();
  }
  // --watch: a block every interval, rates over the interval (like top).
  json previous;
  auto last = std::chrono::steady_clock::now();
  for (long n = 0; count == 0 || n < static_cast<long>(count); n++) {
    if (n) std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    auto r = call(o, "modules", json::object());
    if (!r) return r.error();
    auto now = std::chrono::steady_clock::now();
    double dt = std::chrono::duration<double>(now - last).count();
    last = now;
    if (o.json) {
      io.out << r->dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    } else {
      std::time_t t = std::time(nullptr);
      char hms[16];
      std::strftime(hms, sizeof hms, "%H:%M:%S", std::localtime(&t));
      io.out << fmt::format("---- {} {}\n", hms,
                            n ? fmt::format("rates over the last {:.1f} s", dt) : std::string("totals; rates from the next block"));
      io.out << render_modules(*r, n ? &previous : nullptr, n ? dt : 0, o.sections, o.brief);
    }
    io.out.flush();
    previous = std::move(*r);
  }
  return ok();
}

// [events] history over the control socket; --follow over the HTTP stream.
EventFormat fmt_of(const Opts& o) { return o.falco ? EventFormat::Falco : o.json ? EventFormat::Json : EventFormat::Text; }
Result<void> cmd_events(const Opts& o, Io& io) {
  if (o.follow) {
    auto st = call(o, "status", json::object());
    if (!st) return st.error();
    return follow_events(st->value("http", std::string()), o.event_module, fmt_of(o), io.out);
  }
  json args = {{"limit", o.limit}};
  if (!o.event_module.empty()) args["module"] = o.event_module;
  auto r = call(o, "events", args);
  if (!r) return r.error();
  print_events(*r, fmt_of(o), io.out, local_hostname());
  return ok();
}

// ---- the table ------------------------------------------------------------------

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"agent", "Run the node agent in the foreground",
       {{Arg::Option, "--config,-c", "YAML config file (default: built-in defaults)", &Opts::config},
        {Arg::Option, "--http", "override agent.http (host:port; port 0 = any free port)", &Opts::http},
        {Arg::Option, "--pin-root", "override agent.pin_root (under /sys/fs/bpf)", &Opts::pin_root},
        {Arg::Option, "--state-file", "override agent.state_file", &Opts::state_file}},
       cmd_agent},
      {"prog load", "Load an eBPF object and attach it",
       {{Arg::Positional, "OBJ", "the .bpf.o file", &Opts::object, true},
        {Arg::Option, "--name,-n", "program name ([a-z0-9_-]{1,32})", &Opts::name, true},
        {Arg::Option, "--attach,-a", "attach point, repeatable (e.g. xdp:eth0, tc:eth0:ingress#10)",
         &Opts::attach}},
       cmd_prog_load},
      {"prog replace", "Atomically replace a loaded program, carrying its maps over",
       {{Arg::Positional, "NAME", "loaded program name", &Opts::name, true},
        {Arg::Positional, "OBJ", "the new .bpf.o file", &Opts::object, true},
        {Arg::Option, "--migrate,-m", "MAP=reset|extend|refuse, repeatable", &Opts::migrate},
        {Arg::Option, "--attach,-a", "new attach points (default: keep the current ones)", &Opts::attach}},
       cmd_prog_replace},
      {"prog list", "List loaded programs", {}, cmd_prog_list},
      {"prog stats", "Sample the kernel's run counts and times of every program for a window",
       {{Arg::Option, "--window", "sampling window in ms (10..10000, default 1000)", &Opts::window}},
       cmd_prog_stats},
      {"prog show", "Show one program with its maps and attachments",
       {{Arg::Positional, "NAME", "loaded program name", &Opts::name, true}},
       cmd_prog_show},
      {"prog unload", "Detach and unload a program, removing its pins",
       {{Arg::Positional, "NAME", "loaded program name", &Opts::name, true}},
       cmd_prog_unload},
      {"probe", "Report the BPF features this kernel offers", {}, cmd_probe},
      {"apply", "Apply a config file (default: re-read the agent's own)",
       {{Arg::Positional, "FILE", "YAML config file", &Opts::file}},
       cmd_apply},
      {"status", "Show the agent's state", {}, cmd_status},
      {"modules", "Show the modules' live counters as tables",
       {{Arg::Option, "--watch,-w", "print every SECONDS, with rates over the interval", &Opts::watch},
        {Arg::Option, "--count", "with --watch: stop after N blocks (default: until interrupted)", &Opts::count},
        {Arg::Option, "--section,-s", "MODULE or MODULE.SECTION to show, repeatable (default: all)",
         &Opts::sections},
        {Arg::Flag, "--brief", "each section's counters and top-level tables only", &Opts::brief}},
       cmd_modules},
      {"events", "Show the agent's recent events, or follow new ones",  // [events]
       {{Arg::Option, "--module", "only this module's events", &Opts::event_module},
        {Arg::Option, "--limit", "newest N kept events (0 = all kept; default 100)", &Opts::limit},
        {Arg::Flag, "--follow,-f", "stream new events until the agent stops", &Opts::follow},
        {Arg::Flag, "--falco", "JSON lines in Falco's output shape (for Falcosidekick)", &Opts::falco}},
       cmd_events},
      {"replay", "Run the packet modules over a pcap/pcapng capture (BPF_PROG_TEST_RUN)",
       {{Arg::Positional, "FILE", "capture file", &Opts::file, true},
        {Arg::Option, "--module", "module to run, repeatable (default: all packet modules)", &Opts::modules},
        {Arg::Flag, "--ue-timeline", "print the per-UE timeline (n2) as JSON lines, one per UE event",
         &Opts::ue_timeline}},
       cmd_replay},
  };
  return table;
}

CLI::App* subcommand_for(CLI::App& root, std::map<std::string, CLI::App*>& groups, const std::string& path,
                         const char* help) {
  std::istringstream ss(path);
  std::string word, prefix;
  CLI::App* parent = &root;
  std::vector<std::string> words;
  while (ss >> word) words.push_back(word);
  for (size_t i = 0; i < words.size(); ++i) {
    prefix += (prefix.empty() ? "" : " ") + words[i];
    auto it = groups.find(prefix);
    if (it != groups.end()) {
      parent = it->second;
      continue;
    }
    const bool leaf = i + 1 == words.size();
    CLI::App* sub = parent->add_subcommand(words[i], leaf ? help : "Manage " + words[i] + "s");
    sub->fallthrough();  // global options (--socket) may follow the subcommand
    if (!leaf) sub->require_subcommand(1);
    groups[prefix] = sub;
    parent = sub;
  }
  return parent;
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Opts o;
  Io io{out, err};
  CLI::App app{"kagami: eBPF platform for cloud-native 5G networks", "kagami"};
  app.require_subcommand(1);
  auto* socket_opt = app.add_option("--socket", o.socket, "agent control socket")
                         ->envname("KAGAMI_SOCKET")
                         ->default_str(kDefaultSocket);
  std::map<std::string, CLI::App*> groups;
  const Command* chosen = nullptr;
  std::vector<std::pair<CLI::App*, const Command*>> leaves;
  for (const auto& c : commands()) {
    CLI::App* sub = subcommand_for(app, groups, c.path, c.help);
    for (const auto& a : c.args) {
      CLI::Option* opt = std::visit(
          [&](auto field) -> CLI::Option* {
            using F = decltype(field);
            if constexpr (std::is_same_v<F, bool Opts::*>) return sub->add_flag(a.name, o.*field, a.help);
            else return sub->add_option(a.name, o.*field, a.help);
          },
          a.field);
      if (a.required) opt->required();
    }
    sub->add_flag("--json", o.json, "machine-readable JSON output");
    leaves.emplace_back(sub, &c);
  }

  std::vector<std::string> rev(args.rbegin(), args.rend());  // CLI11 parses a reversed vector
  try {
    app.parse(rev);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::ParseError& e) {
    err << "kagami: " << e.what() << "\nRun 'kagami --help' for usage.\n";
    return 2;
  }
  for (const auto& [sub, c] : leaves)
    if (sub->parsed()) chosen = c;
  if (!chosen) {
    err << "kagami: no command given\nRun 'kagami --help' for usage.\n";
    return 2;
  }
  o.socket_given = socket_opt->count() > 0 || std::getenv("KAGAMI_SOCKET") != nullptr;
  auto r = chosen->run(o, io);
  if (!r) {
    err << "kagami: " << r.error().message << "\n";
    return 1;
  }
  return 0;
}

int run(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return run(args, std::cout, std::cerr);
}

}  // namespace kagami::cli
