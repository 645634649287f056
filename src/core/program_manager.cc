// The concrete ProgramManager (docs/program-manager.md). Every kernel call
// goes through src/bpf; this file holds the policy: which program goes on
// which hook, how a replace carries state, what is pinned and how it is found
// again after a restart, and how every step is undone when a later one fails.
#include "core/program_manager.h"

#include <linux/bpf.h>
#include <net/if.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <regex>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bpf/hooks.h"
#include "bpf/kernel.h"
#include "bpf/object.h"
#include "xdp_chain_root.skel.h"

namespace kagami::core {
namespace {

using json = nlohmann::json;

constexpr const char* kChainMap = "kagami_xdp_chain";
constexpr const char* kChainSlotMap = ".rodata.kchain";
constexpr int kChainSlots = 32;  // == KAGAMI_XDP_CHAIN_SLOTS in bpf/lib/xdp_chain.h
// bpffs refuses names containing '.', so pins use '_' (libbpf does the same
// for .rodata & co) and the chain directory, like the metadata record, uses
// a leading '_' that program names may not have.
constexpr const char* kChainDir = "_xdp_chain";
constexpr const char* kMetaPin = "meta";
// meta.json lives in a pinned one-entry array map (pin "meta"): bpffs holds only BPF
// objects, and keeping the record beside the pins means it can never
// disagree with them about existence.
constexpr uint32_t kMetaSize = 32768;

// Collects undo steps; runs them in reverse unless commit() was called.
class Undo {
 public:
  ~Undo() {
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) (*it)();
  }
  void add(std::function<void()> f) { steps_.push_back(std::move(f)); }
  void commit() { steps_.clear(); }

 private:
  std::vector<std::function<void()>> steps_;
};

enum class Mech { Link, Tc, XdpChain };

struct Attachment {
  AttachPoint point;
  std::string program;
  Mech mech = Mech::Link;
  std::string mechanism;   // for listings
  Fd link;                 // Mech::Link
  std::string link_pin;    // relative to the entry dir: "links/0"
  bpf::TcFilter tc;        // Mech::Tc
  int chain_slot = -1;     // Mech::XdpChain (interface: point.target)
};

struct Entry {
  std::string name, label, source, sha256;
  bool builtin = false, adopted = false;
  uint32_t generation = 1;
  int64_t loaded_at = 0;
  std::map<std::string, Fd> progs;
  std::map<std::string, Fd> maps;
  std::vector<Attachment> atts;
  Fd meta;
};

struct Chain {
  std::string ifname;
  int ifindex = 0;
  bool native = false;
  Fd root;   // root program
  Fd link;   // XDP link of the root
  Fd slots;  // prog_array
};

bool link_updatable(AttachPoint::Kind k) {
  // xdp, cgroup (incl. sockops) and sockmap links implement update_prog;
  // perf-event (tracepoint, uprobe), raw_tp and tracing links do not.
  return k == AttachPoint::Kind::Xdp || k == AttachPoint::Kind::Cgroup || k == AttachPoint::Kind::SkMsg;
}

// Which program types a hook kind accepts.
bool type_fits(AttachPoint::Kind k, uint32_t t) {
  switch (k) {
    case AttachPoint::Kind::Xdp: return t == BPF_PROG_TYPE_XDP;
    case AttachPoint::Kind::Tc: return t == BPF_PROG_TYPE_SCHED_CLS || t == BPF_PROG_TYPE_SCHED_ACT;
    case AttachPoint::Kind::Tracepoint: return t == BPF_PROG_TYPE_TRACEPOINT;
    case AttachPoint::Kind::RawTp: return t == BPF_PROG_TYPE_RAW_TRACEPOINT;
    case AttachPoint::Kind::TpBtf: return t == BPF_PROG_TYPE_TRACING;
    case AttachPoint::Kind::Cgroup:
      return t == BPF_PROG_TYPE_CGROUP_SOCK_ADDR || t == BPF_PROG_TYPE_CGROUP_SOCK ||
             t == BPF_PROG_TYPE_CGROUP_SKB || t == BPF_PROG_TYPE_SOCK_OPS;
    case AttachPoint::Kind::SkMsg: return t == BPF_PROG_TYPE_SK_MSG;
    case AttachPoint::Kind::Uprobe:
    case AttachPoint::Kind::Uretprobe: return t == BPF_PROG_TYPE_KPROBE;
  }
  return false;
}

// cgroup option -> (attach type, program type).
std::pair<uint32_t, uint32_t> cgroup_hook(const std::string& opt) {
  if (opt == "connect4") return {BPF_CGROUP_INET4_CONNECT, BPF_PROG_TYPE_CGROUP_SOCK_ADDR};
  if (opt == "connect6") return {BPF_CGROUP_INET6_CONNECT, BPF_PROG_TYPE_CGROUP_SOCK_ADDR};
  if (opt == "sendmsg4") return {BPF_CGROUP_UDP4_SENDMSG, BPF_PROG_TYPE_CGROUP_SOCK_ADDR};
  if (opt == "sendmsg6") return {BPF_CGROUP_UDP6_SENDMSG, BPF_PROG_TYPE_CGROUP_SOCK_ADDR};
  if (opt == "sock_create") return {BPF_CGROUP_INET_SOCK_CREATE, BPF_PROG_TYPE_CGROUP_SOCK};
  if (opt == "ingress") return {BPF_CGROUP_INET_INGRESS, BPF_PROG_TYPE_CGROUP_SKB};
  if (opt == "egress") return {BPF_CGROUP_INET_EGRESS, BPF_PROG_TYPE_CGROUP_SKB};
  return {BPF_CGROUP_SOCK_OPS, BPF_PROG_TYPE_SOCK_OPS};
}

std::string hook_kind_name(const AttachPoint& p) {
  auto s = p.to_string();
  return s.substr(0, s.find(':'));
}

std::string sha256_hex(const std::vector<uint8_t>& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; i++) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::string pin_name(std::string n) {
  std::replace(n.begin(), n.end(), '.', '_');
  return n;
}

std::string basename_of(const std::string& p) {
  const size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

std::string layout(const bpf::MapDesc& m) {
  return fmt::format("{} key {} value {} max_entries {} flags {:#x}", m.type, m.key_size, m.value_size,
                     m.max_entries, m.flags);
}
std::string layout(const bpf::KMapInfo& m) {
  return fmt::format("{} key {} value {} max_entries {} flags {:#x}", m.type, m.key_size, m.value_size,
                     m.max_entries, m.flags);
}

// The loaded object's program for a point: by name, or the only one whose
// type fits the hook.
Result<bpf::ProgDesc> pick_program(const bpf::Object& obj, const AttachPoint& p) {
  const auto progs = obj.programs();
  if (!p.program.empty()) {
    for (const auto& d : progs) {
      if (d.name != p.program) continue;
      if (!type_fits(p.kind, d.prog_type))
        return make_error("attach {}: program {} is of type {}, which cannot attach to a {} hook",
                          p.to_string(), d.name, d.type, hook_kind_name(p));
      return d;
    }
    return make_error("attach {}: {} has no program named {}", p.to_string(), obj.label(), p.program);
  }
  std::vector<bpf::ProgDesc> fits;
  for (const auto& d : progs)
    if (type_fits(p.kind, d.prog_type)) fits.push_back(d);
  if (p.kind == AttachPoint::Kind::Cgroup) {
    // Several cgroup programs: prefer the one whose section names the hook.
    const std::string want = p.option == "sockops" ? "sockops" : "cgroup/" + p.option;
    std::vector<bpf::ProgDesc> exact;
    for (const auto& d : fits)
      if (d.section == want || (p.option.size() > 0 && d.section == "cgroup_skb/" + p.option)) exact.push_back(d);
    if (exact.size() == 1) return exact[0];
  }
  if (fits.size() == 1) return fits[0];
  if (fits.empty())
    return make_error("attach {}: {} has no program of a type that fits a {} hook", p.to_string(),
                      obj.label(), hook_kind_name(p));
  std::string names;
  for (const auto& d : fits) names += (names.empty() ? "" : ", ") + d.name;
  return make_error("attach {}: several programs fit ({}); pick one with @name", p.to_string(), names);
}

class Manager final : public ProgramManager {
 public:
  explicit Manager(ManagerOptions opts) : opts_(std::move(opts)) {}

  ~Manager() override = default;  // fds close; pinned programs keep running

  Result<void> init();

  Result<ProgramInfo> load(const LoadRequest& req) override {
    std::lock_guard<std::mutex> lk(mu_);
    auto r = load_locked(req);
    if (!r) return r.error().with_context("load " + req.name);
    return r;
  }
  Result<ProgramInfo> replace(const std::string& name, const LoadRequest& req) override {
    std::lock_guard<std::mutex> lk(mu_);
    auto r = replace_locked(name, req);
    if (!r) return r.error().with_context("replace " + name);
    return r;
  }
  Result<void> unload(const std::string& name) override {
    std::lock_guard<std::mutex> lk(mu_);
    auto r = unload_locked(name);
    if (!r) return r.error().with_context("unload " + name);
    return r;
  }
  std::vector<ProgramInfo> list() const override {
    std::lock_guard<std::mutex> lk(mu_);
    std::vector<ProgramInfo> out;
    for (const auto& [n, e] : entries_) out.push_back(info(e));
    return out;
  }
  Result<ProgramInfo> get(const std::string& name) const override {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = entries_.find(name);
    if (it == entries_.end()) return make_error("no program named {}", name);
    return info(it->second);
  }
  Result<Fd> map_fd(const std::string& name, const std::string& map) const override {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = entries_.find(name);
    if (it == entries_.end()) return make_error("no program named {}", name);
    auto m = it->second.maps.find(map);
    if (m == it->second.maps.end()) return make_error("program {} has no map {}", name, map);
    return bpf::dup_fd(m->second.get());
  }
  const ManagerOptions& options() const override { return opts_; }

 private:
  std::string dir(const std::string& name) const { return opts_.pin_root + "/" + name; }
  std::string chain_dir(const std::string& ifname) const {
    return opts_.pin_root + "/" + kChainDir + "/" + ifname;
  }

  Result<ProgramInfo> load_locked(const LoadRequest& req);
  Result<ProgramInfo> replace_locked(const std::string& name, const LoadRequest& req);
  Result<void> unload_locked(const std::string& name);

  Result<std::vector<uint8_t>> read_source(const ProgramSource& src, std::string* label) const;
  Result<bpf::Object> open_trusted(const LoadRequest& req, std::string* label, std::string* sha) const;
  Result<void> check_trust(const LoadRequest& req, const std::string& sha,
                           const bpf::Object& obj) const;
  Result<void> check_target(const AttachPoint& p, const bpf::Object& obj) const;
  Result<void> prepare(bpf::Object& obj, const AttachPoint& p, const std::string& prog) const;

  // XDP chain
  bool chain_aware(const bpf::Object& obj) const;
  Result<Chain*> get_or_create_chain(const AttachPoint& p, Undo& undo);
  Result<int> pick_slot(const std::string& ifname, int order) const;
  void maybe_destroy_chain(const std::string& ifname);
  Result<void> adopt_chains();

  Result<Attachment> attach_one(const bpf::Object& obj, const AttachPoint& p, const std::string& prog,
                                int chain_slot, const Entry& e, Undo& undo);
  // For an XDP point: -1 (direct attach) or the chain slot to use, creating
  // the interface's chain and preparing a chain-aware object for the slot.
  Result<int> prepare_xdp(bpf::Object& obj, const AttachPoint& p, int keep_slot, Undo& undo);
  void detach(Entry& e, Attachment& a);

  Result<void> pin_all(Entry& e, Undo& undo);
  json meta_json(const Entry& e) const;
  Result<void> write_meta(Entry& e);
  Result<void> adopt_all();
  Result<Entry> adopt_one(const std::string& name);

  ProgramInfo info(const Entry& e) const;

  ManagerOptions opts_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, Chain> chains_;  // by interface name
  Fd stats_;
};

Result<void> Manager::init() {
  KAGAMI_TRY_CTX(bpf::ensure_bpffs(opts_.pin_root), "pin root");
  auto st = bpf::enable_stats();
  if (st) {
    stats_ = std::move(*st);
  } else if (!bpf::stats_enabled_sysctl()) {
    spdlog::warn("BPF run-time stats unavailable ({}); run_cnt/run_time_ns stay 0 unless "
                 "sysctl kernel.bpf_stats_enabled=1", st.error().message);
  }
  KAGAMI_TRY(adopt_chains());
  KAGAMI_TRY(adopt_all());
  return ok();
}

Result<std::vector<uint8_t>> Manager::read_source(const ProgramSource& src, std::string* label) const {
  if (!src.path.empty()) {
    *label = src.label.empty() ? basename_of(src.path) : src.label;
    return bpf::read_file(src.path);
  }
  if (src.bytes.empty()) return make_error("no object given (neither path nor bytes)");
  *label = src.label.empty() ? "object" : src.label;
  return src.bytes;
}

// The common front of load and replace: read the source, hash it, open the
// ELF (magic, EM_BPF, license) and apply the trust policy, all before the
// kernel is touched.
Result<bpf::Object> Manager::open_trusted(const LoadRequest& req, std::string* label, std::string* sha) const {
  auto bytes = read_source(req.source, label);
  if (!bytes) return bytes.error();
  *sha = sha256_hex(*bytes);
  auto obj = bpf::Object::open(std::move(*bytes), *label);
  if (!obj) return obj.error();
  KAGAMI_TRY(check_trust(req, *sha, *obj));
  return obj;
}

Result<void> Manager::check_trust(const LoadRequest& req, const std::string& sha,
                                  const bpf::Object& obj) const {
  if (req.builtin) return ok();
  const auto& t = opts_.trust;
  if (!t.allowed_sha256.empty() && !t.allowed_sha256.count(sha))
    return make_error("trust policy: object digest sha256:{} is not in the allow-list", sha);
  if (!t.allowed_prog_types.empty()) {
    for (const auto& p : obj.programs())
      if (!t.allowed_prog_types.count(p.type))
        return make_error("trust policy: program type {} (program {}) is not permitted for custom code",
                          p.type, p.name);
  }
  return ok();
}

Result<void> Manager::check_target(const AttachPoint& p, const bpf::Object& obj) const {
  switch (p.kind) {
    case AttachPoint::Kind::Xdp:
    case AttachPoint::Kind::Tc:
      if (if_nametoindex(p.target.c_str()) == 0)
        return make_error("attach {}: no such interface {}", p.to_string(), p.target);
      break;
    case AttachPoint::Kind::Cgroup:
      if (!bpf::path_exists(p.target))
        return make_error("attach {}: no such cgroup {}", p.to_string(), p.target);
      if (!bpf::is_cgroup2(p.target))
        return make_error("attach {}: {} is not a cgroup v2 directory (BPF cgroup hooks need cgroup2)",
                          p.to_string(), p.target);
      break;
    case AttachPoint::Kind::SkMsg: {
      bool found = false;
      for (const auto& m : obj.maps())
        if (m.name == p.target) {
          if (m.map_type != BPF_MAP_TYPE_SOCKMAP && m.map_type != BPF_MAP_TYPE_SOCKHASH)
            return make_error("attach {}: map {} is a {}, not a sockmap/sockhash", p.to_string(), m.name, m.type);
          found = true;
        }
      if (!found) return make_error("attach {}: {} has no map {}", p.to_string(), obj.label(), p.target);
      break;
    }
    case AttachPoint::Kind::Uprobe:
    case AttachPoint::Kind::Uretprobe:
      if (access(p.target.c_str(), R_OK) != 0)
        return make_error("attach {}: cannot read binary {}", p.to_string(), p.target);
      break;
    default:
      break;
  }
  return ok();
}

Result<void> Manager::prepare(bpf::Object& obj, const AttachPoint& p, const std::string& prog) const {
  if (p.kind == AttachPoint::Kind::Cgroup) {
    auto [at, pt] = cgroup_hook(p.option);
    for (const auto& d : obj.programs())
      if (d.name == prog && d.prog_type != pt)
        return make_error("attach {}: program {} is of type {}, which cannot attach to cgroup hook {}",
                          p.to_string(), prog, d.type, p.option);
    KAGAMI_TRY(obj.set_expected_attach_type(prog, at));
  } else if (p.kind == AttachPoint::Kind::TpBtf) {
    KAGAMI_TRY(obj.set_attach_target(prog, p.target));
  }
  return ok();
}

bool Manager::chain_aware(const bpf::Object& obj) const {
  bool map = false, slot = false;
  for (const auto& m : obj.maps()) {
    if (m.name == kChainMap && m.map_type == BPF_MAP_TYPE_PROG_ARRAY && m.max_entries == kChainSlots) map = true;
    if (m.name == kChainSlotMap) slot = true;
  }
  return map && slot;
}

// A chain whose interface went away (and maybe came back under the same
// name with a new ifindex) has a defunct root link: drop it and its pins.
bool chain_alive(const Chain& c) {
  auto li = bpf::link_info(c.link.get());
  const int now = static_cast<int>(if_nametoindex(c.ifname.c_str()));
  return li && li->xdp_ifindex != 0 && static_cast<int>(li->xdp_ifindex) == now;
}

Result<Chain*> Manager::get_or_create_chain(const AttachPoint& p, Undo& undo) {
  auto it = chains_.find(p.target);
  if (it != chains_.end() && !chain_alive(it->second)) {
    spdlog::warn("xdp chain on {} is stale (interface gone or re-created); rebuilding it", p.target);
    const std::string d = chain_dir(p.target);
    for (const char* f : {"/link", "/root", "/slots"}) (void)bpf::remove_path(d + f);
    (void)bpf::remove_path(d);
    chains_.erase(it);
    it = chains_.end();
  }
  if (it != chains_.end()) return &it->second;
  const int ifindex = static_cast<int>(if_nametoindex(p.target.c_str()));
  if (!ifindex) return make_error("no such interface {}", p.target);
  size_t sz = 0;
  const auto* data = static_cast<const uint8_t*>(xdp_chain_root_bpf__elf_bytes(&sz));
  auto obj = bpf::Object::open(std::vector<uint8_t>(data, data + sz), "xdp_chain_root");
  if (!obj) return obj.error();
  KAGAMI_TRY(obj->load());
  Chain c;
  c.ifname = p.target;
  c.ifindex = ifindex;
  auto root = bpf::dup_fd(obj->prog_fd("kagami_xdp_root"));
  auto slots = bpf::dup_fd(obj->map_fd(kChainMap));
  if (!root) return root.error();
  if (!slots) return slots.error();
  const auto mode = p.option == "native" ? bpf::XdpMode::Native
                    : p.option == "generic" ? bpf::XdpMode::Generic : bpf::XdpMode::Auto;
  auto l = bpf::attach_xdp(root->get(), ifindex, mode);
  if (!l) {
    if (l.error().code == EBUSY || l.error().code == EEXIST) {
      auto id = bpf::xdp_query(ifindex);
      return make_error("xdp:{} already runs an XDP program (id {}) that this manager does not own",
                        p.target, id ? *id : 0);
    }
    return l.error().with_context("attaching XDP chain root to " + p.target);
  }
  c.root = std::move(*root);
  c.slots = std::move(*slots);
  c.link = std::move(l->link);
  c.native = l->native;
  const std::string d = chain_dir(p.target);
  KAGAMI_TRY(bpf::make_dir(opts_.pin_root + "/" + kChainDir));
  KAGAMI_TRY(bpf::make_dir(d));
  auto unpin = [d] {
    for (const char* f : {"/link", "/root", "/slots"}) (void)bpf::remove_path(d + f);
    (void)bpf::remove_path(d);
  };
  auto pinned = [&]() -> Result<void> {
    KAGAMI_TRY(bpf::obj_pin(c.root.get(), d + "/root"));
    KAGAMI_TRY(bpf::obj_pin(c.slots.get(), d + "/slots"));
    KAGAMI_TRY(bpf::obj_pin(c.link.get(), d + "/link"));
    return ok();
  }();
  if (!pinned) {
    unpin();
    return pinned.error();
  }
  spdlog::info("xdp chain root attached to {} ({})", p.target, c.native ? "native" : "generic");
  auto [pos, _] = chains_.emplace(p.target, std::move(c));
  const std::string ifname = p.target;
  undo.add([this, ifname] { maybe_destroy_chain(ifname); });
  return &pos->second;
}

Result<int> Manager::pick_slot(const std::string& ifname, int order) const {
  // Slots keep the members' order with gaps between them, so a program can
  // join between two others without moving anyone (moving would need a
  // reload: the slot is baked into each program's .rodata).
  int lo = -1, hi = kChainSlots;
  for (const auto& [n, e] : entries_)
    for (const auto& a : e.atts)
      if (a.mech == Mech::XdpChain && a.point.target == ifname) {
        if (a.point.order <= order) lo = std::max(lo, a.chain_slot);
        else hi = std::min(hi, a.chain_slot);
      }
  if (hi - lo < 2)
    return make_error("no free XDP chain slot on {} for order {} (between slots {} and {})", ifname, order, lo, hi);
  return (lo + hi) / 2;
}

void Manager::maybe_destroy_chain(const std::string& ifname) {
  auto it = chains_.find(ifname);
  if (it == chains_.end()) return;
  for (const auto& [n, e] : entries_)
    for (const auto& a : e.atts)
      if (a.mech == Mech::XdpChain && a.point.target == ifname) return;
  // Empty: detach explicitly (pins or other fds may still hold the link).
  (void)bpf::link_detach(it->second.link.get());
  const std::string d = chain_dir(ifname);
  for (const char* f : {"/link", "/root", "/slots"}) (void)bpf::remove_path(d + f);
  (void)bpf::remove_path(d);
  (void)bpf::remove_path(opts_.pin_root + "/" + kChainDir);  // only if empty
  chains_.erase(it);  // closing the last link fd detaches the root
  spdlog::info("xdp chain root removed from {}", ifname);
}

Result<void> Manager::adopt_chains() {
  const std::string base = opts_.pin_root + "/" + kChainDir;
  for (const auto& ifname : bpf::list_dir(base)) {
    const std::string d = base + "/" + ifname;
    Chain c;
    c.ifname = ifname;
    c.ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
    auto root = bpf::obj_get(d + "/root");
    auto slots = bpf::obj_get(d + "/slots");
    auto link = bpf::obj_get(d + "/link");
    if (!root || !slots || !link) {
      spdlog::warn("xdp chain pins in {} incomplete; leaving them alone", d);
      continue;
    }
    c.root = std::move(*root);
    c.slots = std::move(*slots);
    c.link = std::move(*link);
    if (!chain_alive(c)) {
      spdlog::warn("xdp chain on {} is stale (interface gone); removing its pins", ifname);
      for (const char* f : {"/link", "/root", "/slots"}) (void)bpf::remove_path(d + f);
      (void)bpf::remove_path(d);
      continue;
    }
    chains_.emplace(ifname, std::move(c));
  }
  return ok();
}

Result<Attachment> Manager::attach_one(const bpf::Object& obj, const AttachPoint& p,
                                       const std::string& prog, int chain_slot, const Entry& e,
                                       Undo& undo) {
  Attachment a;
  a.point = p;
  a.program = prog;
  const int fd = obj.prog_fd(prog);
  switch (p.kind) {
    case AttachPoint::Kind::Xdp: {
      const int ifindex = static_cast<int>(if_nametoindex(p.target.c_str()));
      if (chain_slot >= 0) {
        // Chain: the slot was chosen (and baked into a chain-aware program's
        // .rodata) before load.
        auto it = chains_.find(p.target);
        if (it == chains_.end()) return make_error("internal: no xdp chain on {}", p.target);
        a.mech = Mech::XdpChain;
        a.chain_slot = chain_slot;
        if (a.chain_slot < 0) return make_error("internal: no xdp chain slot for {}", p.to_string());
        const uint32_t key = static_cast<uint32_t>(a.chain_slot);
        const uint32_t val = static_cast<uint32_t>(fd);
        KAGAMI_TRY_CTX(bpf::map_update(it->second.slots.get(), &key, &val),
                       fmt::format("setting xdp chain slot {} on {}", key, p.target));
        const int slots = it->second.slots.get();
        undo.add([slots, key] { (void)bpf::map_delete(slots, &key); });
        a.mechanism = fmt::format("xdp-chain[{}]", a.chain_slot);
        return a;
      }
      for (const auto& [n, other] : entries_)
        for (const auto& oa : other.atts)
          if (oa.point.kind == AttachPoint::Kind::Xdp && oa.point.target == p.target && n != e.name)
            return make_error("xdp:{} already runs program {}, which is not chain-aware; only chain-aware "
                              "programs (bpf/lib/xdp_chain.h) can share an interface", p.target, n);
      const auto mode = p.option == "native" ? bpf::XdpMode::Native
                        : p.option == "generic" ? bpf::XdpMode::Generic : bpf::XdpMode::Auto;
      auto l = bpf::attach_xdp(fd, ifindex, mode);
      if (!l) {
        if (l.error().code == EBUSY || l.error().code == EEXIST) {
          auto id = bpf::xdp_query(ifindex);
          return make_error("xdp:{} already runs an XDP program (id {}) that this manager does not own",
                            p.target, id ? *id : 0);
        }
        return l.error().with_context("attach " + p.to_string());
      }
      a.link = std::move(l->link);
      a.mechanism = l->native ? "xdp-native" : "xdp-generic";
      break;
    }
    case AttachPoint::Kind::Tc: {
      const int ifindex = static_cast<int>(if_nametoindex(p.target.c_str()));
      auto f = bpf::tc_attach(fd, ifindex, p.option == "egress", static_cast<uint32_t>(p.order), false);
      if (!f) return f.error().with_context("attach " + p.to_string());
      a.mech = Mech::Tc;
      a.tc = *f;
      a.mechanism = fmt::format("tc-prio:{}", f->priority);
      const bpf::TcFilter tf = *f;
      undo.add([tf] { (void)bpf::tc_detach(tf); });
      return a;
    }
    case AttachPoint::Kind::Tracepoint: {
      const size_t s = p.target.find('/');
      auto l = bpf::attach_tracepoint(fd, p.target.substr(0, s), p.target.substr(s + 1));
      if (!l) return l.error().with_context("attach " + p.to_string());
      a.link = std::move(*l);
      a.mechanism = "bpf_link(perf_event)";
      break;
    }
    case AttachPoint::Kind::RawTp: {
      auto l = bpf::attach_raw_tp(fd, p.target);
      if (!l) return l.error().with_context("attach " + p.to_string());
      a.link = std::move(*l);
      a.mechanism = "bpf_link(raw_tp)";
      break;
    }
    case AttachPoint::Kind::TpBtf: {
      auto l = bpf::attach_raw_tp(fd, "");
      if (!l) return l.error().with_context("attach " + p.to_string());
      a.link = std::move(*l);
      a.mechanism = "bpf_link(tracing)";
      break;
    }
    case AttachPoint::Kind::Cgroup: {
      auto l = bpf::attach_cgroup(fd, p.target, cgroup_hook(p.option).first);
      if (!l) return l.error().with_context("attach " + p.to_string());
      a.link = std::move(*l);
      a.mechanism = "bpf_link(cgroup)";
      break;
    }
    case AttachPoint::Kind::SkMsg: {
      auto l = bpf::attach_sk_msg(fd, obj.map_fd(p.target));
      if (!l) return l.error().with_context("attach " + p.to_string());
      a.link = std::move(*l);
      a.mechanism = "bpf_link(sockmap)";
      break;
    }
    case AttachPoint::Kind::Uprobe:
    case AttachPoint::Kind::Uretprobe: {
      auto l = bpf::attach_uprobe(obj.program(prog), p.target, p.option,
                                  p.kind == AttachPoint::Kind::Uretprobe);
      if (!l) return l.error().with_context("attach " + p.to_string());
      a.link = std::move(*l);
      a.mechanism = "bpf_link(perf_event)";
      break;
    }
  }
  a.mech = Mech::Link;
  // A link that fails later in the transaction is detached explicitly: the
  // fd in `a` is moved into the entry, so capture a dup for the undo.
  auto d = bpf::dup_fd(a.link.get());
  if (!d) return d.error();
  auto shared = std::make_shared<Fd>(std::move(*d));
  undo.add([shared] { (void)bpf::link_detach(shared->get()); });
  return a;
}

Result<int> Manager::prepare_xdp(bpf::Object& obj, const AttachPoint& p, int keep_slot, Undo& undo) {
  const bool aware = chain_aware(obj);
  if (!aware && !chains_.count(p.target)) return -1;  // a lone plain program: direct XDP link
  if (aware) {
    // A chain-aware program cannot sit on an interface held directly by a
    // plain (non chain-aware) Kagami program.
    for (const auto& [n, e] : entries_)
      for (const auto& a : e.atts)
        if (a.point.kind == AttachPoint::Kind::Xdp && a.point.target == p.target && a.mech == Mech::Link)
          return make_error("xdp:{} already runs program {}, which is not chain-aware; only chain-aware "
                            "programs (bpf/lib/xdp_chain.h) can share an interface", p.target, n);
  }
  auto c = get_or_create_chain(p, undo);
  if (!c) return c.error();
  int slot = keep_slot;
  if (slot < 0) {
    auto s = pick_slot(p.target, p.order);
    if (!s) return s.error();
    slot = *s;
  }
  if (aware) {
    KAGAMI_TRY(obj.reuse_map(kChainMap, (*c)->slots.get()));
    const int32_t v = slot;
    KAGAMI_TRY(obj.set_map_initial_value(kChainSlotMap, &v, sizeof(v)));
  }
  return slot;
}

Result<ProgramInfo> Manager::load_locked(const LoadRequest& req) {
  // A leading '_' is reserved for the manager's own pins (_xdp_chain).
  static const std::regex kName("[a-z0-9-][a-z0-9_-]{0,31}");
  if (!std::regex_match(req.name, kName))
    return make_error("invalid name '{}': use 1-32 of [a-z0-9_-], not starting with '_'", req.name);
  if (entries_.count(req.name)) return make_error("a program named {} is already loaded", req.name);
  if (req.attach.empty()) return make_error("no attach point given");
  KAGAMI_TRY(bpf::check_privileges());
  std::string label, sha;
  auto obj = open_trusted(req, &label, &sha);
  if (!obj) return obj.error();

  // Everything that can be checked without touching the kernel, first.
  std::vector<std::string> progs;
  for (const auto& p : req.attach) {
    auto d = pick_program(*obj, p);
    if (!d) return d.error();
    KAGAMI_TRY(check_target(p, *obj));
    if (p.kind == AttachPoint::Kind::Xdp) {
      if (chain_aware(*obj))
        for (size_t i = 0; i < progs.size(); i++)
          if (req.attach[i].kind == AttachPoint::Kind::Xdp)
            return make_error("a chain-aware object attaches to one XDP interface only");
    }
    progs.push_back(d->name);
  }
  for (size_t i = 0; i < req.attach.size(); i++) KAGAMI_TRY(prepare(*obj, req.attach[i], progs[i]));

  Undo undo;
  std::vector<int> slots(req.attach.size(), -1);
  for (size_t i = 0; i < req.attach.size(); i++)
    if (req.attach[i].kind == AttachPoint::Kind::Xdp) {
      auto s = prepare_xdp(*obj, req.attach[i], -1, undo);
      if (!s) return s.error();
      slots[i] = *s;
    }
  KAGAMI_TRY(obj->load());

  Entry e;
  e.name = req.name;
  e.label = label;
  e.source = req.source.path.empty() ? "bytes:" + label : req.source.path;
  e.sha256 = sha;
  e.builtin = req.builtin;
  e.loaded_at = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  for (const auto& d : obj->programs()) {
    auto fd = bpf::dup_fd(obj->prog_fd(d.name));
    if (!fd) return fd.error();
    e.progs.emplace(d.name, std::move(*fd));
  }
  for (const auto& m : obj->maps()) {
    auto fd = bpf::dup_fd(obj->map_fd(m.name));
    if (!fd) return fd.error();
    e.maps.emplace(m.name, std::move(*fd));
  }
  for (size_t i = 0; i < req.attach.size(); i++) {
    auto a = attach_one(*obj, req.attach[i], progs[i], slots[i], e, undo);
    if (!a) return a.error();
    e.atts.push_back(std::move(*a));
  }
  KAGAMI_TRY(pin_all(e, undo));
  // Only now does the entry join entries_: an undo step that runs before
  // (maybe_destroy_chain) must not count it as a chain member.
  const std::string name = req.name;
  undo.commit();
  entries_.emplace(name, std::move(e));
  spdlog::info("loaded {} ({}, sha256 {})", name, label, sha.substr(0, 12));
  return info(entries_.at(name));
}

Result<void> Manager::pin_all(Entry& e, Undo& undo) {
  const std::string d = dir(e.name);
  KAGAMI_TRY(bpf::make_dir(d));
  std::vector<std::string> made;  // undone in reverse: files first, then dirs
  auto cleanup = [&made, d] {
    for (auto it = made.rbegin(); it != made.rend(); ++it) (void)bpf::remove_path(*it);
    (void)bpf::remove_path(d);
  };
  auto r = [&]() -> Result<void> {
    for (const char* sub : {"/maps", "/progs", "/links"}) {
      KAGAMI_TRY(bpf::make_dir(d + sub));
      made.push_back(d + sub);
    }
    for (const auto& [n, fd] : e.maps) {
      KAGAMI_TRY(bpf::obj_pin(fd.get(), d + "/maps/" + pin_name(n)));
      made.push_back(d + "/maps/" + pin_name(n));
    }
    for (const auto& [n, fd] : e.progs) {
      KAGAMI_TRY(bpf::obj_pin(fd.get(), d + "/progs/" + pin_name(n)));
      made.push_back(d + "/progs/" + pin_name(n));
    }
    for (size_t i = 0; i < e.atts.size(); i++) {
      auto& a = e.atts[i];
      if (a.mech != Mech::Link) continue;
      a.link_pin = "links/" + std::to_string(i);
      KAGAMI_TRY(bpf::obj_pin(a.link.get(), d + "/" + a.link_pin));
      made.push_back(d + "/" + a.link_pin);
    }
    auto meta = bpf::map_create(BPF_MAP_TYPE_ARRAY, "kagami_meta", 4, kMetaSize, 1);
    if (!meta) return meta.error();
    e.meta = std::move(*meta);
    KAGAMI_TRY(write_meta(e));
    KAGAMI_TRY(bpf::obj_pin(e.meta.get(), d + "/" + kMetaPin));
    made.push_back(d + "/" + kMetaPin);
    return ok();
  }();
  if (!r) {
    cleanup();
    return r.error().with_context("pinning under " + d);
  }
  undo.add(cleanup);
  return ok();
}

json Manager::meta_json(const Entry& e) const {
  json atts = json::array();
  for (const auto& a : e.atts) {
    json j{{"point", a.point.to_string()}, {"program", a.program}, {"mechanism", a.mechanism}};
    if (a.mech == Mech::Link) j["link"] = a.link_pin;
    if (a.mech == Mech::Tc)
      j["tc"] = {{"ifindex", a.tc.ifindex}, {"egress", a.tc.egress}, {"handle", a.tc.handle},
                 {"priority", a.tc.priority}};
    if (a.mech == Mech::XdpChain) j["xdp_chain"] = {{"ifname", a.point.target}, {"slot", a.chain_slot}};
    atts.push_back(std::move(j));
  }
  json maps = json::object(), progs = json::object();
  for (const auto& [n, fd] : e.maps) maps[n] = "maps/" + pin_name(n);
  for (const auto& [n, fd] : e.progs) progs[n] = "progs/" + pin_name(n);
  return json{{"version", 1},
              {"maps", maps},
              {"progs", progs},
              {"name", e.name},
              {"label", e.label},
              {"source", e.source},
              {"sha256", e.sha256},
              {"builtin", e.builtin},
              {"generation", e.generation},
              {"origin", {{"pid", getpid()}, {"loaded_at", e.loaded_at}}},
              {"attach", atts}};
}

Result<void> Manager::write_meta(Entry& e) {
  std::string s = meta_json(e).dump();
  if (s.size() + 1 > kMetaSize) return make_error("metadata of {} exceeds {} bytes", e.name, kMetaSize);
  std::vector<char> buf(kMetaSize, 0);
  std::copy(s.begin(), s.end(), buf.begin());
  const uint32_t key = 0;
  KAGAMI_TRY_CTX(bpf::map_update(e.meta.get(), &key, buf.data()), "writing meta.json");
  return ok();
}

Result<Entry> Manager::adopt_one(const std::string& name) {
  const std::string d = dir(name);
  auto meta = bpf::obj_get(d + "/" + kMetaPin);
  if (!meta) return meta.error();
  std::vector<char> buf(kMetaSize, 0);
  const uint32_t key = 0;
  KAGAMI_TRY_CTX(bpf::map_lookup(meta->get(), &key, buf.data()), "reading meta.json");
  buf.back() = 0;
  json j;
  try {
    j = json::parse(buf.data());
  } catch (const std::exception& ex) {
    return make_error("{}/meta.json: {}", d, ex.what());
  }
  Entry e;
  e.meta = std::move(*meta);
  e.adopted = true;
  try {
    e.name = j.at("name").get<std::string>();
    e.label = j.at("label").get<std::string>();
    e.source = j.at("source").get<std::string>();
    e.sha256 = j.at("sha256").get<std::string>();
    e.builtin = j.at("builtin").get<bool>();
    e.generation = j.at("generation").get<uint32_t>();
    e.loaded_at = j.at("origin").at("loaded_at").get<int64_t>();
    for (const auto& ja : j.at("attach")) {
      Attachment a;
      auto p = AttachPoint::parse(ja.at("point").get<std::string>());
      if (!p) return p.error();
      a.point = *p;
      a.program = ja.at("program").get<std::string>();
      a.mechanism = ja.at("mechanism").get<std::string>();
      if (ja.contains("link")) {
        a.mech = Mech::Link;
        a.link_pin = ja["link"].get<std::string>();
        auto l = bpf::obj_get(d + "/" + a.link_pin);
        if (!l) return l.error();
        a.link = std::move(*l);
      } else if (ja.contains("tc")) {
        a.mech = Mech::Tc;
        const auto& t = ja["tc"];
        a.tc = bpf::TcFilter{t.at("ifindex").get<int>(), t.at("egress").get<bool>(),
                             t.at("handle").get<uint32_t>(), t.at("priority").get<uint32_t>()};
      } else if (ja.contains("xdp_chain")) {
        a.mech = Mech::XdpChain;
        a.chain_slot = ja["xdp_chain"].at("slot").get<int>();
      }
      e.atts.push_back(std::move(a));
    }
  } catch (const std::exception& ex) {
    return make_error("{}/meta.json: {}", d, ex.what());
  }
  try {
    for (const auto& [n, pin] : j.at("progs").items()) {
      auto fd = bpf::obj_get(d + "/" + pin.get<std::string>());
      if (!fd) return fd.error();
      e.progs.emplace(n, std::move(*fd));
    }
    for (const auto& [n, pin] : j.at("maps").items()) {
      auto fd = bpf::obj_get(d + "/" + pin.get<std::string>());
      if (!fd) return fd.error();
      e.maps.emplace(n, std::move(*fd));
    }
  } catch (const std::exception& ex) {
    return make_error("{}/meta: {}", d, ex.what());
  }
  return e;
}

Result<void> Manager::adopt_all() {
  for (const auto& name : bpf::list_dir(opts_.pin_root)) {
    if (name.empty() || name[0] == '.') continue;
    if (!bpf::path_exists(dir(name) + "/" + kMetaPin)) continue;  // not ours
    auto e = adopt_one(name);
    if (!e) {
      spdlog::warn("not adopting {}: {}", dir(name), e.error().message);
      continue;
    }
    spdlog::info("adopted {} (generation {})", name, e->generation);
    entries_.emplace(name, std::move(*e));
  }
  return ok();
}

void Manager::detach(Entry& e, Attachment& a) {
  switch (a.mech) {
    case Mech::Link:
      (void)bpf::link_detach(a.link.get());
      if (!a.link_pin.empty()) (void)bpf::remove_path(dir(e.name) + "/" + a.link_pin);
      a.link.reset();
      break;
    case Mech::Tc: {
      // Only our filter: if someone replaced the program at that priority,
      // it is theirs now.
      auto id = bpf::tc_query(a.tc);
      auto prog = e.progs.find(a.program);
      uint32_t ours = 0;
      if (prog != e.progs.end())
        if (auto pi = bpf::prog_info(prog->second.get())) ours = pi->id;
      if (id && *id != 0 && *id == ours) (void)bpf::tc_detach(a.tc);
      else if (id && *id != 0)
        spdlog::warn("{}: tc filter prio {} now runs prog {} (not ours), left in place", e.name,
                     a.tc.priority, *id);
      break;
    }
    case Mech::XdpChain: {
      auto it = chains_.find(a.point.target);
      if (it != chains_.end()) {
        const uint32_t key = static_cast<uint32_t>(a.chain_slot);
        (void)bpf::map_delete(it->second.slots.get(), &key);
      }
      break;
    }
  }
}

Result<void> Manager::unload_locked(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return make_error("no program named {}", name);
  Entry& e = it->second;
  std::vector<std::string> chain_ifs;
  for (auto& a : e.atts) {
    detach(e, a);
    if (a.mech == Mech::XdpChain) chain_ifs.push_back(a.point.target);
  }
  const std::string d = dir(name);
  for (const auto& [n, fd] : e.maps) (void)bpf::remove_path(d + "/maps/" + pin_name(n));
  for (const auto& [n, fd] : e.progs) (void)bpf::remove_path(d + "/progs/" + pin_name(n));
  (void)bpf::remove_path(d + "/" + kMetaPin);
  for (const char* sub : {"/maps", "/progs", "/links"}) (void)bpf::remove_path(d + sub);
  (void)bpf::remove_path(d);
  if (bpf::path_exists(d)) spdlog::warn("{} still holds pins this manager did not create; left in place", d);
  entries_.erase(it);
  for (const auto& i : chain_ifs) maybe_destroy_chain(i);
  spdlog::info("unloaded {}", name);
  return ok();
}

Result<ProgramInfo> Manager::replace_locked(const std::string& name, const LoadRequest& req) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return make_error("no program named {}", name);
  Entry& e = it->second;
  KAGAMI_TRY(bpf::check_privileges());
  std::vector<AttachPoint> points;
  for (const auto& a : e.atts) points.push_back(a.point);
  if (!req.attach.empty() && req.attach != points)
    return make_error("replace keeps the attach points ({} given, {} running); unload and load to move it",
                      req.attach.size(), points.size());
  std::string label, sha;
  auto obj = open_trusted(req, &label, &sha);
  if (!obj) return obj.error();

  std::vector<std::string> progs;
  for (const auto& p : points) {
    auto d = pick_program(*obj, p);
    if (!d) return d.error();
    KAGAMI_TRY(check_target(p, *obj));
    progs.push_back(d->name);
  }
  for (size_t i = 0; i < points.size(); i++) KAGAMI_TRY(prepare(*obj, points[i], progs[i]));

  // Map plan: reuse what has the same layout, migrate or refuse the rest.
  std::set<std::string> reused;
  std::vector<std::pair<std::string, bpf::KMapInfo>> extend;  // copied after load
  for (const auto& m : obj->maps()) {
    if (m.internal || m.name == kChainMap) continue;
    auto old = e.maps.find(m.name);
    if (old == e.maps.end()) continue;
    auto oi = bpf::map_info(old->second.get());
    if (!oi) return oi.error().with_context("map " + m.name);
    const bool same = oi->map_type == m.map_type && oi->key_size == m.key_size &&
                      oi->value_size == m.value_size && oi->max_entries == m.max_entries &&
                      oi->flags == m.flags;
    if (same) {
      KAGAMI_TRY(obj->reuse_map(m.name, old->second.get()));
      reused.insert(m.name);
      continue;
    }
    MapMigration::Rule rule = MapMigration::Rule::Refuse;
    for (const auto& mm : req.migrations)
      if (mm.map == m.name) rule = mm.rule;
    if (rule == MapMigration::Rule::Refuse)
      return make_error("map {} changed layout ({} -> {}); declare a migration (reset or extend) to replace it",
                        m.name, layout(*oi), layout(m));
    if (rule == MapMigration::Rule::Extend) {
      if (oi->map_type != m.map_type || oi->key_size != m.key_size || oi->value_size > m.value_size)
        return make_error("map {}: extend needs the same type and key and a value at least as large "
                          "({} -> {})", m.name, layout(*oi), layout(m));
      extend.emplace_back(m.name, *oi);
    }
  }

  Undo undo;
  std::vector<int> slots(points.size(), -1);
  for (size_t i = 0; i < points.size(); i++)
    if (e.atts[i].mech == Mech::XdpChain) {
      auto s = prepare_xdp(*obj, points[i], e.atts[i].chain_slot, undo);
      if (!s) return s.error();
      slots[i] = *s;
    } else if (points[i].kind == AttachPoint::Kind::Xdp && chain_aware(*obj)) {
      return make_error("xdp:{}: the running version is attached directly; a chain-aware version needs "
                        "unload and load", points[i].target);
    }
  KAGAMI_TRY(obj->load());
  for (const auto& [mname, oi] : extend) {
    auto ni = bpf::map_info(obj->map_fd(mname));
    if (!ni) return ni.error();
    auto n = bpf::copy_map(e.maps.at(mname).get(), oi, obj->map_fd(mname), *ni, mname);
    if (!n) return n.error();
    spdlog::info("{}: map {} extended ({} entries copied)", name, mname, *n);
  }

  // Swap every hook. Each step registers its inverse, so a failure part-way
  // puts the old version back on the hooks already switched.
  std::vector<Fd> new_links(points.size());
  for (size_t i = 0; i < points.size(); i++) {
    Attachment& a = e.atts[i];
    const int nfd = obj->prog_fd(progs[i]);
    const int ofd = e.progs.count(a.program) ? e.progs.at(a.program).get() : -1;
    if (ofd < 0) return make_error("internal: running program {} has no fd", a.program);
    const auto ctx = "swapping " + a.point.to_string();
    switch (a.mech) {
      case Mech::Link: {
        const bool same_map = a.point.kind != AttachPoint::Kind::SkMsg || reused.count(a.point.target);
        if (link_updatable(a.point.kind) && same_map) {
          KAGAMI_TRY_CTX(bpf::link_update(a.link.get(), nfd, ofd), ctx);
          const int lfd = a.link.get();
          undo.add([lfd, ofd, nfd] { (void)bpf::link_update(lfd, ofd, nfd); });
        } else {
          // No in-place update for this hook: the new version attaches next
          // to the old one, which is detached at commit (a short overlap in
          // which both run, rather than a gap in which neither does).
          auto na = attach_one(*obj, a.point, progs[i], -1, e, undo);
          if (!na) return na.error().with_context(ctx);
          new_links[i] = std::move(na->link);
        }
        break;
      }
      case Mech::Tc: {
        auto f = bpf::tc_attach(nfd, a.tc.ifindex, a.tc.egress, a.tc.priority, true);
        if (!f) return f.error().with_context(ctx);
        const bpf::TcFilter tf = a.tc;
        undo.add([tf, ofd] { (void)bpf::tc_attach(ofd, tf.ifindex, tf.egress, tf.priority, true); });
        break;
      }
      case Mech::XdpChain: {
        auto c = chains_.find(a.point.target);
        if (c == chains_.end()) return make_error("internal: no xdp chain on {}", a.point.target);
        const uint32_t key = static_cast<uint32_t>(a.chain_slot);
        const uint32_t val = static_cast<uint32_t>(nfd);
        KAGAMI_TRY_CTX(bpf::map_update(c->second.slots.get(), &key, &val), ctx);
        const int sfd = c->second.slots.get();
        const uint32_t oval = static_cast<uint32_t>(ofd);
        undo.add([sfd, key, oval] { (void)bpf::map_update(sfd, &key, &oval); });
        break;
      }
    }
  }

  // Collect the new fds before committing, so nothing below can fail
  // half-way through the kernel state.
  std::map<std::string, Fd> nprogs, nmaps;
  for (const auto& d : obj->programs()) {
    auto fd = bpf::dup_fd(obj->prog_fd(d.name));
    if (!fd) return fd.error();
    nprogs.emplace(d.name, std::move(*fd));
  }
  for (const auto& m : obj->maps()) {
    auto fd = bpf::dup_fd(obj->map_fd(m.name));
    if (!fd) return fd.error();
    nmaps.emplace(m.name, std::move(*fd));
  }
  undo.commit();

  // Commit: repin. The hooks already run the new version; a pin failure
  // here is reported but cannot un-run it.
  const std::string d = dir(name);
  std::vector<std::string> pin_errors;
  for (const auto& [n, fd] : e.maps)
    if (!reused.count(n)) (void)bpf::remove_path(d + "/maps/" + pin_name(n));
  for (const auto& [n, fd] : nmaps)
    if (!reused.count(n))
      if (auto r = bpf::obj_pin(fd.get(), d + "/maps/" + pin_name(n)); !r) pin_errors.push_back(r.error().message);
  for (const auto& [n, fd] : e.progs) (void)bpf::remove_path(d + "/progs/" + pin_name(n));
  for (const auto& [n, fd] : nprogs)
    if (auto r = bpf::obj_pin(fd.get(), d + "/progs/" + pin_name(n)); !r) pin_errors.push_back(r.error().message);
  for (size_t i = 0; i < points.size(); i++) {
    Attachment& a = e.atts[i];
    a.program = progs[i];
    if (!new_links[i].valid()) continue;
    (void)bpf::link_detach(a.link.get());
    (void)bpf::remove_path(d + "/" + a.link_pin);
    a.link = std::move(new_links[i]);
    if (auto r = bpf::obj_pin(a.link.get(), d + "/" + a.link_pin); !r) pin_errors.push_back(r.error().message);
  }
  e.progs = std::move(nprogs);
  e.maps = std::move(nmaps);
  e.generation++;
  e.label = label;
  e.sha256 = sha;
  e.source = req.source.path.empty() ? "bytes:" + label : req.source.path;
  if (auto r = write_meta(e); !r) pin_errors.push_back(r.error().message);
  for (const auto& pe : pin_errors) spdlog::error("replace {}: {}", name, pe);
  spdlog::info("replaced {} -> generation {} ({})", name, e.generation, label);
  if (!pin_errors.empty())
    return make_error("replaced (generation {}) but pins are incomplete: {}", e.generation, pin_errors.front());
  return info(e);
}

ProgramInfo Manager::info(const Entry& e) const {
  ProgramInfo pi;
  pi.name = e.name;
  pi.label = e.label;
  pi.sha256 = e.sha256;
  pi.builtin = e.builtin;
  pi.adopted = e.adopted;
  pi.generation = e.generation;
  for (const auto& [n, fd] : e.progs) {
    ProgInfo p;
    p.name = n;
    if (auto k = bpf::prog_info(fd.get())) {
      p.id = k->id;
      p.type = k->type;
      p.run_cnt = k->run_cnt;
      p.run_time_ns = k->run_time_ns;
    }
    pi.progs.push_back(std::move(p));
  }
  for (const auto& [n, fd] : e.maps) {
    MapInfo m;
    m.name = n;
    if (auto k = bpf::map_info(fd.get())) {
      m.id = k->id;
      m.type = k->type;
      m.key_size = k->key_size;
      m.value_size = k->value_size;
      m.max_entries = k->max_entries;
    }
    pi.maps.push_back(std::move(m));
  }
  for (const auto& a : e.atts) pi.attachments.push_back(AttachmentInfo{a.point, a.program, a.mechanism});
  std::stable_sort(pi.attachments.begin(), pi.attachments.end(),
                   [](const AttachmentInfo& x, const AttachmentInfo& y) { return x.point.order < y.point.order; });
  return pi;
}

}  // namespace

Result<std::unique_ptr<ProgramManager>> ProgramManager::create(ManagerOptions opts) {
  if (opts.pin_root.empty() || opts.pin_root[0] != '/')
    return make_error("pin root '{}' must be an absolute path", opts.pin_root);
  while (opts.pin_root.size() > 1 && opts.pin_root.back() == '/') opts.pin_root.pop_back();
  KAGAMI_TRY(bpf::check_privileges());
  auto m = std::make_unique<Manager>(std::move(opts));
  KAGAMI_TRY(m->init());
  return std::unique_ptr<ProgramManager>(std::move(m));
}

}  // namespace kagami::core
