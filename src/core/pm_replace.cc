// replace(): swap a running program for a new version, hook by hook, with
// map state carried over (docs/program-manager.md, "Replace").
#include <linux/bpf.h>

#include <set>

#include <spdlog/spdlog.h>

#include "core/crash_point.h"
#include "core/pm_internal.h"

namespace kagami::core::pm {

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
    KAGAMI_TRY(hook_row(p.kind).check_target(p, *obj));
    progs.push_back(d->name);
  }
  for (size_t i = 0; i < points.size(); i++)
    if (auto prep = hook_row(points[i].kind).prepare) KAGAMI_TRY(prep(*obj, points[i], progs[i]));

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
  // The chain's shared prog_array is reused by every chain-aware member.
  if (e.maps.count(kChainMap)) reused.insert(kChainMap);

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
    auto nfd = obj->map_fd(mname);
    if (!nfd) return nfd.error();
    auto ni = bpf::map_info(*nfd);
    if (!ni) return ni.error();
    auto n = bpf::copy_map(e.maps.at(mname).get(), oi, *nfd, *ni, mname);
    if (!n) return n.error();
    spdlog::info("{}: map {} extended ({} entries copied)", name, mname, *n);
  }

  // The new fds, collected before anything in the kernel changes.
  std::map<std::string, Fd> nprogs, nmaps;
  for (const auto& d : obj->programs()) {
    auto pfd = obj->prog_fd(d.name);
    if (!pfd) return pfd.error();
    auto fd = bpf::dup_fd(*pfd);
    if (!fd) return fd.error();
    nprogs.emplace(d.name, std::move(*fd));
  }
  for (const auto& m : obj->maps()) {
    auto mfd = obj->map_fd(m.name);
    if (!mfd) return mfd.error();
    auto fd = bpf::dup_fd(*mfd);
    if (!fd) return fd.error();
    nmaps.emplace(m.name, std::move(*fd));
  }
  std::vector<Swap> swaps(points.size());
  for (size_t i = 0; i < points.size(); i++) {
    const Attachment& a = e.atts[i];
    if (a.mech == Mech::XdpChain) swaps[i] = Swap::ChainSlot;
    else if (a.mech == Mech::Tc) swaps[i] = Swap::TcReplace;
    else {
      swaps[i] = hook_row(a.point.kind).swap;
      // A sockmap link can be updated only while the map stays the same.
      if ((a.point.kind == AttachPoint::Kind::SkMsg || a.point.kind == AttachPoint::Kind::SkSkb) &&
          !reused.count(a.point.target))
        swaps[i] = Swap::NewLink;
    }
  }

  // Journal: the record names the staged version (next/) before any pin or
  // hook changes; a crash from here until "committing" is rolled back at
  // adoption, from "committing" on it is finished.
  const std::string d = dir(name);
  json next{{"label", label},
            {"sha256", sha},
            {"source", req.source.path.empty() ? "bytes:" + label : req.source.path},
            {"progs", json::object()},
            {"maps", json::object()},
            {"programs", progs},
            {"links", json::object()}};
  for (const auto& [n, fd] : nprogs) next["progs"][n] = std::string(kNextDir) + "/progs/" + pin_name(n);
  for (const auto& [n, fd] : nmaps)
    next["maps"][n] = reused.count(n) ? "maps/" + pin_name(n) : std::string(kNextDir) + "/maps/" + pin_name(n);
  for (size_t i = 0; i < points.size(); i++)
    if (swaps[i] == Swap::NewLink) next["links"][std::to_string(i)] = std::string(kNextDir) + "/links/" + std::to_string(i);
  const json rec_before = meta_json(e);
  e.state = kReplacing;
  if (auto r = write_meta(e, &next); !r) {
    e.state = kComplete;
    return r.error();
  }
  // Undone last: the hooks are back on the old version by then.
  undo.add([this, name, next, rec_before] {
    json j = rec_before;
    j["next"] = next;
    rollback_replace(name, j);  // staged pins; hooks are already restored
    auto it2 = entries_.find(name);
    if (it2 == entries_.end()) return;
    it2->second.state = kComplete;
    (void)write_meta(it2->second);
  });
  for (const char* sub : {"/next", "/next/maps", "/next/progs", "/next/links"}) KAGAMI_TRY(bpf::make_dir(d + sub));
  for (const auto& [n, fd] : nmaps)
    if (!reused.count(n)) {
      KAGAMI_TRY_CTX(bpf::obj_pin(fd.get(), d + "/" + next["maps"][n].get<std::string>()), "staging");
      crash_point("stage map");
    }
  for (const auto& [n, fd] : nprogs) {
    KAGAMI_TRY_CTX(bpf::obj_pin(fd.get(), d + "/" + next["progs"][n].get<std::string>()), "staging");
    crash_point("stage prog");
  }

  // Swap every hook. Each step registers its inverse, so a failure part-way
  // puts the old version back on the hooks already switched.
  std::vector<Fd> new_links(points.size());
  for (size_t i = 0; i < points.size(); i++) {
    Attachment& a = e.atts[i];
    const int nfd = nprogs.at(progs[i]).get();
    const int ofd = e.progs.count(a.program) ? e.progs.at(a.program).get() : -1;
    if (ofd < 0) return make_error("internal: running program {} has no fd", a.program);
    const auto ctx = "swapping " + a.point.to_string();
    switch (swaps[i]) {
      case Swap::LinkUpdate: {
        KAGAMI_TRY_CTX(bpf::link_update(a.link.get(), nfd, ofd), ctx);
        crash_point("swap link");
        const int lfd = a.link.get();
        undo.add([lfd, ofd, nfd] { (void)bpf::link_update(lfd, ofd, nfd); });
        break;
      }
      case Swap::NewLink: {
        // No in-place update for this hook: the new version attaches next
        // to the old one, which is detached at commit (a short overlap in
        // which both run, rather than a gap in which neither does).
        auto nl = attach_new_link(*obj, a.point, progs[i], undo);
        if (!nl) return nl.error().with_context(ctx);
        const std::string pin = d + "/" + next["links"][std::to_string(i)].get<std::string>();
        KAGAMI_TRY_CTX(bpf::obj_pin(nl->get(), pin), ctx);
        crash_point("stage link");
        new_links[i] = std::move(*nl);
        break;
      }
      case Swap::TcReplace: {
        auto f = bpf::tc_attach(nfd, a.tc.ifindex, a.tc.egress, a.tc.priority, true);
        if (!f) return f.error().with_context(ctx);
        crash_point("swap tc");
        const bpf::TcFilter tf = a.tc;
        undo.add([tf, ofd] { (void)bpf::tc_attach(ofd, tf.ifindex, tf.egress, tf.priority, true); });
        break;
      }
      case Swap::ChainSlot: {
        auto c = chains_.find(a.point.target);
        if (c == chains_.end()) return make_error("internal: no xdp chain on {}", a.point.target);
        const uint32_t key = static_cast<uint32_t>(a.chain_slot);
        const uint32_t val = static_cast<uint32_t>(nfd);
        KAGAMI_TRY_CTX(bpf::map_update(c->second.slots.get(), &key, &val), ctx);
        crash_point("swap chain slot");
        const int sfd = c->second.slots.get();
        const uint32_t oval = static_cast<uint32_t>(ofd);
        undo.add([sfd, key, oval] { (void)bpf::map_update(sfd, &key, &oval); });
        break;
      }
    }
  }

  // Commit point: from here a restart finishes the replace.
  e.state = kCommitting;
  if (auto r = write_meta(e, &next); !r) {
    e.state = kReplacing;
    return r.error();  // still "replacing" on disk: the undo rolls back
  }
  undo.commit();
  json rec = meta_json(e);
  rec["next"] = next;
  move_next_pins(name, rec);
  for (size_t i = 0; i < points.size(); i++) {
    Attachment& a = e.atts[i];
    a.program = progs[i];
    if (new_links[i].valid()) a.link = std::move(new_links[i]);
  }
  e.progs = std::move(nprogs);
  e.maps = std::move(nmaps);
  e.generation++;
  e.label = label;
  e.sha256 = sha;
  e.source = next["source"].get<std::string>();
  e.state = kComplete;
  auto w = write_meta(e);
  spdlog::info("replaced {} -> generation {} ({})", name, e.generation, label);
  if (!w) return make_error("replaced (generation {}) but the record was not rewritten: {}", e.generation,
                            w.error().message);
  return info(e);
}

}  // namespace kagami::core::pm
