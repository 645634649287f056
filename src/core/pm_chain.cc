// The per-interface XDP tail-call chain (docs/program-manager.md, "Several
// programs on one hook").
#include <linux/bpf.h>
#include <net/if.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "core/crash_point.h"
#include "core/pm_internal.h"
#include "xdp_chain_root.skel.h"

namespace kagami::core::pm {
namespace {

// A chain whose interface went away (and maybe came back under the same
// name with a new ifindex) has a defunct root link: drop it and its pins.
bool chain_alive(const Chain& c) {
  auto li = bpf::link_info(c.link.get());
  const int now = static_cast<int>(if_nametoindex(c.ifname.c_str()));
  return li && li->xdp_ifindex != 0 && static_cast<int>(li->xdp_ifindex) == now;
}

}  // namespace

bool Manager::chain_aware(const bpf::Object& obj) const {
  bool map = false, slot = false;
  for (const auto& m : obj.maps()) {
    if (m.name == kChainMap && m.map_type == BPF_MAP_TYPE_PROG_ARRAY && m.max_entries == kChainSlots) map = true;
    if (m.name == kChainSlotMap) slot = true;
  }
  return map && slot;
}

void Manager::remove_chain_pins(const std::string& ifname) {
  const std::string d = chain_dir(ifname);
  // The link first: without it the root no longer runs, so a crash between
  // these leaves only inert pins, which adoption removes.
  for (const char* f : {"/link", "/root", "/slots", "/next"}) {
    (void)bpf::remove_path(d + f);
    crash_point("unpin chain");
  }
  (void)bpf::remove_path(d);
  (void)bpf::remove_path(opts_.pin_root + "/" + kChainDir);  // only if empty
}

Result<Chain*> Manager::get_or_create_chain(const AttachPoint& p, Undo& undo) {
  auto it = chains_.find(p.target);
  if (it != chains_.end() && !chain_alive(it->second)) {
    spdlog::warn("xdp chain on {} is stale (interface gone or re-created); rebuilding it", p.target);
    remove_chain_pins(p.target);
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
  auto rfd = obj->prog_fd("kagami_xdp_root");
  if (!rfd) return rfd.error();
  auto sfd = obj->map_fd(kChainMap);
  if (!sfd) return sfd.error();
  auto nfd = obj->map_fd(kChainNextMap);
  if (!nfd) return nfd.error();
  auto root = bpf::dup_fd(*rfd);
  auto slots = bpf::dup_fd(*sfd);
  auto next = bpf::dup_fd(*nfd);
  if (!root) return root.error();
  if (!slots) return slots.error();
  if (!next) return next.error();
  const std::string d = chain_dir(p.target);
  KAGAMI_TRY(bpf::make_dir(opts_.pin_root + "/" + kChainDir));
  KAGAMI_TRY(bpf::make_dir(d));
  // Root and slots are pinned before the root attaches and the link is
  // pinned last: a crash at any point leaves either inert pins (no link:
  // nothing runs) or a complete chain, and adoption removes both when no
  // member uses them.
  auto pinned = [&]() -> Result<void> {
    KAGAMI_TRY(bpf::obj_pin(root->get(), d + "/root"));
    crash_point("pin chain root");
    KAGAMI_TRY(bpf::obj_pin(slots->get(), d + "/slots"));
    crash_point("pin chain slots");
    KAGAMI_TRY(bpf::obj_pin(next->get(), d + "/next"));
    return ok();
  }();
  if (!pinned) {
    remove_chain_pins(p.target);
    return pinned.error();
  }
  const auto mode = p.option == "native" ? bpf::XdpMode::Native
                    : p.option == "generic" ? bpf::XdpMode::Generic : bpf::XdpMode::Auto;
  auto l = bpf::attach_xdp(root->get(), ifindex, mode);
  if (!l) {
    remove_chain_pins(p.target);
    if (l.error().code == EBUSY || l.error().code == EEXIST) {
      auto id = bpf::xdp_query(ifindex);
      return make_error("xdp:{} already runs an XDP program (id {}) that this manager does not own",
                        p.target, id ? *id : 0);
    }
    return l.error().with_context("attaching XDP chain root to " + p.target);
  }
  crash_point("attach chain root");
  c.root = std::move(*root);
  c.slots = std::move(*slots);
  c.next = std::move(*next);
  c.link = std::move(l->link);
  c.native = l->native;
  if (auto r = bpf::obj_pin(c.link.get(), d + "/link"); !r) {
    (void)bpf::link_detach(c.link.get());
    remove_chain_pins(p.target);
    return r.error();
  }
  crash_point("pin chain link");
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
  crash_point("detach chain root");
  remove_chain_pins(ifname);
  chains_.erase(it);  // closing the last link fd detaches the root
  spdlog::info("xdp chain root removed from {}", ifname);
}

Result<void> Manager::set_chain_slot(const Attachment& a, int prog_fd, Undo* undo) {
  auto it = chains_.find(a.point.target);
  if (it == chains_.end()) return make_error("internal: no xdp chain on {}", a.point.target);
  if (a.chain_slot < 0) return make_error("internal: no xdp chain slot for {}", a.point.to_string());
  const uint32_t key = static_cast<uint32_t>(a.chain_slot);
  const uint32_t val = static_cast<uint32_t>(prog_fd);
  KAGAMI_TRY_CTX(bpf::map_update(it->second.slots.get(), &key, &val),
                 fmt::format("setting xdp chain slot {} on {}", key, a.point.target));
  crash_point("set chain slot");
  if (undo) {
    const int slots = it->second.slots.get();
    undo->add([slots, key] { (void)bpf::map_delete(slots, &key); });
  }
  return ok();
}

void Manager::refresh_chain_tables() {
  for (auto& [ifname, c] : chains_) {
    if (!c.next.valid()) continue;
    // Occupancy from the kernel itself: a lookup on a prog_array from user
    // space answers the program id of an occupied slot, ENOENT otherwise.
    bool occupied[kChainSlots] = {};
    for (uint32_t i = 0; i < static_cast<uint32_t>(kChainSlots); i++) {
      uint32_t id = 0;
      occupied[i] = static_cast<bool>(bpf::map_lookup(c.slots.get(), &i, &id));
    }
    uint32_t after = KAGAMI_XDP_CHAIN_NONE;  // what follows slot i, scanning down
    for (int i = kChainSlots - 1; i >= -1; i--) {
      const uint32_t key = static_cast<uint32_t>(i + 1);
      if (auto r = bpf::map_update(c.next.get(), &key, &after); !r)
        spdlog::warn("xdp chain on {}: next-slot table: {}", ifname, r.error().message);
      if (i >= 0 && occupied[i]) after = static_cast<uint32_t>(i + 1);
    }
  }
}

Result<void> Manager::adopt_chains() {
  const std::string base = opts_.pin_root + "/" + kChainDir;
  auto names = bpf::list_dir(base);
  if (!names) {
    if (names.error().code == ENOENT) return ok();
    return names.error().with_context("listing xdp chains");
  }
  for (const auto& ifname : *names) {
    const std::string d = base + "/" + ifname;
    Chain c;
    c.ifname = ifname;
    c.ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
    auto root = bpf::obj_get(d + "/root");
    auto slots = bpf::obj_get(d + "/slots");
    auto link = bpf::obj_get(d + "/link");
    if (!root || !slots || !link) {
      // Interrupted creation or removal: the link is pinned last and
      // unpinned first, so without all three nothing of it should run.
      spdlog::warn("xdp chain pins in {} incomplete (interrupted); removing them", d);
      if (link) (void)bpf::link_detach(link->get());
      remove_chain_pins(ifname);
      continue;
    }
    c.root = std::move(*root);
    c.slots = std::move(*slots);
    c.link = std::move(*link);
    // A chain pinned before the table existed has none: its members probe.
    if (auto next = bpf::obj_get(d + "/next")) c.next = std::move(*next);
    if (!chain_alive(c)) {
      spdlog::warn("xdp chain on {} is stale (interface gone); removing its pins", ifname);
      remove_chain_pins(ifname);
      continue;
    }
    chains_.emplace(ifname, std::move(c));
  }
  return ok();
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
    // The member reads the chain's "next slot" table, when both have one
    // (an object built against an older xdp_chain.h has no table: it probes).
    bool has_next = false;
    for (const auto& m : obj.maps()) has_next = has_next || m.name == kChainNextMap;
    if (has_next && (*c)->next.valid()) KAGAMI_TRY(obj.reuse_map(kChainNextMap, (*c)->next.get()));
    const int32_t v = slot;
    KAGAMI_TRY(obj.set_map_initial_value(kChainSlotMap, &v, sizeof(v)));
  }
  return slot;
}

}  // namespace kagami::core::pm
