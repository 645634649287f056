#include "modules/security/security.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/types.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bpf/elf_patch.h"
#include "bpf/kernel.h"
#include "bpf/map_view.h"
#include "core/config_section.h"
#include "identity/identity.h"
#include "modules/security/abi.h"
#include "security.skel.h"
#include "security_btf.skel.h"

namespace kagami::modules::security {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kProgram = "security";
// A program evaluates an event in microseconds; a generation is rewritten
// only this long after the switch away from it, so no program still reads
// it (docs/security-policy.md, "Atomic replacement").
constexpr auto kQuiescence = std::chrono::milliseconds(100);

std::string cstr(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

struct Tp {
  const char* target;
  const char* program;
};
// One program per hook (bpf/security.bpf.c).
constexpr Tp kTracepoints[] = {
    {"sched/sched_process_exec", "sec_exec"},       {"sched/sched_process_fork", "sec_fork"},
    {"sched/sched_process_exit", "sec_exit"},       {"syscalls/sys_enter_openat", "sec_openat"},
    {"syscalls/sys_exit_openat", "sec_openat_exit"}, {"syscalls/sys_enter_connect", "sec_connect"},
    {"syscalls/sys_enter_bind", "sec_bind"},         {"syscalls/sys_enter_listen", "sec_listen"},
    {"syscalls/sys_enter_socket", "sec_socket"},     {"syscalls/sys_enter_accept", "sec_accept"},
    {"syscalls/sys_exit_accept", "sec_accept_exit"}, {"syscalls/sys_enter_accept4", "sec_accept4"},
    {"syscalls/sys_exit_accept4", "sec_accept4_exit"}, {"syscalls/sys_enter_setuid", "sec_setuid"},
    {"syscalls/sys_enter_setgid", "sec_setgid"},     {"syscalls/sys_enter_setresuid", "sec_setresuid"},
    {"syscalls/sys_enter_capset", "sec_capset"},     {"syscalls/sys_enter_ptrace", "sec_ptrace"},
    {"syscalls/sys_enter_mount", "sec_mount"},       {"syscalls/sys_exit_mount", "sec_mount_exit"},
    {"syscalls/sys_enter_umount", "sec_umount"},     {"syscalls/sys_exit_umount", "sec_umount_exit"},
    {"syscalls/sys_enter_setns", "sec_setns"},       {"syscalls/sys_enter_unshare", "sec_unshare"},
    {"syscalls/sys_enter_init_module", "sec_init_module"},
    {"syscalls/sys_enter_finit_module", "sec_finit_module"},
    {"syscalls/sys_enter_bpf", "sec_bpf"},
};
constexpr Tp kCgroupHooks[] = {
    {"connect4", "sec_cg_connect4"}, {"connect6", "sec_cg_connect6"}, {"bind4", "sec_cg_bind4"},
    {"bind6", "sec_cg_bind6"},       {"sock_create", "sec_cg_sock"},
};

// False only when tracefs is mounted and the event is not in it (the
// platform mounts tracefs at load when it is not).
bool tracepoint_exists(const std::string& target) {
  for (const char* root : {"/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"}) {
    std::error_code ec;
    if (!fs::exists(root, ec)) continue;
    return fs::exists(std::string(root) + "/" + target, ec);
  }
  return true;
}

std::vector<std::string> action_names(uint32_t a) {
  std::vector<std::string> out;
  if (a & SEC_ACT_ALERT) out.push_back("alert");
  if (a & SEC_ACT_KILL) out.push_back("kill");
  if (a & SEC_ACT_DENY) out.push_back("deny");
  return out;
}

std::string addr_string(uint16_t family, const uint8_t* a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET) inet_ntop(AF_INET, a, buf, sizeof(buf));
  else if (family == AF_INET6) inet_ntop(AF_INET6, a, buf, sizeof(buf));
  return buf;
}

json proc_json(const ProcInfo& p) {
  json j = {{"pid", p.tgid}, {"ppid", p.ppid}, {"comm", p.comm}};
  if (!p.exe.empty()) j["exe"] = p.exe;
  return j;
}

}  // namespace

Result<SecurityConfig> parse_security_config(const json& section) {
  SecurityConfig c;
  core::ConfigSection s("security", section);
  KAGAMI_TRY(s.allow({"policy", "rate", "burst", "ring_kb", "deny_cgroup", "ancestry_depth", "proc_cache", "hooks",
                      "workloads"}));
  if (section.is_object() && section.contains("workloads")) {
    auto w = identity::parse_declared_workloads(section["workloads"]);
    if (!w) return w.error().with_context("security");
    c.workloads = std::move(*w);
  }
  KAGAMI_TRY(s.choice("hooks", c.hooks, {"auto", "tp_btf", "tracepoint"}));
  KAGAMI_TRY(s.path("policy", c.policy));
  KAGAMI_TRY(s.integer("rate", c.rate, 0, 1000000000));
  KAGAMI_TRY(s.integer("burst", c.burst, 1, 1000000));
  const int64_t page_kb = ::sysconf(_SC_PAGESIZE) / 1024;
  KAGAMI_TRY(s.integer("ring_kb", c.ring_kb, page_kb, 1048576));
  if ((c.ring_kb & (c.ring_kb - 1)) != 0)
    return s.error("ring_kb", fmt::format("must be a power of two (the kernel's ringbuf rule), got {}", c.ring_kb));
  KAGAMI_TRY(s.string("deny_cgroup", c.deny_cgroup));
  if (!c.deny_cgroup.empty() && c.deny_cgroup != "-" && c.deny_cgroup[0] != '/')
    return s.error("deny_cgroup", "must be an absolute cgroup v2 directory, or \"-\" for no deny hooks");
  KAGAMI_TRY(s.integer("ancestry_depth", c.ancestry_depth, 0, SEC_ANCESTRY_MAX));
  KAGAMI_TRY(s.integer("proc_cache", c.proc_cache, 16, 1048576));
  return c;
}

Result<core::LoadRequest> security_load_request(const SecurityConfig& c, const std::string& cgroup_root,
                                                bool tp_btf) {
  core::LoadRequest req;
  req.name = kProgram;
  req.builtin = true;
  size_t n = 0;
  const auto* p = static_cast<const uint8_t*>(tp_btf ? security_btf_bpf__elf_bytes(&n) : security_bpf__elf_bytes(&n));
  req.source.bytes.assign(p, p + n);
  req.source.label = tp_btf ? "builtin:security_btf.bpf.o" : "builtin:security.bpf.o";
  if (c.ring_kb * 1024u != SEC_RING_BYTES_DEFAULT)
    KAGAMI_TRY_CTX(bpf::patch_map_max_entries(req.source.bytes, SEC_MAP_EVENTS, c.ring_kb * 1024u),
                   "security.ring_kb");
  for (const auto& t : kTracepoints) {
    // A kernel without a syscall (CONFIG_MODULES=n: no init_module) has no
    // tracepoint for it: nothing to watch, reported in the snapshot.
    if (!tracepoint_exists(t.target)) continue;
    core::AttachPoint a;
    a.kind = core::AttachPoint::Kind::Tracepoint;
    a.target = t.target;
    a.program = t.program;
    const std::string tp = t.target;
    if (tp_btf && tp.rfind("sched/", 0) == 0) {
      // The sched hooks as tp_btf (typed, no trace record).
      a.kind = core::AttachPoint::Kind::TpBtf;
      a.target = tp.substr(6);
      a.program = std::string(t.program) + "_btf";
    }
    req.attach.push_back(a);
  }
  if (c.deny_cgroup != "-") {
    const std::string cg = c.deny_cgroup.empty() ? cgroup_root : c.deny_cgroup;
    if (cg.empty()) return make_error("security.deny_cgroup: no cgroup v2 hierarchy mounted (set \"-\" for no deny)");
    for (const auto& h : kCgroupHooks) {
      core::AttachPoint a;
      a.kind = core::AttachPoint::Kind::Cgroup;
      a.target = cg;
      a.option = h.target;
      a.program = h.program;
      req.attach.push_back(a);
    }
  }
  req.migrations = {{SEC_MAP_EVENTS, core::MapMigration::Rule::Reset}, {SEC_MAP_RL, core::MapMigration::Rule::Reset}};
  return req;
}

Result<json> decode_security_record(std::span<const uint8_t> rec, const DecodeContext& ctx) {
  sec_event e;
  if (rec.size() != sizeof(e)) return make_error("security record of {} bytes, expected {}", rec.size(), sizeof(e));
  std::memcpy(&e, rec.data(), sizeof(e));
  if (e.hdr.kind == 0 || e.hdr.kind >= SEC_KIND_MAX || e.hdr.len != sizeof(e))
    return make_error("security record kind {} len {}: not a security event", e.hdr.kind, e.hdr.len);
  const uint16_t f = e.hdr.flags;
  const std::string kind = kind_name(e.hdr.kind);
  json j = {{"kind", kind}, {"mono_ns", e.hdr.mono_ns}};

  std::vector<std::string> args;
  if (e.hdr.kind == SEC_KIND_EXEC) {
    const size_t n = std::min<size_t>(e.argv_len, sizeof(e.argv));
    for (size_t i = 0; i < n;) {
      const size_t len = strnlen(e.argv + i, n - i);
      args.emplace_back(e.argv + i, len);
      i += len + 1;
    }
  }
  // Rules, by the names of the generation that matched them.
  auto names = ctx.names ? ctx.names->get(e.gen) : nullptr;
  json rules = json::array();
  std::string first, severity = "warning";
  size_t best = SIZE_MAX;
  for (uint32_t i = 0; i < SEC_MAX_RULES; ++i) {
    if (!(e.rules & (1ULL << i))) continue;
    if (names && i < names->args.size() && !names->args[i].empty() &&
        !std::all_of(names->args[i].begin(), names->args[i].end(), [&](const ArgPattern& p) { return p.matches(args); }))
      continue;  // its argument patterns say no (matched here, not in the kernel)
    std::string n = names && i < names->names.size() ? names->names[i] : fmt::format("rule-{}", i);
    if (first.empty()) first = n;
    if (names && i < names->severity.size()) {
      const auto& sv = severities();
      const size_t rank = std::find(sv.begin(), sv.end(), names->severity[i]) - sv.begin();
      if (rank < best) {
        best = rank;
        severity = names->severity[i];
      }
    }
    rules.push_back(std::move(n));
  }
  if (rules.empty() && e.rules != 0) return json(nullptr);  // only argument-pattern rules, all failed
  j["rule"] = first;
  j["rules"] = rules;
  j["severity"] = severity;
  j["actions"] = action_names(e.actions);
  j["killed"] = (f & SEC_F_KILLED) != 0;
  j["denied"] = (f & SEC_F_DENIED) != 0;
  j["policy_generation"] = e.gen;

  const std::string comm = cstr(e.comm, sizeof(e.comm));
  json proc = {{"pid", e.pid},           {"tgid", e.tgid},   {"ppid", e.ppid}, {"uid", e.uid},
               {"gid", e.gid},           {"comm", comm}};
  if (!(f & SEC_F_NO_TASK)) {
    proc["euid"] = e.euid;
    proc["cap_effective"] = fmt::format("0x{:x}", e.cap_effective);
  }
  const std::string path = cstr(e.path, sizeof(e.path));
  if (ctx.procs) {
    if (e.hdr.kind == SEC_KIND_EXEC) ctx.procs->on_exec(e.tgid, e.ppid, comm, path, args);
    else if (e.hdr.kind == SEC_KIND_FORK) ctx.procs->on_fork(e.tgid, static_cast<uint32_t>(e.args[0]));
    auto self = ctx.procs->get(e.tgid);
    if (self) {
      if (!self->exe.empty()) proc["exe"] = self->exe;
      if (e.hdr.kind != SEC_KIND_EXEC && !self->args.empty()) proc["args"] = self->args;
      if (e.ppid == 0) proc["ppid"] = self->ppid;  // cgroup hooks do not read the task
    }
    json anc = json::array();
    if (e.n_ancestors > 0) {
      // The kernel's walk at the time of the event; the cache adds the
      // executable where it still knows the same process (same name).
      const uint32_t n = std::min<uint32_t>(e.n_ancestors, std::min<uint32_t>(SEC_ANCESTRY_MAX, ctx.ancestry_depth));
      for (uint32_t i = 0; i < n; ++i) {
        const std::string acomm = cstr(e.anc[i].comm, sizeof(e.anc[i].comm));
        json a = {{"pid", e.anc[i].tgid}, {"comm", acomm}};
        if (i + 1 < e.n_ancestors) a["ppid"] = e.anc[i + 1].tgid;
        if (auto c = ctx.procs->get(e.anc[i].tgid); c && c->comm.substr(0, SEC_COMM_LEN - 1) == acomm) {
          if (!c->exe.empty()) a["exe"] = c->exe;
          if (!a.contains("ppid")) a["ppid"] = c->ppid;
        }
        anc.push_back(std::move(a));
      }
    } else {
      const uint32_t ppid = proc["ppid"].get<uint32_t>();
      for (const auto& a : ctx.procs->ancestry(ppid, ctx.ancestry_depth)) anc.push_back(proc_json(a));
    }
    j["ancestry"] = std::move(anc);
    if (e.hdr.kind == SEC_KIND_EXIT) ctx.procs->on_exit(e.tgid);
  }
  if (e.hdr.kind == SEC_KIND_EXEC) {
    proc["exe"] = path;
    proc["args"] = args;
    if (f & SEC_F_ARGV_TRUNCATED) proc["args_truncated"] = true;
  }
  j["process"] = std::move(proc);

  json wl = {{"cgroup_id", e.cgroup_id}};
  if (ctx.resolver) {
    if (auto w = ctx.resolver->resolve(e.cgroup_id)) {
      wl["cgroup"] = w->cgroup_path;
      if (!w->runtime.empty()) wl["runtime"] = w->runtime;
      if (!w->container_id.empty()) wl["id"] = w->container_id;
      if (!w->pod_uid.empty()) wl["pod_uid"] = w->pod_uid;
    }
  }
  j["container"] = std::move(wl);

  auto file = [&](const char* key) {
    json fj = {{"path", path}};
    if (f & SEC_F_PATH_TRUNCATED) fj["truncated"] = true;
    if (f & SEC_F_PATH_MISSING) {
      fj["path"] = nullptr;
      fj["missing"] = true;
    }
    if (f & SEC_F_PATH_REREAD) fj["read_at_exit"] = true;
    if (!path.empty() && path[0] == '/') fj["resolved"] = path;
    j[key] = std::move(fj);
  };
  // A relative open: resolved from the directory it started from, when
  // /proc still shows that very inode (the kernel recorded it); else left
  // unresolved and said so. Never a guess.
  auto resolve_relative = [&](json& fj) {
    if (path.empty() || path[0] == '/' || (f & SEC_F_PATH_MISSING)) return;
    const int32_t dfd = static_cast<int32_t>(e.args[0]);
    const std::string link = dfd == -100 ? fmt::format("/proc/{}/cwd", e.tgid) : fmt::format("/proc/{}/fd/{}", e.tgid, dfd);
    fj["resolved"] = nullptr;
    const char* why = nullptr;
    struct stat st {};
    if (e.dir_ino == 0) why = "the kernel could not read the start directory";
    else if (::stat(link.c_str(), &st) != 0) why = dfd == -100 ? "the process is gone" : "the process or its dirfd is gone";
    else if (st.st_ino != e.dir_ino || major(st.st_dev) != (e.dir_dev >> 20) || minor(st.st_dev) != (e.dir_dev & 0xfffff))
      why = "the dirfd now refers to another directory";
    if (!why) {
      std::error_code ec;
      const std::string dir = fs::read_symlink(link, ec).string();
      if (ec || dir.empty() || dir[0] != '/') why = "the start directory has no path";
      else {
        fj["resolved"] = (dir == "/" ? "" : dir) + "/" + path;
        fj["resolved_late"] = true;  // from /proc at decode time, same inode as at the event
      }
    }
    if (why) fj["unresolved"] = why;
  };
  switch (e.hdr.kind) {
    case SEC_KIND_OPEN:
      file("file");
      j["file"]["flags"] = static_cast<uint32_t>(e.args[2]);
      j["file"]["dirfd"] = static_cast<int32_t>(e.args[0]);
      resolve_relative(j["file"]);
      break;
    case SEC_KIND_EXEC:
      break;
    case SEC_KIND_MOUNT:
    case SEC_KIND_UMOUNT:
      file("target");
      j["flags"] = e.hdr.kind == SEC_KIND_MOUNT ? e.args[3] : e.args[1];
      break;
    case SEC_KIND_CONNECT:
    case SEC_KIND_BIND:
    case SEC_KIND_ACCEPT:
      j["net"] = {{"family", e.family == AF_INET ? "inet" : e.family == AF_INET6 ? "inet6" : std::to_string(e.family)},
                  {"addr", addr_string(e.family, e.addr)},
                  {"port", e.port}};
      if (!(f & SEC_F_NO_TASK)) j["net"]["fd"] = static_cast<int32_t>(e.args[0]);
      break;
    case SEC_KIND_SOCKET:
      j["socket"] = {{"family", e.args[0]}, {"type", e.args[1] & 0xf}, {"protocol", e.args[2]}};
      break;
    case SEC_KIND_FORK:
      j["child_pid"] = e.args[0];
      break;
    case SEC_KIND_EXIT:
      j["exit_code"] = e.ret;
      break;
    default: {
      json a = json::array();
      for (int i = 0; i < 6; ++i) a.push_back(e.args[i]);
      j["syscall_args"] = std::move(a);
    }
  }
  return j;
}

// ---- SecurityModule ------------------------------------------------------------

SecurityModule::SecurityModule() = default;
SecurityModule::~SecurityModule() { stop(); }

std::vector<core::FeatureNeed> SecurityModule::needs() const {
  return {
      {"tracepoint", true, ""},
      {"ringbuf", true, ""},
      {"btf", true, ""},
      {"lpm_trie", true, ""},
      {"lru_percpu_hash", true, ""},
      {"bpf_loop", true, ""},
      {"bpf_send_signal", true, ""},
      {"bpf_get_current_cgroup_id", true, ""},
      {"cgroup_sock_addr", false, "no deny of connect/bind (alert and kill only)"},
      {"cgroup_sock", false, "no deny of socket creation"},
      {"bpf_lsm", false, "deny only where cgroup hooks can (connect, bind, socket)"},
      {"tp_btf", false, "classic sched tracepoints (fork events include threads' parents only by tgid)"},
  };
}

Result<std::vector<core::LoadRequest>> SecurityModule::plan(const json& config, const core::ModuleContext& ctx) {
  auto c = parse_security_config(config);
  if (!c) return c.error();
  auto pol = c->policy.empty() ? parse_policy(default_policy_yaml(), "default-policy") : load_policy_file(c->policy);
  if (!pol) return pol.error().with_context("security.policy");
  KAGAMI_TRY_CTX(check_enforceable(*pol, ctx.features.available("bpf_lsm")), "security.policy");
  auto comp = compile_policy(*pol);
  if (!comp) return comp.error().with_context("security.policy");
  SecurityConfig cc = *c;
  if (!ctx.features.available("cgroup_sock_addr") || !ctx.features.available("cgroup_sock")) {
    if (comp->gen.deny) return make_error("security.policy: deny rules need cgroup sock hooks, which this kernel refuses");
    cc.deny_cgroup = "-";
  }
  const bool btf_ok = ctx.features.available("tp_btf");
  if (cc.hooks == "tp_btf" && !btf_ok)
    return make_error("security.hooks: tp_btf requested but this kernel refuses tp_btf programs");
  const bool use_btf = cc.hooks != "tracepoint" && btf_ok;
  const std::string root = bpf::cgroup2_root();
  auto req = security_load_request(cc, root, use_btf);
  if (!req) return req.error();
  ctx_ = ctx;
  config_ = cc;
  tp_btf_ = use_btf;
  cgroup_root_ = root;
  pending_ = std::move(*comp);
  origin_ = pol->origin;
  {
    std::lock_guard lk(install_mu_);
    workloads_ = cc.workloads;
  }
  if (!procs_) procs_ = std::make_unique<ProcCache>(config_.proc_cache);
  std::vector<core::LoadRequest> out;
  out.push_back(std::move(*req));
  return out;
}

Result<void> SecurityModule::configure(const core::ProgramManager& pm) {
  if (!seeded_ && procs_) {
    procs_->seed();
    seeded_ = true;
  }
  std::lock_guard lk(install_mu_);
  auto cfd = pm.map_fd(kProgram, SEC_MAP_CONFIG);
  if (!cfd) return cfd.error();
  const __u32 zero = 0;
  sec_config cur{};
  if (auto r = bpf::map_lookup(cfd->get(), &zero, &cur); !r) return r.error();
  active_gen_ = cur.gen & 1;  // an adopted program keeps the generation it had
  cur.agent_tgid = static_cast<__u32>(::getpid());
  cur.rate = config_.rate;
  cur.burst = config_.burst;
  KAGAMI_TRY_CTX(bpf::map_update(cfd->get(), &zero, &cur), "security: writing sec_config");
  if (pending_) {
    Compiled c = std::move(*pending_);
    pending_.reset();
    KAGAMI_TRY(install_locked(pm, c));
  }
  return ok();
}

Result<void> SecurityModule::replace_policy(const core::ProgramManager& pm, const std::string& yaml,
                                            const std::string& origin) {
  auto pol = parse_policy(yaml, origin);
  if (!pol) return pol.error();
  KAGAMI_TRY(check_enforceable(*pol, ctx_.features.available("bpf_lsm")));
  auto comp = compile_policy(*pol);
  if (!comp) return comp.error();
  std::lock_guard lk(install_mu_);
  origin_ = origin;
  return install_locked(pm, *comp);
}

void SecurityModule::fold_hits_locked(const core::ProgramManager& pm, uint32_t gen) {
  // The retiring generation's matches go into per-name totals, then its
  // slots start at zero for the policy that reuses them.
  auto hfd = pm.map_fd(kProgram, SEC_MAP_HITS);
  if (!hfd) return;
  auto v = bpf::ArrayView<uint64_t>::open(hfd->get(), SEC_MAP_HITS);
  if (!v) return;
  auto hits = v->read_summed(2 * SEC_MAX_RULES);
  if (!hits) return;
  auto names = names_->get(gen);
  const int cpus = bpf::possible_cpus();
  std::vector<uint64_t> zeros(static_cast<size_t>(cpus), 0);
  for (uint32_t i = 0; i < SEC_MAX_RULES; ++i) {
    const uint32_t idx = gen * SEC_MAX_RULES + i;
    const uint64_t h = (*hits)[idx];
    if (h == 0) continue;
    if (names && i < names->names.size())
      for (const auto& a : action_names(names->actions[i])) folded_hits_[{names->names[i], a}] += h;
    (void)bpf::map_update(hfd->get(), &idx, zeros.data());
  }
}

Result<void> SecurityModule::install_locked(const core::ProgramManager& pm, const Compiled& c) {
  // The generation not in force: every program that could still be reading
  // it started before the last switch, at least kQuiescence ago.
  const uint32_t g = active_gen_ ^ 1;
  const auto since = std::chrono::steady_clock::now() - last_switch_;
  if (since < kQuiescence) std::this_thread::sleep_for(kQuiescence - since);

  auto fd = [&](const char* m) { return pm.map_fd(kProgram, m); };
  auto kinds = fd(SEC_MAP_KINDS), rules = fd(SEC_MAP_RULES), gens = fd(SEC_MAP_GENS), pre = fd(SEC_MAP_PREFIX),
       bin = fd(SEC_MAP_BIN), cg = fd(SEC_MAP_CGROUP), cfg = fd(SEC_MAP_CONFIG);
  for (auto* r : {&kinds, &rules, &gens, &pre, &bin, &cg, &cfg})
    if (!*r) return r->error();

  fold_hits_locked(pm, g);
  // 1. Empty generation g: kinds first (then no program of g could match
  //    anything, though none runs it now), then every keyed entry of g.
  for (uint32_t side = 0; side < 2; ++side)
    for (uint32_t k = 0; k < SEC_KIND_MAX; ++k) {
      const __u32 idx = (g * 2 + side) * SEC_KIND_MAX + k;
      const __u64 m = 0;
      KAGAMI_TRY(bpf::map_update(kinds->get(), &idx, &m));
    }
  auto purge = [&](int map_fd, uint32_t value_size, auto key_proto, auto gen_of) -> Result<void> {
    using K = decltype(key_proto);
    std::vector<K> stale;
    auto r = bpf::map_for_each(map_fd, sizeof(K), value_size, false, [&](const uint8_t* kp, const uint8_t*) {
      K k;
      std::memcpy(&k, kp, sizeof(K));
      if (gen_of(k) == g) stale.push_back(k);
    });
    if (!r) return r.error();
    for (const auto& k : stale) (void)bpf::map_delete(map_fd, &k);
    return ok();
  };
  KAGAMI_TRY(purge(pre->get(), sizeof(__u64), sec_prefix_key{}, [](const sec_prefix_key& k) { return uint32_t(k.gen); }));
  KAGAMI_TRY(purge(bin->get(), sizeof(sec_sel_val), sec_bin_key{}, [](const sec_bin_key& k) { return k.gen; }));
  KAGAMI_TRY(purge(cg->get(), sizeof(sec_sel_val), sec_cg_key{}, [](const sec_cg_key& k) { return k.gen; }));

  // 2. Fill generation g.
  for (uint32_t i = 0; i < SEC_MAX_RULES; ++i) {
    const __u32 idx = g * SEC_MAX_RULES + i;
    sec_rule r = i < c.rules.size() ? c.rules[i] : sec_rule{};
    KAGAMI_TRY(bpf::map_update(rules->get(), &idx, &r));
  }
  const sec_gen gv = c.gen;
  KAGAMI_TRY(bpf::map_update(gens->get(), &g, &gv));
  for (const auto& [path, mask] : c.exact) {
    // In the trie with its NUL (abi.h): matches only a path ending there.
    sec_prefix_key k{};
    k.gen = static_cast<__u8>(g);
    const size_t n = std::min(path.size(), sizeof(k.path) - 1);
    std::memcpy(k.path, path.data(), n);
    k.prefixlen = static_cast<__u32>(8 + (n + 1) * 8);
    KAGAMI_TRY_CTX(bpf::map_update(pre->get(), &k, &mask), "security: path " + path);
  }
  for (const auto& [path, mask] : c.prefix) {
    sec_prefix_key k{};
    k.gen = static_cast<__u8>(g);
    const size_t n = std::min(path.size(), sizeof(k.path));
    std::memcpy(k.path, path.data(), n);
    k.prefixlen = static_cast<__u32>(8 + n * 8);
    KAGAMI_TRY_CTX(bpf::map_update(pre->get(), &k, &mask), "security: path prefix " + path);
  }
  for (const auto& [comm, v] : c.bins) {
    sec_bin_key k{};
    k.gen = g;
    std::memcpy(k.comm, comm.data(), std::min(comm.size(), sizeof(k.comm) - 1));
    sec_sel_val sv{v.match, v.except};
    KAGAMI_TRY_CTX(bpf::map_update(bin->get(), &k, &sv), "security: binary " + comm);
  }
  active_ = c;  // refresh_cgroups_locked reads the selectors from here
  auto n = refresh_cgroups_locked(pm, g);
  if (!n) return n.error();
  for (uint32_t side = 0; side < 2; ++side)
    for (uint32_t k = 0; k < SEC_KIND_MAX; ++k) {
      const __u32 idx = (g * 2 + side) * SEC_KIND_MAX + k;
      KAGAMI_TRY(bpf::map_update(kinds->get(), &idx, &c.kinds[side][k]));
    }
  auto rn = std::make_shared<RuleNames>();
  rn->names = c.rule_names;
  rn->severity = c.rule_severity;
  rn->actions = c.rule_actions;
  for (const auto& r : c.source) rn->args.push_back(r.args);
  {
    std::lock_guard nl(names_->mu);
    names_->gens[g] = rn;
  }

  // 3. The switch: one write of sec_config.gen, last.
  const __u32 zero = 0;
  sec_config cur{};
  KAGAMI_TRY(bpf::map_lookup(cfg->get(), &zero, &cur));
  cur.gen = g;
  KAGAMI_TRY_CTX(bpf::map_update(cfg->get(), &zero, &cur), "security: switching generation");
  active_gen_ = g;
  installed_ = true;
  last_switch_ = std::chrono::steady_clock::now();
  if (ctx_.log)
    ctx_.log->info("policy {} in force: {} rules, generation {}, {} cgroups selected", origin_, c.rule_names.size(), g,
                   *n);
  return ok();
}

Result<size_t> SecurityModule::refresh_cgroups(const core::ProgramManager& pm) {
  std::lock_guard lk(install_mu_);
  if (!installed_) return size_t{0};
  return refresh_cgroups_locked(pm, active_gen_);
}

Result<size_t> SecurityModule::refresh_cgroups_locked(const core::ProgramManager& pm, uint32_t gen) {
  if (!active_.gen.need_cgroup && !active_.gen.except_cgroup) return size_t{0};
  auto cg = pm.map_fd(kProgram, SEC_MAP_CGROUP);
  if (!cg) return cg.error();
  const std::string root = cgroup_root_.empty() ? bpf::cgroup2_root() : cgroup_root_;
  if (root.empty()) return size_t{0};
  size_t n = 0;
  std::set<uint64_t> live;
  std::error_code ec;
  // Namespace and label selectors: which declared workloads each cgroup
  // belongs to (a netns workload's processes are found again each refresh,
  // so one started later is covered within a second).
  std::vector<identity::WorkloadCgroups> wcg;
  if (active_.k8s) wcg = identity::workload_cgroups(workloads_, root);
  std::vector<const identity::DeclaredWorkload*> ws;
  // Every cgroup directory: the walk is bounded by the tree (kubelet nodes:
  // a few thousand directories), and entries only for cgroups a rule names.
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    const std::string rel = it->path().string().substr(root.size());
    ws.clear();
    for (size_t i = 0; i < wcg.size(); ++i)
      if (wcg[i].contains(rel.empty() ? "/" : rel)) ws.push_back(&workloads_[i]);
    const SelVal v = cgroup_masks(active_, rel.empty() ? "/" : rel, ws);
    if (!v.match && !v.except) continue;
    struct stat st {};
    if (::stat(it->path().c_str(), &st) != 0) continue;
    sec_cg_key k{};
    k.cgroup_id = st.st_ino;  // a cgroup v2 directory's inode number is its id
    k.gen = gen;
    sec_sel_val sv{v.match, v.except};
    if (bpf::map_update(cg->get(), &k, &sv)) ++n;
    live.insert(k.cgroup_id);
  }
  if (ec) return n;  // a walk cut short says nothing about what is gone
  // Cgroups that are gone (pods deleted): their ids never come back, so
  // their entries go, and churn cannot fill the map.
  std::vector<sec_cg_key> gone;
  (void)bpf::map_for_each(cg->get(), sizeof(sec_cg_key), sizeof(sec_sel_val), false,
                          [&](const uint8_t* kp, const uint8_t*) {
                            sec_cg_key k;
                            std::memcpy(&k, kp, sizeof(k));
                            if (k.gen == gen && !live.count(k.cgroup_id)) gone.push_back(k);
                          });
  for (const auto& k : gone) (void)bpf::map_delete(cg->get(), &k);
  return n;
}

Result<void> SecurityModule::start(const core::ProgramManager& pm) {
  if (refresh_.joinable()) return ok();
  {
    std::lock_guard lk(refresh_mu_);
    refresh_stop_ = false;
  }
  // New pods appear after the policy is in force: their cgroups get their
  // selector masks within a second.
  refresh_ = std::thread([this, &pm] {
    std::unique_lock lk(refresh_mu_);
    while (!refresh_cv_.wait_for(lk, std::chrono::seconds(1), [&] { return refresh_stop_; })) {
      lk.unlock();
      if (refresh_cgroups(pm)) ++refreshes_;
      lk.lock();
    }
  });
  return ok();
}

void SecurityModule::stop() {
  {
    std::lock_guard lk(refresh_mu_);
    refresh_stop_ = true;
  }
  refresh_cv_.notify_all();
  if (refresh_.joinable()) refresh_.join();
}

std::vector<core::EventSource> SecurityModule::event_sources() const {
  DecodeContext d;
  d.resolver = ctx_.identity;
  d.procs = procs_.get();
  d.names = names_;
  d.ancestry_depth = config_.ancestry_depth;
  core::EventSource s;
  s.program = kProgram;
  s.ring_map = SEC_MAP_EVENTS;
  s.drops_map = SEC_MAP_DROPS;
  s.decode = [d](std::span<const uint8_t> rec) { return decode_security_record(rec, d); };
  return {s};
}

Result<std::vector<core::MetricFamily>> SecurityModule::collect(const core::ProgramManager& pm) {
  auto cfd = pm.map_fd(kProgram, SEC_MAP_COUNTERS);
  if (!cfd) return cfd.error();
  auto cv = bpf::ArrayView<uint64_t>::open(cfd->get(), SEC_MAP_COUNTERS);
  if (!cv) return cv.error();
  auto c = cv->read_summed(SEC_CTR_MAX);
  if (!c) return c.error();
  core::MetricFamily ev{"kagami_security_events_total",
                        "events seen by the security programs: evaluated against the policy, matched by a rule, "
                        "sent to userspace; kills and denies done; paths re-read at sys_exit or missing",
                        "counter",
                        {}};
  const std::pair<const char*, uint32_t> rows[] = {
      {"evaluated", SEC_CTR_EVALUATED}, {"matched", SEC_CTR_MATCHED}, {"sent", SEC_CTR_SENT},
      {"killed", SEC_CTR_KILLS},        {"denied", SEC_CTR_DENIES},   {"path_reread", SEC_CTR_REREADS},
      {"path_missing", SEC_CTR_MISSING}, {"agent_bpf_skipped", SEC_CTR_SELF_BPF}};
  for (const auto& [name, idx] : rows)
    ev.samples.push_back({{{"node", ctx_.node}, {"outcome", name}}, double((*c)[idx]), ""});

  core::MetricFamily rm{"kagami_security_rule_matches_total",
                        "events matched by each policy rule, by the rule's action (alert, kill, deny)", "counter", {}};
  auto hfd = pm.map_fd(kProgram, SEC_MAP_HITS);
  if (!hfd) return hfd.error();
  auto hv = bpf::ArrayView<uint64_t>::open(hfd->get(), SEC_MAP_HITS);
  if (!hv) return hv.error();
  auto hits = hv->read_summed(2 * SEC_MAX_RULES);
  if (!hits) return hits.error();
  std::map<std::pair<std::string, std::string>, uint64_t> totals;
  {
    std::lock_guard lk(install_mu_);
    totals = folded_hits_;
    for (uint32_t g = 0; g < 2; ++g) {
      auto names = names_->get(g);
      if (!names) continue;
      for (uint32_t i = 0; i < names->names.size() && i < SEC_MAX_RULES; ++i)
        for (const auto& a : action_names(names->actions[i]))
          totals[{names->names[i], a}] += (*hits)[g * SEC_MAX_RULES + i];
    }
    // Rules in force show a 0 series from the start.
    if (auto names = names_->get(active_gen_))
      for (uint32_t i = 0; i < names->names.size(); ++i)
        for (const auto& a : action_names(names->actions[i])) totals.try_emplace({names->names[i], a}, 0);
  }
  for (const auto& [k, v] : totals)
    rm.samples.push_back({{{"node", ctx_.node}, {"rule", k.first}, {"action", k.second}}, double(v), ""});
  return std::vector<core::MetricFamily>{ev, rm};
}

Result<json> SecurityModule::snapshot(const core::ProgramManager& pm) {
  auto cfd = pm.map_fd(kProgram, SEC_MAP_COUNTERS);
  if (!cfd) return cfd.error();
  auto cv = bpf::ArrayView<uint64_t>::open(cfd->get(), SEC_MAP_COUNTERS);
  if (!cv) return cv.error();
  auto c = cv->read_summed(SEC_CTR_MAX);
  if (!c) return c.error();
  std::lock_guard lk(install_mu_);
  json rules = json::array();
  for (size_t i = 0; i < active_.rule_names.size(); ++i)
    rules.push_back({{"name", active_.rule_names[i]},
                     {"severity", active_.rule_severity[i]},
                     {"actions", action_names(active_.rule_actions[i])}});
  json missing = json::array();
  for (const auto& t : kTracepoints)
    if (!tracepoint_exists(t.target)) missing.push_back(t.target);
  return json{{"policy", {{"origin", origin_}, {"generation", active_gen_}, {"rules", rules}}},
              {"tracepoints_absent", missing},
              {"hooks",
               {{"alert_kill", "syscall tracepoints"},
                {"sched", tp_btf_ ? "tp_btf" : "tracepoint"},
                {"deny", config_.deny_cgroup == "-" ? "none" : "cgroup sock hooks"},
                {"lsm", ctx_.features.available("bpf_lsm") ? "available, unused" : "unavailable"}}},
              {"counters",
               {{"evaluated", (*c)[SEC_CTR_EVALUATED]}, {"matched", (*c)[SEC_CTR_MATCHED]},
                {"sent", (*c)[SEC_CTR_SENT]}, {"killed", (*c)[SEC_CTR_KILLS]}, {"denied", (*c)[SEC_CTR_DENIES]},
                {"path_reread", (*c)[SEC_CTR_REREADS]}, {"path_missing", (*c)[SEC_CTR_MISSING]}}},
              {"proc_cache", {{"size", procs_ ? procs_->size() : 0}, {"capacity", config_.proc_cache}}},
              {"cgroup_refreshes", refreshes_.load()}};
}

}  // namespace kagami::modules::security

KAGAMI_REGISTER_MODULE(security, ::kagami::modules::security::SecurityModule)
