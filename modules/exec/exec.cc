#include "modules/exec/exec.h"

#include "bpf/map_view.h"
#include "core/config_section.h"

#include <fcntl.h>
#include <linux/types.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include <cstring>

#include "bpf/elf_patch.h"
#include "bpf/kernel.h"
#include "common/fd.h"
#include "exec.skel.h"
#include "exec_btf.skel.h"
#include "identity/identity.h"
#include "modules/exec/abi.h"

#include <spdlog/spdlog.h>

namespace kagami::modules {
namespace {

using nlohmann::json;

constexpr const char* kProgram = "exec";

std::string cstr(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

// Sums a per-CPU array of u64 counters (bpf/map_view.h).
Result<std::vector<uint64_t>> read_percpu_u64(int fd, uint32_t n) {
  auto v = bpf::ArrayView<uint64_t>::open(fd, "exec counters");
  if (!v) return v.error();
  return v->read_summed(n);
}

}  // namespace

Result<ExecConfig> parse_exec_config(const json& section) {
  ExecConfig c;
  core::ConfigSection s("exec", section);
  KAGAMI_TRY(s.allow({"rate", "burst", "ring_kb", "cgroup", "hooks"}));
  KAGAMI_TRY(s.integer("rate", c.rate, 0, 1000000000));
  KAGAMI_TRY(s.integer("burst", c.burst, 1, 1000000));
  const int64_t page_kb = ::sysconf(_SC_PAGESIZE) / 1024;
  KAGAMI_TRY(s.integer("ring_kb", c.ring_kb, page_kb, 1048576));
  if ((c.ring_kb & (c.ring_kb - 1)) != 0)
    return s.error("ring_kb", fmt::format("must be a power of two (the kernel's ringbuf rule), got {}", c.ring_kb));
  KAGAMI_TRY(s.path("cgroup", c.cgroup));
  KAGAMI_TRY(s.choice("hooks", c.hooks, {"auto", "tp_btf", "tracepoint"}));
  return c;
}

const char* to_string(ExecHooks h) { return h == ExecHooks::TpBtf ? "tp_btf" : "tracepoint"; }

Result<ExecHooks> choose_exec_hooks(const std::string& wanted, bool tp_btf_available) {
  if (wanted == "tracepoint") return ExecHooks::Tracepoint;
  if (wanted == "tp_btf" && !tp_btf_available)
    return make_error("exec.hooks: tp_btf requested but this kernel refuses tp_btf programs");
  return tp_btf_available ? ExecHooks::TpBtf : ExecHooks::Tracepoint;
}

Result<std::vector<uint8_t>> exec_object_bytes(uint32_t ring_kb, ExecHooks h) {
  size_t n = 0;
  const auto* p = static_cast<const uint8_t*>(h == ExecHooks::TpBtf ? exec_btf_bpf__elf_bytes(&n)
                                                                      : exec_bpf__elf_bytes(&n));
  std::vector<uint8_t> bytes(p, p + n);
  if (ring_kb * 1024u != EXEC_RING_BYTES_DEFAULT)
    KAGAMI_TRY_CTX(bpf::patch_map_max_entries(bytes, EXEC_MAP_EVENTS, ring_kb * 1024u), "exec.ring_kb");
  return bytes;
}

Result<core::LoadRequest> exec_load_request(const ExecConfig& c, ExecHooks h) {
  core::LoadRequest req;
  req.name = kProgram;
  req.builtin = true;
  auto bytes = exec_object_bytes(c.ring_kb, h);
  if (!bytes) return bytes.error();
  req.source.bytes = std::move(*bytes);
  const bool btf = h == ExecHooks::TpBtf;
  req.source.label = btf ? "builtin:exec_btf.bpf.o" : "builtin:exec.bpf.o";
  core::AttachPoint a;
  a.kind = btf ? core::AttachPoint::Kind::TpBtf : core::AttachPoint::Kind::Tracepoint;
  a.target = btf ? "sched_process_exec" : "sched/sched_process_exec";
  a.program = btf ? "exec_btf" : "exec_tp";
  req.attach.push_back(a);
  // A new ring size is a new ring; the token buckets may start afresh too.
  req.migrations = {{EXEC_MAP_EVENTS, core::MapMigration::Rule::Reset},
                    {EXEC_MAP_RL, core::MapMigration::Rule::Reset}};
  return req;
}

Result<json> decode_exec_record(std::span<const uint8_t> rec, identity::Resolver* resolver) {
  exec_event e;
  if (rec.size() != sizeof(e))
    return make_error("exec record of {} bytes, expected {}", rec.size(), sizeof(e));
  std::memcpy(&e, rec.data(), sizeof(e));
  if (e.hdr.kind != EXEC_KIND_EXEC || e.hdr.len != sizeof(e))
    return make_error("exec record kind {} len {}: not an exec event", e.hdr.kind, e.hdr.len);
  json j = {{"kind", "exec"},
            {"mono_ns", e.hdr.mono_ns},
            {"pid", e.pid},
            {"tgid", e.tgid},
            {"ppid", e.ppid},
            {"uid", e.uid},
            {"gid", e.gid},
            {"comm", cstr(e.comm, sizeof(e.comm))},
            {"filename", cstr(e.filename, sizeof(e.filename))},
            {"filename_truncated", (e.hdr.flags & EXEC_F_FILENAME_TRUNCATED) != 0},
            {"cgroup_id", e.cgroup_id}};
  if (resolver) {
    if (auto w = resolver->resolve(e.cgroup_id)) {
      json wl = {{"cgroup", w->cgroup_path}};
      if (!w->runtime.empty()) wl["runtime"] = w->runtime;
      if (!w->container_id.empty()) wl["container_id"] = w->container_id;
      if (!w->pod_uid.empty()) wl["pod_uid"] = w->pod_uid;
      if (!w->unit.empty()) wl["unit"] = w->unit;
      j["workload"] = std::move(wl);
    }
  }
  return j;
}

// ---- ExecModule --------------------------------------------------------------------

std::vector<core::FeatureNeed> ExecModule::needs() const {
  return {
      {"tracepoint", true, ""},
      {"ringbuf", true, ""},
      {"lru_percpu_hash", true, ""},
      {"btf", true, ""},  // CO-RE read of task->real_parent->tgid
      {"bpf_get_current_cgroup_id", true, ""},
      {"tp_btf", false, "classic tracepoint sched/sched_process_exec"},
  };
}

Result<std::vector<core::LoadRequest>> ExecModule::plan(const json& config, const core::ModuleContext& ctx) {
  auto c = parse_exec_config(config);
  if (!c) return c.error();
  auto hooks = choose_exec_hooks(c->hooks, ctx.features.available("tp_btf"));
  if (!hooks) return hooks.error();
  auto req = exec_load_request(*c, *hooks);
  if (!req) return req.error();
  ctx_ = ctx;
  config_ = *c;
  hooks_ = *hooks;
  std::vector<core::LoadRequest> out;
  out.push_back(std::move(*req));
  return out;
}

Result<void> ExecModule::configure(const core::ProgramManager& pm) {
  auto cfg_fd = pm.map_fd(kProgram, EXEC_MAP_CONFIG);
  if (!cfg_fd) return cfg_fd.error();
  exec_config v{};
  v.rate = config_.rate;
  v.burst = config_.burst;
  v.scope = config_.cgroup.empty() ? 0 : 1;
  const __u32 zero = 0;
  auto scope_fd = pm.map_fd(kProgram, EXEC_MAP_SCOPE);
  if (!scope_fd) return scope_fd.error();
  if (!v.scope) {
    // Scope off first, then let go of a cgroup an earlier config set (the
    // map holds a reference to it).
    KAGAMI_TRY_CTX(bpf::map_update(cfg_fd->get(), &zero, &v), "exec: writing exec_config");
    (void)bpf::map_delete(scope_fd->get(), &zero);
    return ok();
  }
  // Scope on: the cgroup first, then the flag that makes the program use it.
  Fd dir(::open(config_.cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return errno_error(errno, "exec.cgroup: cannot open {}", config_.cgroup);
  const __u32 fd = static_cast<__u32>(dir.get());
  KAGAMI_TRY_CTX(bpf::map_update(scope_fd->get(), &zero, &fd), "exec.cgroup " + config_.cgroup);
  KAGAMI_TRY_CTX(bpf::map_update(cfg_fd->get(), &zero, &v), "exec: writing exec_config");
  return ok();
}

ExecModule::~ExecModule() { stop(); }

Result<void> ExecModule::start(const core::ProgramManager& pm) {
  if (config_.cgroup.empty() || watch_.joinable()) return ok();
  auto scope_fd = pm.map_fd(kProgram, EXEC_MAP_SCOPE);
  if (!scope_fd) return scope_fd.error();
  {
    std::lock_guard lk(watch_mu_);
    watch_stop_ = false;
  }
  watching_ = true;
  watch_ = std::thread([this, cg = config_.cgroup, fd = scope_fd->release()] { watch_scope(cg, fd); });
  return ok();
}

void ExecModule::stop() {
  {
    std::lock_guard lk(watch_mu_);
    watch_stop_ = true;
  }
  watch_cv_.notify_all();
  if (watch_.joinable()) watch_.join();
  watching_ = false;
}

void ExecModule::watch_scope(std::string cgroup, int raw_scope_fd) {
  Fd scope_fd(raw_scope_fd);
  struct stat st {};
  // A cgroup v2 directory's inode number is its cgroup id.
  ino_t ino = ::stat(cgroup.c_str(), &st) == 0 ? st.st_ino : 0;
  std::unique_lock lk(watch_mu_);
  while (!watch_cv_.wait_for(lk, std::chrono::seconds(1), [&] { return watch_stop_; })) {
    if (::stat(cgroup.c_str(), &st) != 0 || st.st_ino == ino) continue;
    Fd dir(::open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    const __u32 zero = 0, fd = static_cast<__u32>(dir.get());
    if (!dir.valid() || !bpf::map_update(scope_fd.get(), &zero, &fd)) continue;
    ino = st.st_ino;
    ++scope_refreshes_;
    if (ctx_.log) ctx_.log->info("exec.cgroup {} was created again: scope follows the new cgroup", cgroup);
  }
}

std::vector<core::EventSource> ExecModule::event_sources() const {
  identity::Resolver* resolver = ctx_.identity;
  core::EventSource s;
  s.program = kProgram;
  s.ring_map = EXEC_MAP_EVENTS;
  s.drops_map = EXEC_MAP_DROPS;
  s.decode = [resolver](std::span<const uint8_t> rec) { return decode_exec_record(rec, resolver); };
  return {s};
}

Result<std::vector<core::MetricFamily>> ExecModule::collect(const core::ProgramManager& pm) {
  auto fd = pm.map_fd(kProgram, EXEC_MAP_COUNTERS);
  if (!fd) return fd.error();
  auto c = read_percpu_u64(fd->get(), EXEC_CTR_MAX);
  if (!c) return c.error();
  core::MetricFamily f{"kagami_exec_execs_total",
                       "execs seen by the exec module: seen (in scope) = sent + dropped "
                       "(kagami_events_dropped_total{module=\"exec\"}); out_of_scope: outside exec.cgroup",
                       "counter",
                       {}};
  const std::pair<const char*, uint32_t> rows[] = {
      {"seen", EXEC_CTR_SEEN}, {"sent", EXEC_CTR_SENT}, {"out_of_scope", EXEC_CTR_OUT_OF_SCOPE}};
  for (const auto& [name, idx] : rows)
    f.samples.push_back({{{"node", ctx_.node}, {"outcome", name}}, double((*c)[idx]), ""});
  return std::vector<core::MetricFamily>{f};
}

Result<json> ExecModule::snapshot(const core::ProgramManager& pm) {
  auto fd = pm.map_fd(kProgram, EXEC_MAP_COUNTERS);
  if (!fd) return fd.error();
  auto c = read_percpu_u64(fd->get(), EXEC_CTR_MAX);
  if (!c) return c.error();
  auto dfd = pm.map_fd(kProgram, EXEC_MAP_DROPS);
  if (!dfd) return dfd.error();
  auto d = read_percpu_u64(dfd->get(), KG_DROP__MAX);
  if (!d) return d.error();
  return json{{"config",
               {{"rate", config_.rate}, {"burst", config_.burst}, {"ring_kb", config_.ring_kb},
                {"cgroup", config_.cgroup}, {"hooks", config_.hooks}}},
              {"hooks", to_string(hooks_)},
              {"execs", {{"seen", (*c)[EXEC_CTR_SEEN]}, {"sent", (*c)[EXEC_CTR_SENT]},
                         {"out_of_scope", (*c)[EXEC_CTR_OUT_OF_SCOPE]}}},
              {"kernel_drops", {{"ring_full", (*d)[KG_DROP_RING_FULL]}, {"rate_limit", (*d)[KG_DROP_RATE_LIMIT]}}},
              {"scope_watch", {{"running", watching_.load()}, {"refreshes", scope_refreshes_.load()}}}};
}

}  // namespace kagami::modules

KAGAMI_REGISTER_MODULE(exec, ::kagami::modules::ExecModule)
