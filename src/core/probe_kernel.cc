// The part of the feature probe that talks to the kernel through libbpf:
// libbpf_probe_* calls, vmlinux BTF lookups, and trial loads + attaches of
// the programs in bpf/probe/probe.bpf.c. See probe.h for the approach.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "common/fd.h"
#include "common/fs.h"
#include "core/probe.h"
#include "identity/identity.h"
#include "probe.skel.h"

namespace kagami::core::probe_detail {
namespace {

// ---------------------------------------------------------------------------
// libbpf output while probing
//
// A refused trial is an answer, not a problem, so libbpf's warnings about it
// ("failed to load program", verifier dumps) must not reach the operator's
// log. The callback below swallows what libbpf prints on a probing thread and
// forwards everything else to whichever callback was installed before
// (kagami::log's, normally), so other threads' messages are unaffected.

thread_local bool t_quiet = false;
libbpf_print_fn_t g_prev_print = nullptr;
std::mutex g_print_mu;

int quiet_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (t_quiet) return 0;
  libbpf_print_fn_t prev = g_prev_print;
  return prev ? prev(level, fmt, args) : 0;
}

class QuietLibbpf {
 public:
  QuietLibbpf() {
    {
      std::lock_guard lk(g_print_mu);
      libbpf_print_fn_t prev = libbpf_set_print(quiet_print);
      if (prev != quiet_print) g_prev_print = prev;  // log::init may have replaced ours since
    }
    was_ = t_quiet;
    t_quiet = true;
  }
  ~QuietLibbpf() { t_quiet = was_; }

 private:
  bool was_ = false;
};

// libbpf returns -errno or its own -LIBBPF_ERRNO__* codes; both read well
// through libbpf_strerror.
std::string err_text(int err) {
  if (err < 0) err = -err;
  std::array<char, 128> buf{};
  libbpf_strerror(err, buf.data(), buf.size());
  return buf.data();
}

bool file_exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

std::string read_first_line(const std::string& p) {
  std::ifstream f(p);
  std::string line;
  std::getline(f, line);
  return line;
}

// ---------------------------------------------------------------------------
// vmlinux BTF, loaded once (about 20-40 ms for a 6 MB blob) and shared by
// every BTF lookup. libbpf keeps its own copy per object it loads.

struct VmlinuxBtf {
  struct btf* btf = nullptr;
  int err = 0;
  std::set<int> kfunc_ids;  // FUNC type ids carrying the "bpf_kfunc" decl tag
  VmlinuxBtf() {
    btf = btf__load_vmlinux_btf();
    if (!btf) {
      err = errno;
      return;
    }
    // pahole (>= 1.25) tags registered kfuncs with decl_tag("bpf_kfunc");
    // when the kernel's BTF has such tags, a FUNC without one is an ordinary
    // kernel function, not something BPF may call.
    uint32_t n = btf__type_cnt(btf);
    for (uint32_t id = 1; id < n; ++id) {
      const struct btf_type* t = btf__type_by_id(btf, id);
      if (!btf_is_decl_tag(t)) continue;
      const char* tag = btf__name_by_offset(btf, t->name_off);
      if (tag && std::strcmp(tag, "bpf_kfunc") == 0) kfunc_ids.insert(static_cast<int>(t->type));
    }
  }
  ~VmlinuxBtf() { btf__free(btf); }
  bool has_func(const char* name) const {
    return btf && btf__find_by_name_kind(btf, name, BTF_KIND_FUNC) > 0;
  }
  // True when `type_name` is an enum (or enum64) with an enumerator `value`.
  bool has_enumerator(const char* type_name, const char* value) const {
    if (!btf) return false;
    int id = btf__find_by_name_kind(btf, type_name, BTF_KIND_ENUM);
    if (id <= 0) return false;
    const struct btf_type* t = btf__type_by_id(btf, id);
    const struct btf_enum* e = btf_enum(t);
    for (int i = 0; i < btf_vlen(t); ++i)
      if (std::strcmp(btf__name_by_offset(btf, e[i].name_off), value) == 0) return true;
    return false;
  }
};

const VmlinuxBtf& vmlinux() {
  static VmlinuxBtf v;  // thread-safe lazy init (C++11 magic statics)
  return v;
}

// ---------------------------------------------------------------------------
// Trial objects

struct ObjectCloser {
  void operator()(bpf_object* o) const { bpf_object__close(o); }
};
using ObjectPtr = std::unique_ptr<bpf_object, ObjectCloser>;
struct LinkCloser {
  void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
using LinkPtr = std::unique_ptr<bpf_link, LinkCloser>;

struct Trial {
  ObjectPtr obj;
  bpf_program* prog = nullptr;
};

// Opens a fresh copy of probe.bpf.o with only `prog_name` set to load, lets
// `prepare` adjust it, and loads it. The error reads "load: <reason>".
template <typename Prepare>
Result<Trial> load_one(const char* prog_name, Prepare prepare) {
  size_t size = 0;
  const void* data = probe_bpf__elf_bytes(&size);
  LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "kagami_probe");
  Trial t;
  t.obj.reset(bpf_object__open_mem(data, size, &opts));
  if (!t.obj) return make_error("open: {}", err_text(errno));
  bpf_program* p;
  bpf_object__for_each_program(p, t.obj.get()) {
    bool me = std::strcmp(bpf_program__name(p), prog_name) == 0;
    bpf_program__set_autoload(p, me);
    if (me) t.prog = p;
  }
  if (!t.prog) return make_error("open: no program {} in probe.bpf.o", prog_name);
  KAGAMI_TRY(prepare(t.prog));
  int err = bpf_object__load(t.obj.get());
  if (err) return make_error("load: {}", err_text(err));
  return t;
}

Result<Trial> load_one(const char* prog_name) {
  return load_one(prog_name, [](bpf_program*) -> Result<void> { return ok(); });
}

Result<void> attach_auto(const Trial& t) {
  LinkPtr link(bpf_program__attach(t.prog));
  if (!link) return make_error("attach: {}", err_text(errno));
  return ok();  // the link closes here: the hook was live only for this call
}

Feature make(const std::string& name, const std::string& cat, bool avail, std::string detail) {
  return Feature{name, cat, avail, std::move(detail)};
}

// Load + auto-attach; the detail is the first failure, or `ok_detail`.
Feature trial_attach(const std::string& name, const char* prog, const std::string& ok_detail) {
  auto t = load_one(prog);
  if (!t) return make(name, "prog_type", false, t.error().message);
  auto a = attach_auto(*t);
  if (!a) return make(name, "prog_type", false, a.error().message);
  return make(name, "prog_type", true, ok_detail);
}

std::string tracefs_root() {
  if (file_exists("/sys/kernel/tracing/events")) return "/sys/kernel/tracing";
  if (file_exists("/sys/kernel/debug/tracing/events")) return "/sys/kernel/debug/tracing";
  return {};
}

}  // namespace

// The uprobe trial attaches here, in the probing process itself, and calls
// it once; noinline + an asm barrier keep the call and the symbol real.
extern "C" __attribute__((noinline, used)) int kagami_probe_uprobe_target(int x) {
  asm volatile("" ::: "memory");
  return x + 1;
}

namespace {

// File offset of a function of this process: uprobes are placed by
// (inode, file offset), which /proc/self/maps gives without symbol tables,
// so this works for stripped binaries too.
Result<std::pair<std::string, uint64_t>> self_offset(const void* fn) {
  auto addr = reinterpret_cast<uintptr_t>(fn);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    uintptr_t lo = 0, hi = 0;
    unsigned long long off = 0;
    char perms[8] = {};
    int path_at = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx %7s %llx %*s %*s %n", &lo, &hi, perms, &off, &path_at) < 4)
      continue;
    if (addr < lo || addr >= hi || perms[2] != 'x') continue;
    std::string path = line.substr(static_cast<size_t>(path_at));
    if (path.empty() || path[0] != '/') return make_error("uprobe target is not file-backed");
    return std::make_pair(path, static_cast<uint64_t>(addr - lo + off));
  }
  return make_error("uprobe target not found in /proc/self/maps");
}

Feature trial_uprobe() {
  const std::string name = "uprobe";
  if (!file_exists("/sys/bus/event_source/devices/uprobe"))
    return make(name, "prog_type", false, "kernel built without uprobes (no uprobe PMU)");
  auto where = self_offset(reinterpret_cast<const void*>(&kagami_probe_uprobe_target));
  if (!where) return make(name, "prog_type", false, where.error().message);
  auto t = load_one("probe_uprobe");
  if (!t) return make(name, "prog_type", false, t.error().message);
  LinkPtr link(bpf_program__attach_uprobe(t->prog, false, static_cast<int>(::getpid()),
                                          where->first.c_str(), where->second));
  if (!link) return make(name, "prog_type", false, "attach: " + err_text(errno));
  volatile int sink = kagami_probe_uprobe_target(1);
  (void)sink;
  uint32_t key = 0;
  uint64_t hits = 0;
  int map_fd = bpf_object__find_map_fd_by_name(t->obj.get(), "probe_hits");
  if (map_fd < 0 || bpf_map_lookup_elem(map_fd, &key, &hits) != 0)
    return make(name, "prog_type", false, "attached, but the hit counter is unreadable");
  if (hits == 0) return make(name, "prog_type", false, "attached, but the probe did not fire");
  return make(name, "prog_type", true, "attached and fired");
}

Feature trial_kprobe() {
  const std::string name = "kprobe";
  bool pmu = file_exists("/sys/bus/event_source/devices/kprobe");
  bool legacy = file_exists(tracefs_root() + "/kprobe_events") && !tracefs_root().empty();
  auto t = load_one("probe_kprobe");
  if (!t) return make(name, "prog_type", false, t.error().message);
  auto a = attach_auto(*t);
  if (a) return make(name, "prog_type", true, pmu ? "perf kprobe PMU" : "legacy kprobe_events");
  std::string why;
  // register_kprobe exists exactly when CONFIG_KPROBES=y; the PMU and
  // kprobe_events are how userspace reaches it.
  if (!vmlinux().has_func("register_kprobe") && !pmu && !legacy)
    why = "kernel built without kprobes (no register_kprobe, no kprobe PMU); ";
  return make(name, "prog_type", false, why + a.error().message);
}

Feature trial_kprobe_multi() {
  const std::string name = "kprobe_multi";
  auto t = load_one("probe_kprobe_multi");
  if (!t) return make(name, "prog_type", false, t.error().message);
  const char* syms[] = {"bpf_fentry_test1"};
  LIBBPF_OPTS(bpf_kprobe_multi_opts, o, .syms = syms, .cnt = 1);
  LinkPtr link(bpf_program__attach_kprobe_multi_opts(t->prog, nullptr, &o));
  if (!link) {
    // kprobe.multi links ride on fprobe (ftrace), not on kprobes.
    std::string why = errno == EOPNOTSUPP ? "kernel built without fprobe; " : "";
    return make(name, "prog_type", false, why + "attach: " + err_text(errno));
  }
  return make(name, "prog_type", true, "fprobe-based multi-attach");
}

Feature trial_lsm() {
  const std::string name = "lsm";
  // securityfs lists the active LSMs; "bpf" must be among them (boot
  // parameter lsm=...,bpf). It is often not mounted, so the load decides.
  std::string lsms = read_first_line("/sys/kernel/security/lsm");
  std::string note;
  if (lsms.empty()) note = "securityfs not mounted (active LSMs unknown); ";
  else if (lsms.find("bpf") == std::string::npos) note = "active LSMs '" + lsms + "' lack bpf; ";
  auto t = load_one("probe_lsm");
  if (!t) return make(name, "prog_type", false, note + t.error().message);
  auto a = attach_auto(*t);
  if (!a) return make(name, "prog_type", false, note + a.error().message);
  return make(name, "prog_type", true, "BPF LSM active" + (lsms.empty() ? "" : " (" + lsms + ")"));
}

Feature trial_tracepoint() {
  const std::string name = "tracepoint";
  if (!file_exists("/sys/bus/event_source/devices/tracepoint"))
    return make(name, "prog_type", false, "kernel built without tracepoint events (no tracepoint PMU)");
  auto t = load_one("probe_tracepoint");
  if (!t) return make(name, "prog_type", false, t.error().message);
  if (tracefs_root().empty())
    return make(name, "prog_type", true,
                "loaded; attach not tried: tracefs not mounted (the agent mounts /sys/kernel/tracing)");
  auto a = attach_auto(*t);
  if (!a) return make(name, "prog_type", false, a.error().message);
  return make(name, "prog_type", true, "attached via " + tracefs_root());
}

Feature trial_ext() {
  const std::string name = "ext";
  auto target = load_one("probe_xdp");
  if (!target) return make(name, "prog_type", false, "target " + target.error().message);
  int target_fd = bpf_program__fd(target->prog);
  auto t = load_one("probe_freplace", [&](bpf_program* p) -> Result<void> {
    int err = bpf_program__set_attach_target(p, target_fd, "probe_ext_target");
    if (err) return make_error("set target: {}", err_text(err));
    return ok();
  });
  if (!t) return make(name, "prog_type", false, t.error().message);
  LinkPtr link(bpf_program__attach_freplace(t->prog, target_fd, "probe_ext_target"));
  if (!link) return make(name, "prog_type", false, "attach: " + err_text(errno));
  return make(name, "prog_type", true, "freplace of a global function");
}

Feature trial_iter() {
  const std::string name = "iter";
  auto t = load_one("probe_iter");
  if (!t) return make(name, "prog_type", false, t.error().message);
  LinkPtr link(bpf_program__attach_iter(t->prog, nullptr));
  if (!link) return make(name, "prog_type", false, "attach: " + err_text(errno));
  Fd it(bpf_iter_create(bpf_link__fd(link.get())));
  if (!it.valid()) return make(name, "prog_type", false, "iter create: " + err_text(errno));
  char buf[64];
  // The program emits nothing, so one read returns 0 (EOF) after walking
  // every map once; bounded by the number of maps on the system.
  if (::read(it.get(), buf, sizeof(buf)) < 0)
    return make(name, "prog_type", false, "iter read: " + err_text(errno));
  return make(name, "prog_type", true, "bpf_map iterator ran");
}

struct TypeProbe {
  const char* name;
  bpf_prog_type type;
  const char* detail;
};

// Program types for which "the kernel verifies a trivial program of this
// type" is the whole answer: their attach paths (netlink, cgroup, sockmap)
// have been in the kernel as long as the types themselves.
constexpr std::array<TypeProbe, 12> kTypeProbes{{
    {"xdp", BPF_PROG_TYPE_XDP, "BPF_PROG_TYPE_XDP"},
    {"tc", BPF_PROG_TYPE_SCHED_CLS, "sched_cls via netlink clsact"},
    {"cgroup_skb", BPF_PROG_TYPE_CGROUP_SKB, "BPF_PROG_TYPE_CGROUP_SKB"},
    {"cgroup_sock_addr", BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "BPF_PROG_TYPE_CGROUP_SOCK_ADDR"},
    {"cgroup_sock", BPF_PROG_TYPE_CGROUP_SOCK, "BPF_PROG_TYPE_CGROUP_SOCK"},
    {"sockops", BPF_PROG_TYPE_SOCK_OPS, "BPF_PROG_TYPE_SOCK_OPS"},
    {"sk_msg", BPF_PROG_TYPE_SK_MSG, "BPF_PROG_TYPE_SK_MSG"},
    {"sk_skb", BPF_PROG_TYPE_SK_SKB, "BPF_PROG_TYPE_SK_SKB"},
    {"sk_lookup", BPF_PROG_TYPE_SK_LOOKUP, "BPF_PROG_TYPE_SK_LOOKUP"},
    {"flow_dissector", BPF_PROG_TYPE_FLOW_DISSECTOR, "BPF_PROG_TYPE_FLOW_DISSECTOR"},
    {"perf_event", BPF_PROG_TYPE_PERF_EVENT, "BPF_PROG_TYPE_PERF_EVENT"},
    {"syscall", BPF_PROG_TYPE_SYSCALL, "BPF_PROG_TYPE_SYSCALL"},
}};

Feature libbpf_type_probe(const TypeProbe& p) {
  int r = libbpf_probe_bpf_prog_type(p.type, nullptr);
  if (r == 1) return make(p.name, "prog_type", true, p.detail);
  if (r == 0) return make(p.name, "prog_type", false, std::string("kernel rejects ") + p.detail);
  return make(p.name, "prog_type", false, "probe failed: " + err_text(r));
}

}  // namespace

Feature prog_type(const std::string& name) {
  QuietLibbpf quiet;
  for (const auto& p : kTypeProbes)
    if (name == p.name) return libbpf_type_probe(p);
  if (name == "kprobe") return trial_kprobe();
  if (name == "kprobe_multi") return trial_kprobe_multi();
  if (name == "uprobe") return trial_uprobe();
  if (name == "fentry") return trial_attach(name, "probe_fentry", "trampoline attach works");
  if (name == "fexit") return trial_attach(name, "probe_fexit", "trampoline attach works");
  if (name == "lsm") return trial_lsm();
  if (name == "tp_btf") return trial_attach(name, "probe_tp_btf", "BTF-typed raw tracepoint attach works");
  if (name == "raw_tp") return trial_attach(name, "probe_raw_tp", "raw tracepoint attach works");
  if (name == "tracepoint") return trial_tracepoint();
  if (name == "ext") return trial_ext();
  if (name == "iter") return trial_iter();
  return make(name, "prog_type", false, "unknown feature");
}

// ---------------------------------------------------------------------------
// Map types

namespace {

// Newer than the uapi headers of Debian 12 (6.1) and than libbpf 1.1.
constexpr uint32_t kMapTypeCgrpStorage = 32;  // 6.2
constexpr uint32_t kMapTypeArena = 33;        // 6.9

struct MapProbe {
  const char* name;
  uint32_t type;
};

constexpr std::array<MapProbe, 23> kMapProbes{{
    {"hash", BPF_MAP_TYPE_HASH},
    {"array", BPF_MAP_TYPE_ARRAY},
    {"percpu_hash", BPF_MAP_TYPE_PERCPU_HASH},
    {"percpu_array", BPF_MAP_TYPE_PERCPU_ARRAY},
    {"lru_hash", BPF_MAP_TYPE_LRU_HASH},
    {"lru_percpu_hash", BPF_MAP_TYPE_LRU_PERCPU_HASH},
    {"lpm_trie", BPF_MAP_TYPE_LPM_TRIE},
    {"ringbuf", BPF_MAP_TYPE_RINGBUF},
    {"user_ringbuf", BPF_MAP_TYPE_USER_RINGBUF},
    {"perf_event_array", BPF_MAP_TYPE_PERF_EVENT_ARRAY},
    {"prog_array", BPF_MAP_TYPE_PROG_ARRAY},
    {"stack_trace", BPF_MAP_TYPE_STACK_TRACE},
    {"sockmap", BPF_MAP_TYPE_SOCKMAP},
    {"sockhash", BPF_MAP_TYPE_SOCKHASH},
    {"devmap", BPF_MAP_TYPE_DEVMAP},
    {"cpumap", BPF_MAP_TYPE_CPUMAP},
    {"xskmap", BPF_MAP_TYPE_XSKMAP},
    {"bloom_filter", BPF_MAP_TYPE_BLOOM_FILTER},
    {"sk_storage", BPF_MAP_TYPE_SK_STORAGE},
    {"task_storage", BPF_MAP_TYPE_TASK_STORAGE},
    {"inode_storage", BPF_MAP_TYPE_INODE_STORAGE},
    {"cgrp_storage", kMapTypeCgrpStorage},
    {"arena", kMapTypeArena},
}};

// Local-storage maps need BTF for key (int) and value; libbpf 1.1 does this
// for the types it knows, cgrp_storage is newer, so build the same BTF here.
Feature create_cgrp_storage(const std::string& name) {
  struct btf* b = btf__new_empty();
  if (!b) return make(name, "map", false, "btf: " + err_text(errno));
  int int_id = btf__add_int(b, "int", 4, BTF_INT_SIGNED);
  int val_id = btf__add_struct(b, "val", 8);
  btf__add_field(b, "cnt", int_id, 0, 0);
  int err = btf__load_into_kernel(b);
  Fd btf_fd(err ? -1 : btf__fd(b) >= 0 ? ::dup(btf__fd(b)) : -1);
  btf__free(b);
  if (!btf_fd.valid()) return make(name, "map", false, "btf load: " + err_text(err ? err : errno));
  LIBBPF_OPTS(bpf_map_create_opts, o, .btf_fd = static_cast<uint32_t>(btf_fd.get()),
              .btf_key_type_id = static_cast<uint32_t>(int_id),
              .btf_value_type_id = static_cast<uint32_t>(val_id), .map_flags = BPF_F_NO_PREALLOC);
  Fd m(bpf_map_create(static_cast<bpf_map_type>(kMapTypeCgrpStorage), "kagami_probe", 4, 8, 0, &o));
  if (!m.valid()) return make(name, "map", false, "create: " + err_text(errno));
  return make(name, "map", true, "created");
}

Feature create_arena(const std::string& name) {
  // One page, mmapable (mandatory for arenas); the kernel picks the address.
  LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_MMAPABLE);
  Fd m(bpf_map_create(static_cast<bpf_map_type>(kMapTypeArena), "kagami_probe", 0, 0, 1, &o));
  if (!m.valid()) return make(name, "map", false, "create: " + err_text(errno));
  return make(name, "map", true, "created");
}

}  // namespace

Feature map_type(const std::string& name) {
  QuietLibbpf quiet;
  for (const auto& p : kMapProbes) {
    if (name != p.name) continue;
    if (p.type == kMapTypeCgrpStorage) return create_cgrp_storage(name);
    if (p.type == kMapTypeArena) return create_arena(name);
    int r = libbpf_probe_bpf_map_type(static_cast<bpf_map_type>(p.type), nullptr);
    if (r == 1) return make(name, "map", true, "created");
    if (r == 0) return make(name, "map", false, "kernel rejects the map type");
    return make(name, "map", false, "probe failed: " + err_text(r));
  }
  return make(name, "map", false, "unknown feature");
}

// ---------------------------------------------------------------------------
// Helpers

namespace {

struct HelperProbe {
  const char* name;
  int id;               // enum bpf_func_id
  bpf_prog_type where;  // a program type that is meant to be able to call it
  const char* where_name;
};

constexpr std::array<HelperProbe, 22> kHelperProbes{{
    {"bpf_send_signal", BPF_FUNC_send_signal, BPF_PROG_TYPE_TRACEPOINT, "tracepoint"},
    {"bpf_send_signal_thread", BPF_FUNC_send_signal_thread, BPF_PROG_TYPE_TRACEPOINT, "tracepoint"},
    {"bpf_get_current_cgroup_id", BPF_FUNC_get_current_cgroup_id, BPF_PROG_TYPE_TRACEPOINT, "tracepoint"},
    {"bpf_skb_cgroup_id", BPF_FUNC_skb_cgroup_id, BPF_PROG_TYPE_SCHED_CLS, "tc"},
    {"bpf_ktime_get_boot_ns", BPF_FUNC_ktime_get_boot_ns, BPF_PROG_TYPE_TRACEPOINT, "tracepoint"},
    {"bpf_ktime_get_tai_ns", BPF_FUNC_ktime_get_tai_ns, BPF_PROG_TYPE_TRACEPOINT, "tracepoint"},
    {"bpf_probe_read_user_str", BPF_FUNC_probe_read_user_str, BPF_PROG_TYPE_TRACEPOINT, "tracepoint"},
    {"bpf_probe_read_kernel", BPF_FUNC_probe_read_kernel, BPF_PROG_TYPE_TRACEPOINT, "tracepoint"},
    {"bpf_get_current_task_btf", BPF_FUNC_get_current_task_btf, BPF_PROG_TYPE_TRACEPOINT, "tracepoint"},
    {"bpf_get_stackid", BPF_FUNC_get_stackid, BPF_PROG_TYPE_TRACEPOINT, "tracepoint"},
    {"bpf_loop", BPF_FUNC_loop, BPF_PROG_TYPE_TRACEPOINT, "tracepoint"},
    {"bpf_timer", BPF_FUNC_timer_init, BPF_PROG_TYPE_SCHED_CLS, "tc"},
    {"bpf_for_each_map_elem", BPF_FUNC_for_each_map_elem, BPF_PROG_TYPE_TRACEPOINT, "tracepoint"},
    {"bpf_snprintf", BPF_FUNC_snprintf, BPF_PROG_TYPE_TRACEPOINT, "tracepoint"},
    {"bpf_ringbuf_output", BPF_FUNC_ringbuf_output, BPF_PROG_TYPE_XDP, "xdp"},
    {"bpf_redirect_map", BPF_FUNC_redirect_map, BPF_PROG_TYPE_XDP, "xdp"},
    {"bpf_fib_lookup", BPF_FUNC_fib_lookup, BPF_PROG_TYPE_XDP, "xdp"},
    {"bpf_xdp_adjust_tail", BPF_FUNC_xdp_adjust_tail, BPF_PROG_TYPE_XDP, "xdp"},
    {"bpf_skb_adjust_room", BPF_FUNC_skb_adjust_room, BPF_PROG_TYPE_SCHED_CLS, "tc"},
    {"bpf_sk_lookup_tcp", BPF_FUNC_sk_lookup_tcp, BPF_PROG_TYPE_SCHED_CLS, "tc"},
    {"bpf_get_socket_cookie", BPF_FUNC_get_socket_cookie, BPF_PROG_TYPE_SOCK_OPS, "sockops"},
    {"bpf_get_func_ip", BPF_FUNC_get_func_ip, BPF_PROG_TYPE_KPROBE, "kprobe/uprobe"},
}};

}  // namespace

Feature helper(const std::string& name) {
  QuietLibbpf quiet;
  for (const auto& h : kHelperProbes) {
    if (name != h.name) continue;
    int r = libbpf_probe_bpf_helper(h.where, static_cast<bpf_func_id>(h.id), nullptr);
    if (r == 1) return make(name, "helper", true, std::string("callable from ") + h.where_name);
    if (r == 0) return make(name, "helper", false, std::string("not callable from ") + h.where_name);
    return make(name, "helper", false, "probe failed: " + err_text(r));
  }
  return make(name, "helper", false, "unknown feature");
}

// ---------------------------------------------------------------------------
// kfuncs and BTF

Feature kfunc(const std::string& name) {
  const auto& v = vmlinux();
  if (!v.btf) return make(name, "kfunc", false, "no vmlinux BTF: " + err_text(v.err));
  int id = btf__find_by_name_kind(v.btf, name.c_str(), BTF_KIND_FUNC);
  if (id <= 0) return make(name, "kfunc", false, "not in vmlinux BTF");
  if (v.kfunc_ids.empty()) return make(name, "kfunc", true, "in vmlinux BTF (kernel has no kfunc tags)");
  if (!v.kfunc_ids.count(id))
    return make(name, "kfunc", false, "in vmlinux BTF but not tagged bpf_kfunc");
  return make(name, "kfunc", true, "vmlinux BTF, tagged bpf_kfunc");
}

Feature btf_vmlinux() {
  const auto& v = vmlinux();
  if (!v.btf) return make("btf_vmlinux", "kernel", false, "no vmlinux BTF: " + err_text(v.err));
  return make("btf_vmlinux", "kernel", true,
              std::to_string(btf__type_cnt(v.btf) - 1) + " types, " +
                  std::to_string(v.kfunc_ids.size()) + " tagged kfuncs");
}

Feature bpf_stats() {
  std::string sysctl = read_first_line("/proc/sys/kernel/bpf_stats_enabled");
  // BPF_ENABLE_STATS turns run-time accounting on for as long as the fd
  // lives; closing it at once leaves the system as it was.
  Fd fd(bpf_enable_stats(BPF_STATS_RUN_TIME));
  if (fd.valid())
    return make("bpf_stats", "kernel", true,
                "BPF_ENABLE_STATS works; kernel.bpf_stats_enabled=" + (sysctl.empty() ? "?" : sysctl));
  int err = errno;
  if (sysctl == "1") return make("bpf_stats", "kernel", true, "kernel.bpf_stats_enabled=1");
  return make("bpf_stats", "kernel", false, "BPF_ENABLE_STATS: " + err_text(err));
}

Result<uint64_t> bpf_current_cgroup_id() {
  QuietLibbpf quiet;
  auto t = load_one("probe_cgroup_id");
  if (!t) return t.error();
  LIBBPF_OPTS(bpf_test_run_opts, run);
  int err = bpf_prog_test_run_opts(bpf_program__fd(t->prog), &run);
  if (err) return make_error("test run: {}", err_text(err));
  uint32_t key = 1;
  uint64_t id = 0;
  int map_fd = bpf_object__find_map_fd_by_name(t->obj.get(), "probe_hits");
  if (map_fd < 0 || bpf_map_lookup_elem(map_fd, &key, &id) != 0) return make_error("probe_hits unreadable");
  return id;
}

Feature cgroup_id_inode() {
  const std::string name = "cgroup_id_inode";
  auto self = fs::cgroup_v2_path_of_pid(0);
  if (!self) return make(name, "kernel", false, self.error().message);
  const std::string& rel = *self;
  identity::Resolver resolver;
  if (!resolver.root_is_cgroup2()) return make(name, "kernel", false, "cgroup v2 not mounted");
  auto ino = resolver.id_of(rel);
  if (!ino) return make(name, "kernel", false, ino.error().message);
  auto id = bpf_current_cgroup_id();
  if (!id) return make(name, "kernel", false, id.error().message);
  if (*id != *ino)
    return make(name, "kernel", false,
                fmt::format("bpf_get_current_cgroup_id()={} but inode of {}{} is {} (cgroup namespace?)", *id,
                            resolver.root(), rel, *ino));
  return make(name, "kernel", true,
              fmt::format("bpf_get_current_cgroup_id() = inode of {}{} ({})", resolver.root(),
                          rel == "/" ? "" : rel, *id));
}

// ---------------------------------------------------------------------------
// Attach modes

namespace {

// XDP feature flags per interface, from the "netdev" generic-netlink family
// (kernel >= 6.3, NETDEV_CMD_DEV_GET). Constants from uapi linux/netdev.h,
// which Debian 12's 6.1 headers predate.
constexpr uint16_t kNetdevCmdDevGet = 1;
constexpr uint16_t kNetdevAttrIfindex = 1;
constexpr uint16_t kNetdevAttrXdpFeatures = 3;
constexpr uint64_t kXdpActBasic = 1, kXdpActRedirect = 2, kXdpActNdoXmit = 4, kXdpActXskZerocopy = 8;

struct NlMsg {
  nlmsghdr h;
  genlmsghdr g;
  char attrs[64];
};

Result<int> genl_family(int fd, const char* family) {
  NlMsg m{};
  m.h.nlmsg_type = GENL_ID_CTRL;
  m.h.nlmsg_flags = NLM_F_REQUEST;
  m.h.nlmsg_seq = 1;
  m.g.cmd = CTRL_CMD_GETFAMILY;
  m.g.version = 1;
  auto* a = reinterpret_cast<nlattr*>(m.attrs);
  a->nla_type = CTRL_ATTR_FAMILY_NAME;
  a->nla_len = static_cast<uint16_t>(NLA_HDRLEN + std::strlen(family) + 1);
  std::memcpy(reinterpret_cast<char*>(a) + NLA_HDRLEN, family, std::strlen(family) + 1);
  m.h.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN) + NLA_ALIGN(a->nla_len);
  if (::send(fd, &m, m.h.nlmsg_len, 0) < 0) return errno_error(errno, "genl send");
  std::array<char, 8192> buf{};
  ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
  if (n < 0) return errno_error(errno, "genl recv");
  auto* h = reinterpret_cast<nlmsghdr*>(buf.data());
  if (!NLMSG_OK(h, static_cast<uint32_t>(n))) return make_error("genl: short reply");
  if (h->nlmsg_type == NLMSG_ERROR) {
    auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
    return errno_error(e->error, "genl family {}", family);
  }
  int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN));
  auto* at = reinterpret_cast<nlattr*>(static_cast<char*>(NLMSG_DATA(h)) + GENL_HDRLEN);
  // Attributes are TLVs inside the message; len bounds the walk.
  while (len >= static_cast<int>(NLA_HDRLEN) && at->nla_len >= NLA_HDRLEN && at->nla_len <= len) {
    if (at->nla_type == CTRL_ATTR_FAMILY_ID) return static_cast<int>(*reinterpret_cast<uint16_t*>(reinterpret_cast<char*>(at) + NLA_HDRLEN));
    len -= NLA_ALIGN(at->nla_len);
    at = reinterpret_cast<nlattr*>(reinterpret_cast<char*>(at) + NLA_ALIGN(at->nla_len));
  }
  return make_error("genl family {}: no id in reply", family);
}

std::string xdp_flags_text(uint64_t f) {
  std::string s;
  auto add = [&](uint64_t bit, const char* n) {
    if (!(f & bit)) return;
    if (!s.empty()) s += ",";
    s += n;
  };
  add(kXdpActBasic, "basic");
  add(kXdpActRedirect, "redirect");
  add(kXdpActNdoXmit, "ndo_xmit");
  add(kXdpActXskZerocopy, "zerocopy");
  return s;
}

// ifname -> xdp feature flags, for every interface of this netns.
Result<std::map<std::string, uint64_t>> xdp_features_by_ifname() {
  Fd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC));
  if (!fd.valid()) return errno_error(errno, "netlink socket");
  timeval tv{1, 0};  // a wedged kernel must not hang the probe
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  auto fam = genl_family(fd.get(), "netdev");
  if (!fam) return fam.error();
  NlMsg m{};
  m.h.nlmsg_type = static_cast<uint16_t>(*fam);
  m.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  m.h.nlmsg_seq = 2;
  m.g.cmd = kNetdevCmdDevGet;
  m.g.version = 1;
  m.h.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
  if (::send(fd.get(), &m, m.h.nlmsg_len, 0) < 0) return errno_error(errno, "netdev dump");
  std::map<std::string, uint64_t> out;
  std::array<char, 32768> buf{};
  // A dump ends with NLMSG_DONE; each recv holds several messages. The loop
  // ends at DONE, an error, or the 1 s receive timeout.
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
    if (n < 0) return errno_error(errno, "netdev dump recv");
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, static_cast<uint32_t>(n));
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return out;
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        return errno_error(e->error, "netdev dump");
      }
      int len = static_cast<int>(h->nlmsg_len) - static_cast<int>(NLMSG_LENGTH(GENL_HDRLEN));
      auto* at = reinterpret_cast<nlattr*>(static_cast<char*>(NLMSG_DATA(h)) + GENL_HDRLEN);
      uint32_t ifindex = 0;
      uint64_t flags = 0;
      while (len >= static_cast<int>(NLA_HDRLEN) && at->nla_len >= NLA_HDRLEN && at->nla_len <= len) {
        const char* payload = reinterpret_cast<char*>(at) + NLA_HDRLEN;
        uint16_t type = at->nla_type & NLA_TYPE_MASK;
        if (type == kNetdevAttrIfindex && at->nla_len >= NLA_HDRLEN + 4) std::memcpy(&ifindex, payload, 4);
        if (type == kNetdevAttrXdpFeatures && at->nla_len >= NLA_HDRLEN + 8) std::memcpy(&flags, payload, 8);
        len -= NLA_ALIGN(at->nla_len);
        at = reinterpret_cast<nlattr*>(reinterpret_cast<char*>(at) + NLA_ALIGN(at->nla_len));
      }
      char ifname[IF_NAMESIZE] = {};
      if (ifindex && ::if_indextoname(ifindex, ifname)) out[ifname] = flags;
    }
  }
}

}  // namespace

Feature attach_mode(const std::string& name) {
  QuietLibbpf quiet;
  if (name == "xdp_generic") {
    // Generic (skb) XDP runs on any netdev once the program type exists.
    bool xdp = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, nullptr) == 1;
    return make(name, "attach", xdp, xdp ? "any interface (skb mode)" : "no XDP program type");
  }
  if (name == "xdp_native") {
    if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, nullptr) != 1)
      return make(name, "attach", false, "no XDP program type");
    auto feats = xdp_features_by_ifname();
    if (!feats)
      return make(name, "attach", true,
                  "per-interface: driver-dependent (kernel < 6.3 does not report XDP features: " +
                      feats.error().message + ")");
    std::string with, without;
    for (const auto& [ifname, f] : *feats) {
      if (f & kXdpActBasic) with += (with.empty() ? "" : ", ") + ifname + " (" + xdp_flags_text(f) + ")";
      else without += (without.empty() ? "" : ", ") + ifname;
    }
    std::string detail = "per-interface: native on " + (with.empty() ? std::string("none") : with);
    if (!without.empty()) detail += "; generic only: " + without;
    // The kernel supports native mode; whether a given interface does is
    // the driver's business, listed above. veth always does.
    return make(name, "attach", true, detail);
  }
  const auto& v = vmlinux();
  if (name == "tcx") {
    bool k = v.has_enumerator("bpf_attach_type", "BPF_TCX_INGRESS");
    return make(name, "attach", k,
                k ? "kernel supports tcx; not used: libbpf 1.1 has no tcx API (TC clsact via netlink)"
                  : "kernel lacks tcx (BPF_TCX_INGRESS, 6.6+); TC clsact via netlink");
  }
  if (name == "netkit") {
    bool type = v.has_enumerator("bpf_attach_type", "BPF_NETKIT_PRIMARY");
    // The attach type lives in the core; the device needs CONFIG_NETKIT.
    bool driver = v.has_func("netkit_link_attach") || v.has_func("netkit_prog_attach") ||
                  file_exists("/sys/module/netkit");
    if (!type) return make(name, "attach", false, "kernel lacks netkit (6.7+)");
    if (!driver) return make(name, "attach", false, "attach type known, netkit driver not built");
    return make(name, "attach", true, "kernel supports netkit; not used: libbpf 1.1 has no netkit API");
  }
  if (name == "bpf_link") {
    bool k = v.has_enumerator("bpf_link_type", "BPF_LINK_TYPE_XDP");
    return make(name, "attach", k, k ? "BPF_LINK_CREATE for xdp/cgroup/tracing" : "no bpf_link for XDP");
  }
  return make(name, "attach", false, "unknown feature");
}

}  // namespace kagami::core::probe_detail
