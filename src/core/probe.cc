// Feature probe: the registry of probes, per-feature lazy caching, kernel
// facts read from /proc and /sys, rendering, and resolve(). Everything that
// needs libbpf lives in probe_kernel.cc.
#include "core/probe.h"

#include <sys/utsname.h>

#include <array>
#include <fstream>
#include <functional>
#include <mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace kagami::core {
namespace {

using namespace probe_detail;

std::string read_first_line(const std::string& p) {
  std::ifstream f(p);
  std::string line;
  std::getline(f, line);
  return line;
}

struct Mount {
  std::string dir, type;
};

std::vector<Mount> mounts() {
  std::vector<Mount> out;
  std::ifstream f("/proc/self/mounts");
  std::string dev, dir, type, rest;
  while (f >> dev >> dir >> type && std::getline(f, rest)) out.push_back({dir, type});
  return out;
}

std::string mounts_of(const std::string& type) {
  std::string s;
  for (const auto& m : mounts())
    if (m.type == type) s += (s.empty() ? "" : ", ") + m.dir;
  return s;
}

bool fs_supported(const std::string& type) {
  std::ifstream f("/proc/filesystems");
  std::string line;
  while (std::getline(f, line))
    if (line.size() >= type.size() && line.compare(line.size() - type.size(), type.size(), type) == 0 &&
        (line.size() == type.size() || line[line.size() - type.size() - 1] == '\t'))
      return true;
  return false;
}

Feature kernel_fact(const std::string& name) {
  Feature f{name, "kernel", false, ""};
  if (name == "kernel_version") {
    struct utsname u{};
    if (::uname(&u) == 0) {
      f.available = true;
      f.detail = std::string(u.release) + " " + u.machine;
    }
    return f;
  }
  if (name == "bpffs" || name == "tracefs") {
    std::string type = name == "bpffs" ? "bpf" : "tracefs";
    std::string where = mounts_of(type);
    f.available = !where.empty();
    if (f.available) f.detail = "mounted at " + where;
    else if (fs_supported(type))
      f.detail = name == "bpffs" ? "not mounted (the agent mounts it at /sys/fs/bpf)"
                                 : "not mounted (the agent mounts it at /sys/kernel/tracing)";
    else f.detail = "kernel lacks " + type;
    return f;
  }
  if (name == "bpf_privileges") {
    // CapEff from /proc/self/status: what this process may actually do.
    std::ifstream st("/proc/self/status");
    std::string line;
    uint64_t caps = 0;
    while (std::getline(st, line))
      if (line.rfind("CapEff:", 0) == 0) caps = std::stoull(line.substr(7), nullptr, 16);
    auto has = [&](int bit) { return (caps >> bit) & 1; };
    constexpr int kNetAdmin = 12, kSysAdmin = 21, kPerfmon = 38, kBpf = 39;
    bool full = has(kSysAdmin) || (has(kBpf) && has(kPerfmon) && has(kNetAdmin));
    f.available = full;
    f.detail = full ? (has(kSysAdmin) ? "CAP_SYS_ADMIN" : "CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN")
                    : "missing CAP_BPF/CAP_PERFMON/CAP_NET_ADMIN: the trials below fail for that "
                      "reason, not for the kernel's; run as root";
    return f;
  }
  if (name == "cgroup_v2") {
    std::string where = mounts_of("cgroup2");
    bool v1 = !mounts_of("cgroup").empty();
    f.available = !where.empty();
    if (f.available) f.detail = (v1 ? "hybrid (v1 controllers too), unified at " : "unified at ") + where;
    else f.detail = v1 ? "cgroup v1 only: cgroup ids from BPF do not identify workloads" : "not mounted";
    return f;
  }
  // Sysctls: available means "set" (non-zero); the detail gives the value.
  struct Sysctl {
    const char* name;
    const char* path;
    const char* meaning;
  };
  static constexpr std::array<Sysctl, 3> kSysctls{{
      {"unprivileged_bpf_disabled", "/proc/sys/kernel/unprivileged_bpf_disabled",
       "0: unprivileged users may load BPF, 1: disabled for good, 2: disabled, admin may re-enable"},
      {"bpf_jit_enable", "/proc/sys/net/core/bpf_jit_enable", "0: interpreter, 1: JIT, 2: JIT + debug"},
      {"bpf_jit_harden", "/proc/sys/net/core/bpf_jit_harden",
       "0: off, 1: unprivileged programs, 2: all programs (constant blinding costs speed)"},
  }};
  for (const auto& s : kSysctls) {
    if (name != s.name) continue;
    std::string v = read_first_line(s.path);
    if (v.empty()) {
      f.detail = std::string(s.path) + " missing";
      return f;
    }
    f.available = v != "0";
    f.detail = v + " (" + s.meaning + ")";
    return f;
  }
  f.detail = "unknown feature";
  return f;
}

struct Entry {
  const char* name;
  const char* category;
  std::function<Feature(const std::string&)> probe;
};

// The report order. Names are a stable interface (docs/probe.md, module
// needs, --json consumers): append, never rename.
const std::vector<Entry>& registry() {
  static const std::vector<Entry> r = [] {
    std::vector<Entry> e;
    auto add = [&](const char* category, std::function<Feature(const std::string&)> fn,
                   std::initializer_list<const char*> names) {
      for (const char* n : names) e.push_back({n, category, fn});
    };
    add("kernel", kernel_fact, {"kernel_version", "bpf_privileges"});
    add("kernel", [](const std::string&) { return btf_vmlinux(); }, {"btf_vmlinux"});
    add("kernel", [](const std::string&) { return bpf_stats(); }, {"bpf_stats"});
    add("kernel", [](const std::string&) { return cgroup_id_inode(); }, {"cgroup_id_inode"});
    add("kernel", kernel_fact,
        {"bpffs", "tracefs", "cgroup_v2", "unprivileged_bpf_disabled", "bpf_jit_enable", "bpf_jit_harden"});
    add("prog_type", prog_type,
        {"xdp", "tc", "tracepoint", "raw_tp", "tp_btf", "kprobe", "kprobe_multi", "uprobe", "fentry",
         "fexit", "lsm", "iter", "cgroup_skb", "cgroup_sock_addr", "cgroup_sock", "sockops", "sk_msg",
         "sk_skb", "sk_lookup", "flow_dissector", "perf_event", "ext", "syscall"});
    add("attach", attach_mode, {"xdp_native", "xdp_generic", "tcx", "netkit", "bpf_link"});
    add("map", map_type,
        {"hash", "array", "percpu_hash", "percpu_array", "lru_hash", "lru_percpu_hash", "lpm_trie",
         "ringbuf", "user_ringbuf", "perf_event_array", "prog_array", "stack_trace", "sockmap",
         "sockhash", "devmap", "cpumap", "xskmap", "bloom_filter", "sk_storage", "task_storage",
         "inode_storage", "cgrp_storage", "arena"});
    add("helper", helper,
        {"bpf_send_signal", "bpf_send_signal_thread", "bpf_get_current_cgroup_id", "bpf_skb_cgroup_id",
         "bpf_ktime_get_boot_ns", "bpf_ktime_get_tai_ns", "bpf_probe_read_user_str",
         "bpf_probe_read_kernel", "bpf_get_current_task_btf", "bpf_get_stackid", "bpf_loop",
         "bpf_timer", "bpf_for_each_map_elem", "bpf_snprintf", "bpf_ringbuf_output",
         "bpf_redirect_map", "bpf_fib_lookup", "bpf_xdp_adjust_tail", "bpf_skb_adjust_room",
         "bpf_sk_lookup_tcp", "bpf_get_socket_cookie", "bpf_get_func_ip"});
    add("kfunc", kfunc,
        {"bpf_crypto_ctx_create", "bpf_crypto_ctx_acquire", "bpf_crypto_ctx_release", "bpf_crypto_encrypt",
         "bpf_crypto_decrypt", "bpf_dynptr_from_skb", "bpf_dynptr_from_xdp", "bpf_dynptr_slice",
         "bpf_cgroup_from_id", "bpf_task_from_pid", "bpf_iter_num_new", "bpf_xdp_metadata_rx_timestamp",
         "bpf_xdp_metadata_rx_hash", "bpf_sock_destroy", "bpf_skb_ct_lookup", "bpf_xdp_ct_lookup"});
    return e;
  }();
  return r;
}

// Other spellings operators and libbpf use for the same thing.
std::string_view canonical(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kAliases{{
      {"sched_cls", "tc"},
      {"freplace", "ext"},
      {"raw_tracepoint", "raw_tp"},
      {"kprobe.multi", "kprobe_multi"},
      {"bpf_lsm", "lsm"},
      {"btf", "btf_vmlinux"},
      {"bpf_iter", "iter"},
  }};
  for (const auto& [alias, name_] : kAliases)
    if (name == alias) return name_;
  return name;
}

// One slot per registry entry: each probe runs at most once per process
// (std::call_once makes concurrent first calls wait for the one that runs).
struct Slot {
  std::once_flag once;
  Feature value;
};

std::vector<Slot>& slots() {
  static std::vector<Slot> s(registry().size());
  return s;
}

const char* category_title(std::string_view c) {
  if (c == "kernel") return "Kernel";
  if (c == "prog_type") return "Program types (trial load, and attach where a type alone proves nothing)";
  if (c == "attach") return "Attach modes";
  if (c == "map") return "Map types";
  if (c == "helper") return "Helpers";
  if (c == "kfunc") return "Kfuncs (vmlinux BTF)";
  return "Other";
}

}  // namespace

const std::vector<std::string>& feature_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& e : registry()) n.emplace_back(e.name);
    return n;
  }();
  return names;
}

Feature probe_feature(std::string_view name) {
  std::string_view c = canonical(name);
  const auto& reg = registry();
  for (size_t i = 0; i < reg.size(); ++i) {
    if (c != reg[i].name) continue;
    Slot& s = slots()[i];
    std::call_once(s.once, [&] {
      s.value = reg[i].probe(reg[i].name);
      s.value.name = reg[i].name;
      s.value.category = reg[i].category;
    });
    return s.value;
  }
  return Feature{std::string(name), "", false, "unknown feature"};
}

ProbeReport probe_features() {
  static ProbeReport report;
  static std::once_flag once;
  std::call_once(once, [] {
    for (const auto& n : feature_names()) report.features.push_back(probe_feature(n));
  });
  return report;
}

ProbeReport probe_features_fresh() {
  ProbeReport report;
  for (const auto& e : registry()) {
    Feature f = e.probe(e.name);
    f.name = e.name;
    f.category = e.category;
    report.features.push_back(std::move(f));
  }
  return report;
}

const Feature* ProbeReport::find(std::string_view name) const {
  std::string_view c = canonical(name);
  for (const auto& f : features)
    if (f.name == c) return &f;
  return nullptr;
}

bool ProbeReport::has(std::string_view name) const {
  const Feature* f = find(name);
  return f && f->available;
}

nlohmann::json ProbeReport::to_json() const {
  nlohmann::json arr = nlohmann::json::array();
  size_t avail = 0;
  for (const auto& f : features) {
    arr.push_back({{"name", f.name}, {"category", f.category}, {"available", f.available}, {"detail", f.detail}});
    if (f.available) ++avail;
  }
  return {{"features", arr}, {"summary", {{"available", avail}, {"unavailable", features.size() - avail}}}};
}

std::string ProbeReport::to_table() const {
  size_t width = 4;
  for (const auto& f : features) width = std::max(width, f.name.size());
  std::string out;
  std::string current;
  size_t avail = 0;
  for (const auto& f : features) {
    if (f.category != current) {
      current = f.category;
      out += (out.empty() ? "" : "\n") + std::string(category_title(current)) + "\n";
    }
    out += fmt::format("  {:<{}}  {:<3}  {}\n", f.name, width, f.available ? "yes" : "no", f.detail);
    if (f.available) ++avail;
  }
  out += fmt::format("\n{} of {} features available\n", avail, features.size());
  if (const Feature* p = find("bpf_privileges"); p && !p->available)
    out = "WARNING: " + p->detail + "\n\n" + out;
  return out;
}

// ---------------------------------------------------------------------------
// resolve

Resolution resolve(const std::vector<FeatureNeed>& needs, const ProbeReport& report) {
  Resolution r;
  for (const auto& n : needs) {
    Resolution::Item it;
    it.need = n;
    const Feature* f = report.find(n.feature);
    if (f && f->available) {
      it.state = Resolution::State::Available;
      it.detail = f->detail;
    } else {
      it.state = n.required ? Resolution::State::Missing : Resolution::State::Fallback;
      // A misspelt need must not silently become a fallback nobody notices.
      it.detail = f ? f->detail : "unknown feature name (see `kagami probe`)";
    }
    r.items.push_back(std::move(it));
  }
  return r;
}

Resolution::State Resolution::state_of(std::string_view feature) const {
  for (const auto& it : items)
    if (it.need.feature == feature) return it.state;
  return State::Missing;
}

bool Resolution::ok() const {
  for (const auto& it : items)
    if (it.state == State::Missing) return false;
  return true;
}

std::string Resolution::error() const {
  std::string missing;
  size_t n = 0;
  for (const auto& it : items) {
    if (it.state != State::Missing) continue;
    missing += (missing.empty() ? "" : "; ") + it.need.feature + " (" + it.detail + ")";
    ++n;
  }
  if (missing.empty()) return {};
  return (n == 1 ? "kernel lacks required feature " : "kernel lacks required features ") + missing;
}

Result<void> Resolution::check() const {
  if (ok()) return kagami::ok();
  return Error{error(), 0};
}

std::vector<std::string> Resolution::fallbacks() const {
  std::vector<std::string> out;
  for (const auto& it : items) {
    if (it.state != State::Fallback) continue;
    out.push_back(it.need.feature + " unavailable (" + it.detail + "): using " +
                  (it.need.fallback.empty() ? std::string("nothing (feature off)") : it.need.fallback));
  }
  return out;
}

nlohmann::json Resolution::to_json() const {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& it : items) {
    const char* state = it.state == State::Available ? "available"
                        : it.state == State::Fallback ? "fallback"
                                                      : "missing";
    nlohmann::json j = {{"feature", it.need.feature}, {"required", it.need.required}, {"state", state}};
    if (it.state == State::Fallback) j["using"] = it.need.fallback;
    if (it.state != State::Available) j["detail"] = it.detail;
    arr.push_back(std::move(j));
  }
  return {{"needs", arr}, {"ok", ok()}, {"error", error()}};
}

}  // namespace kagami::core
