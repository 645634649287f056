// The concrete ProgramManager (docs/program-manager.md): create/init, load,
// unload and listings. Every kernel call goes through src/bpf; the parts:
// pm_hooks.cc (hook table), pm_chain.cc (XDP chain), pm_pins.cc (pins,
// journal, adoption, crash recovery), pm_replace.cc (replace).
#include "core/program_manager.h"

#include <linux/bpf.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/names.h"
#include "core/crash_point.h"
#include "core/pm_internal.h"

namespace kagami::core {
namespace pm {

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

namespace {

void add_prog(ProgramInfo& pi, const std::string& n, int fd) {
  ProgInfo p;
  p.name = n;
  if (auto k = bpf::prog_info(fd)) {
    p.id = k->id;
    p.type = k->type;
    p.run_cnt = k->run_cnt;
    p.run_time_ns = k->run_time_ns;
  }
  pi.progs.push_back(std::move(p));
}

void add_map(ProgramInfo& pi, const std::string& n, int fd) {
  MapInfo m;
  m.name = n;
  if (auto k = bpf::map_info(fd)) {
    m.id = k->id;
    m.type = k->type;
    m.key_size = k->key_size;
    m.value_size = k->value_size;
    m.max_entries = k->max_entries;
  }
  pi.maps.push_back(std::move(m));
}

ProgramInfo info_of(const Listed& l) {
  ProgramInfo pi;
  pi.name = l.name;
  pi.label = l.label;
  pi.sha256 = l.sha256;
  pi.builtin = l.builtin;
  pi.adopted = l.adopted;
  pi.generation = l.generation;
  for (const auto& [n, fd] : l.progs) add_prog(pi, n, fd->get());
  for (const auto& [n, fd] : l.maps) add_map(pi, n, fd->get());
  pi.attachments = l.attachments;
  return pi;
}

}  // namespace

// Mutations hold mu_ for as long as they run; every change ends with a new
// listing, which readers take without mu_.
Result<ProgramInfo> Manager::load(const LoadRequest& req) {
  std::lock_guard<std::mutex> lk(mu_);
  auto r = load_locked(req);
  publish_locked();
  if (!r) return r.error().with_context("load " + req.name);
  return r;
}
Result<ProgramInfo> Manager::replace(const std::string& name, const LoadRequest& req) {
  std::lock_guard<std::mutex> lk(mu_);
  auto r = replace_locked(name, req);
  publish_locked();
  if (!r) return r.error().with_context("replace " + name);
  return r;
}
Result<void> Manager::unload(const std::string& name) {
  std::lock_guard<std::mutex> lk(mu_);
  auto r = unload_locked(name);
  publish_locked();
  if (!r) return r.error().with_context("unload " + name);
  return r;
}

void Manager::publish_locked() {
  refresh_chain_tables();
  auto l = std::make_shared<Listing>();
  for (const auto& [n, e] : entries_) {
    Listed x;
    x.name = e.name;
    x.label = e.label;
    x.sha256 = e.sha256;
    x.builtin = e.builtin;
    x.adopted = e.adopted;
    x.generation = e.generation;
    auto share = [](const std::map<std::string, Fd>& fds, auto& out) {
      for (const auto& [fn, fd] : fds)
        if (auto d = bpf::dup_fd(fd.get())) out.emplace_back(fn, std::make_shared<Fd>(std::move(*d)));
    };
    share(e.progs, x.progs);
    share(e.maps, x.maps);
    for (const auto& a : e.atts) x.attachments.push_back(AttachmentInfo{a.point, a.program, a.mechanism});
    std::stable_sort(x.attachments.begin(), x.attachments.end(),
                     [](const AttachmentInfo& p, const AttachmentInfo& q) { return p.point.order < q.point.order; });
    l->emplace(n, std::move(x));
  }
  std::lock_guard<std::mutex> lk(listing_mu_);
  listing_ = std::move(l);
}

std::shared_ptr<const Listing> Manager::listing() const {
  std::lock_guard<std::mutex> lk(listing_mu_);
  return listing_;
}

std::vector<ProgramInfo> Manager::list() const {
  std::vector<ProgramInfo> out;
  for (const auto& [n, l] : *listing()) out.push_back(info_of(l));
  return out;
}
Result<ProgramInfo> Manager::get(const std::string& name) const {
  auto snap = listing();
  auto it = snap->find(name);
  if (it == snap->end()) return make_error("no program named {}", name);
  return info_of(it->second);
}
Result<Fd> Manager::map_fd(const std::string& name, const std::string& map) const {
  auto snap = listing();
  auto it = snap->find(name);
  if (it == snap->end()) return make_error("no program named {}", name);
  for (const auto& [n, fd] : it->second.maps)
    if (n == map) return bpf::dup_fd(fd->get());
  return make_error("program {} has no map {}", name, map);
}
// Written only by init(), before the manager is shared: no lock.
std::vector<std::string> Manager::adoption_errors() const { return adoption_errors_; }

Result<std::vector<StatsSample>> Manager::sample_stats(std::chrono::milliseconds window) const {
  auto snapshot = [this] {
    std::map<uint32_t, StatsSample> out;
    for (const auto& p : list())
      for (const auto& g : p.progs) out[g.id] = StatsSample{p.name, g.name, g.id, g.run_cnt, g.run_time_ns};
    return out;
  };
  // Counters only move while someone holds stats on; with Always they are
  // on already, otherwise this fd turns them on for the window.
  Fd st;
  if (opts_.stats != StatsMode::Always) {
    auto s = bpf::enable_stats();
    if (!s) return s.error().with_context("sampling BPF stats");
    st = std::move(*s);
  }
  const auto before = snapshot();
  std::this_thread::sleep_for(window);
  auto after = snapshot();
  st.reset();
  std::vector<StatsSample> out;
  for (auto& [id, a] : after) {
    auto b = before.find(id);
    if (b != before.end()) {
      a.run_cnt -= std::min(a.run_cnt, b->second.run_cnt);
      a.run_time_ns -= std::min(a.run_time_ns, b->second.run_time_ns);
    }
    out.push_back(a);
  }
  return out;
}

Result<void> Manager::init() {
  KAGAMI_TRY_CTX(bpf::ensure_bpffs(opts_.pin_root), "pin root");
  if (opts_.stats == StatsMode::Always) {
    auto st = bpf::enable_stats();
    if (st) {
      stats_ = std::move(*st);
    } else if (!bpf::stats_enabled_sysctl()) {
      spdlog::warn("BPF run-time stats unavailable ({}); run_cnt/run_time_ns stay 0 unless "
                   "sysctl kernel.bpf_stats_enabled=1", st.error().message);
    }
  }
  KAGAMI_TRY(adopt_chains());
  KAGAMI_TRY(adopt_all());
  publish_locked();
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
  *sha = names::sha256_hex(*bytes);
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

Result<void> Manager::share_maps(bpf::Object& obj, const std::string& owner) const {
  auto it = entries_.find(owner);
  if (it == entries_.end())
    return make_error("share_maps_with: no program named {} is loaded (load it first)", owner);
  size_t shared = 0;
  for (const auto& m : obj.maps()) {
    if (m.internal || m.name == kChainMap) continue;
    auto fd = it->second.maps.find(m.name);
    if (fd == it->second.maps.end()) continue;  // a map the owner does not have stays the object's own
    auto info = bpf::map_info(fd->second.get());
    if (!info) return info.error().with_context("share_maps_with " + owner);
    if (info->map_type != m.map_type || info->key_size != m.key_size || info->value_size != m.value_size ||
        info->max_entries != m.max_entries)
      return make_error("share_maps_with {}: map {} differs ({} {}/{} x{} there, {} {}/{} x{} here)", owner, m.name,
                        info->type, info->key_size, info->value_size, info->max_entries, m.type, m.key_size,
                        m.value_size, m.max_entries);
    KAGAMI_TRY_CTX(obj.reuse_map(m.name, fd->second.get()), "share_maps_with " + owner);
    ++shared;
  }
  if (shared == 0) return make_error("share_maps_with {}: the two objects have no map in common", owner);
  return ok();
}

Result<ProgramInfo> Manager::load_locked(const LoadRequest& req) {
  KAGAMI_TRY(names::check_program_name(req.name));
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
    KAGAMI_TRY(hook_row(p.kind).check_target(p, *obj));
    if (p.kind == AttachPoint::Kind::Xdp) {
      if (chain_aware(*obj))
        for (size_t i = 0; i < progs.size(); i++)
          if (req.attach[i].kind == AttachPoint::Kind::Xdp)
            return make_error("a chain-aware object attaches to one XDP interface only");
    }
    progs.push_back(d->name);
  }
  for (size_t i = 0; i < req.attach.size(); i++)
    if (auto prep = hook_row(req.attach[i].kind).prepare) KAGAMI_TRY(prep(*obj, req.attach[i], progs[i]));
  if (!req.share_maps_with.empty()) KAGAMI_TRY(share_maps(*obj, req.share_maps_with));

  Undo undo;
  std::vector<int> slots(req.attach.size(), -1);
  for (size_t i = 0; i < req.attach.size(); i++)
    if (req.attach[i].kind == AttachPoint::Kind::Xdp) {
      auto s = prepare_xdp(*obj, req.attach[i], -1, undo);
      if (!s) return s.error();
      slots[i] = *s;
    }
  KAGAMI_TRY(obj->load());

  auto e = std::make_shared<Entry>();
  e->name = req.name;
  e->label = label;
  e->source = req.source.path.empty() ? "bytes:" + label : req.source.path;
  e->sha256 = sha;
  e->builtin = req.builtin;
  e->loaded_at = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch()).count();
  for (const auto& d : obj->programs()) {
    auto pfd = obj->prog_fd(d.name);
    if (!pfd) return pfd.error();
    auto fd = bpf::dup_fd(*pfd);
    if (!fd) return fd.error();
    e->progs.emplace(d.name, std::move(*fd));
  }
  for (const auto& m : obj->maps()) {
    auto mfd = obj->map_fd(m.name);
    if (!mfd) return mfd.error();
    auto fd = bpf::dup_fd(*mfd);
    if (!fd) return fd.error();
    e->maps.emplace(m.name, std::move(*fd));
  }
  // Plan every attachment before the first kernel change, so the record
  // written next names each hook this load may touch (crash recovery).
  for (size_t i = 0; i < req.attach.size(); i++) {
    Attachment a;
    a.point = req.attach[i];
    a.program = progs[i];
    if (slots[i] >= 0) {
      a.mech = Mech::XdpChain;
      a.chain_slot = slots[i];
      a.mechanism = fmt::format("xdp-chain[{}]", slots[i]);
    } else if (hook_row(a.point.kind).pin == Mech::Tc) {
      a.mech = Mech::Tc;
      a.tc = bpf::TcFilter{static_cast<int>(if_nametoindex(a.point.target.c_str())), a.point.option == "egress",
                           1, static_cast<uint32_t>(a.point.order)};
      a.mechanism = fmt::format("tc-prio:{}", a.point.order);
    } else {
      a.mech = Mech::Link;
      a.link_pin = "links/" + std::to_string(i);
    }
    e->atts.push_back(std::move(a));
  }
  // Journal: record (state loading), maps and programs, then each hook
  // (links pinned as they attach), then state complete.
  KAGAMI_TRY(begin_entry(*e, undo));
  KAGAMI_TRY(pin_objects(*e));
  for (auto& a : e->atts) KAGAMI_TRY(attach_one(*obj, a, *e, undo));
  e->state = kComplete;
  KAGAMI_TRY(write_meta(*e));
  // Only now does the entry join entries_: an undo step that runs before
  // (maybe_destroy_chain) must not count it as a chain member.
  const std::string name = req.name;
  undo.commit();
  entries_.emplace(name, std::move(*e));
  spdlog::info("loaded {} ({}, sha256 {})", name, label, sha.substr(0, 12));
  return info(entries_.at(name));
}

Result<void> Manager::unload_locked(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return make_error("no program named {}", name);
  Entry& e = it->second;
  // Journal: "unloading" first, the record removed last, so a restart after
  // a crash anywhere in between finishes the unload.
  e.state = kUnloading;
  KAGAMI_TRY(write_meta(e));
  std::vector<std::string> chain_ifs;
  for (auto& a : e.atts) {
    detach(e, a);
    if (a.mech == Mech::XdpChain) chain_ifs.push_back(a.point.target);
  }
  remove_entry_pins(e);
  const std::string d = dir(name);
  if (bpf::path_exists(d)) spdlog::warn("{} still holds pins this manager did not create; left in place", d);
  entries_.erase(it);
  for (const auto& i : chain_ifs) maybe_destroy_chain(i);
  spdlog::info("unloaded {}", name);
  return ok();
}

ProgramInfo Manager::info(const Entry& e) const {
  ProgramInfo pi;
  pi.name = e.name;
  pi.label = e.label;
  pi.sha256 = e.sha256;
  pi.builtin = e.builtin;
  pi.adopted = e.adopted;
  pi.generation = e.generation;
  for (const auto& [n, fd] : e.progs) add_prog(pi, n, fd.get());
  for (const auto& [n, fd] : e.maps) add_map(pi, n, fd.get());
  for (const auto& a : e.atts) pi.attachments.push_back(AttachmentInfo{a.point, a.program, a.mechanism});
  std::stable_sort(pi.attachments.begin(), pi.attachments.end(),
                   [](const AttachmentInfo& x, const AttachmentInfo& y) { return x.point.order < y.point.order; });
  return pi;
}

}  // namespace pm

Result<std::unique_ptr<ProgramManager>> ProgramManager::create(ManagerOptions opts) {
  if (opts.pin_root.empty() || opts.pin_root[0] != '/')
    return make_error("pin root '{}' must be an absolute path", opts.pin_root);
  while (opts.pin_root.size() > 1 && opts.pin_root.back() == '/') opts.pin_root.pop_back();
  KAGAMI_TRY(bpf::check_privileges());
  auto m = std::make_unique<pm::Manager>(std::move(opts));
  KAGAMI_TRY(m->init());
  return std::unique_ptr<ProgramManager>(std::move(m));
}

}  // namespace kagami::core
