// Pins, the metadata record and its journal states, adoption, and crash
// recovery (docs/program-manager.md, "Pins and adoption" and "Crash
// consistency").
#include <linux/bpf.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <set>

#include <spdlog/spdlog.h>

#include "core/crash_point.h"
#include "core/pm_internal.h"

namespace kagami::core::pm {
namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// A member of a record, or an empty object when it is missing (by
// reference: iterating a temporary's items() would dangle).
const json& field(const json& j, const std::string& k) {
  static const json empty = json::object();
  auto it = j.find(k);
  return it == j.end() ? empty : *it;
}

// Kernel prog id behind a pin (0 when the pin is missing).
uint32_t pinned_prog_id(const std::string& path, Fd* keep = nullptr) {
  auto fd = bpf::obj_get(path);
  if (!fd) return 0;
  auto pi = bpf::prog_info(fd->get());
  const uint32_t id = pi ? pi->id : 0;
  if (keep) *keep = std::move(*fd);
  return id;
}

void remove_dirs(const std::string& d) {
  for (const char* sub : {"/next/maps", "/next/progs", "/next/links", "/next", "/maps", "/progs", "/links"})
    (void)bpf::remove_path(d + sub);
  (void)bpf::remove_path(d);
}

}  // namespace

Result<void> write_record(int meta_fd, const json& j) {
  std::string s = j.dump();
  if (s.size() + 1 > kMetaSize) return make_error("metadata record exceeds {} bytes", kMetaSize);
  std::vector<char> buf(kMetaSize, 0);
  std::copy(s.begin(), s.end(), buf.begin());
  const uint32_t key = 0;
  KAGAMI_TRY_CTX(bpf::map_update(meta_fd, &key, buf.data()), "writing meta.json");
  return ok();
}

json apply_next(json rec) {
  const json nx = rec.at("next");
  rec["label"] = nx.at("label");
  rec["source"] = nx.at("source");
  rec["sha256"] = nx.at("sha256");
  rec["generation"] = rec.at("generation").get<uint32_t>() + 1;
  json progs = json::object(), maps = json::object();
  for (const auto& [n, pin] : nx.at("progs").items()) progs[n] = "progs/" + pin_name(n);
  for (const auto& [n, pin] : nx.at("maps").items()) maps[n] = "maps/" + pin_name(n);
  rec["progs"] = progs;
  rec["maps"] = maps;
  const auto& programs = nx.at("programs");
  for (size_t i = 0; i < rec.at("attach").size() && i < programs.size(); i++)
    rec["attach"][i]["program"] = programs[i];
  rec.erase("next");
  rec["state"] = kComplete;
  return rec;
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
              {"state", e.state},
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

Result<void> Manager::write_meta(Entry& e, const json* next) {
  json j = meta_json(e);
  if (next) j["next"] = *next;
  if (auto r = write_record(e.meta.get(), j); !r) return r.error().with_context(e.name);
  crash_point("write meta");
  return ok();
}

// The journal's first entry: the directory and the record in state
// "loading", pinned before any other pin or hook, so that whatever a crash
// leaves behind is listed in a record that adoption can undo.
Result<void> Manager::begin_entry(Entry& e, Undo& undo) {
  const std::string d = dir(e.name);
  KAGAMI_TRY(bpf::make_dir(d));
  for (const char* sub : {"/maps", "/progs", "/links"}) KAGAMI_TRY(bpf::make_dir(d + sub));
  auto meta = bpf::map_create(BPF_MAP_TYPE_ARRAY, "kagami_meta", 4, kMetaSize, 1);
  if (!meta) return meta.error();
  e.meta = std::move(*meta);
  e.state = kLoading;
  if (auto r = write_record(e.meta.get(), meta_json(e)); !r) {
    remove_dirs(d);
    return r.error();
  }
  if (auto r = bpf::obj_pin(e.meta.get(), d + "/" + kMetaPin); !r) {
    remove_dirs(d);
    return r.error().with_context("pinning under " + d);
  }
  crash_point("pin meta");
  // Undone last (registered first): by then every hook is detached.
  std::vector<std::string> pins;
  for (const auto& a : e.atts)
    if (!a.link_pin.empty()) pins.push_back(d + "/" + a.link_pin);
  for (const auto& [n, fd] : e.maps) pins.push_back(d + "/maps/" + pin_name(n));
  for (const auto& [n, fd] : e.progs) pins.push_back(d + "/progs/" + pin_name(n));
  pins.push_back(d + "/" + kMetaPin);
  undo.add([pins, d] {
    for (const auto& p : pins) (void)bpf::remove_path(p);
    remove_dirs(d);
  });
  return ok();
}

Result<void> Manager::pin_objects(Entry& e) {
  const std::string d = dir(e.name);
  for (const auto& [n, fd] : e.maps) {
    KAGAMI_TRY_CTX(bpf::obj_pin(fd.get(), d + "/maps/" + pin_name(n)), "pinning under " + d);
    crash_point("pin map");
  }
  for (const auto& [n, fd] : e.progs) {
    KAGAMI_TRY_CTX(bpf::obj_pin(fd.get(), d + "/progs/" + pin_name(n)), "pinning under " + d);
    crash_point("pin prog");
  }
  return ok();
}

// Hooks are detached by the caller first; the record goes last, so until it
// is gone a restart still finds the entry (state "unloading") and finishes.
void Manager::remove_entry_pins(const Entry& e) {
  const std::string d = dir(e.name);
  for (const auto& a : e.atts)
    if (!a.link_pin.empty()) (void)bpf::remove_path(d + "/" + a.link_pin);
  for (const auto& [n, fd] : e.maps) {
    (void)bpf::remove_path(d + "/maps/" + pin_name(n));
    crash_point("unpin map");
  }
  for (const auto& [n, fd] : e.progs) {
    (void)bpf::remove_path(d + "/progs/" + pin_name(n));
    crash_point("unpin prog");
  }
  (void)bpf::remove_path(d + "/" + kMetaPin);
  crash_point("unpin meta");
  remove_dirs(d);
}

// Undoes an interrupted load or finishes an interrupted unload: both remove
// everything the record names. Hooks first (only while they still run our
// program), the record last.
void Manager::purge(const std::string& name, const json& j) {
  const std::string d = dir(name);
  std::map<std::string, uint32_t> ids;
  for (const auto& [n, pin] : field(j, "progs").items())
    ids[n] = pinned_prog_id(d + "/" + pin.get<std::string>());
  for (const auto& ja : field(j, "attach")) {
    const std::string prog = ja.value("program", "");
    const uint32_t ours = ids.count(prog) ? ids[prog] : 0;
    if (ja.contains("link")) {
      const std::string pin = d + "/" + ja["link"].get<std::string>();
      if (auto l = bpf::obj_get(pin)) (void)bpf::link_detach(l->get());
      (void)bpf::remove_path(pin);
      crash_point("detach link");
    } else if (ja.contains("tc")) {
      const auto& t = ja["tc"];
      const bpf::TcFilter tf{t.value("ifindex", 0), t.value("egress", false), t.value("handle", 1u),
                             t.value("priority", 0u)};
      auto id = bpf::tc_query(tf);
      if (ours && id && *id == ours) (void)bpf::tc_detach(tf);
      crash_point("detach tc");
    } else if (ja.contains("xdp_chain")) {
      auto c = chains_.find(ja["xdp_chain"].value("ifname", ""));
      if (c != chains_.end() && ours) {
        const uint32_t key = ja["xdp_chain"].value("slot", 0u);
        uint32_t id = 0;
        if (bpf::map_lookup(c->second.slots.get(), &key, &id) && id == ours)
          (void)bpf::map_delete(c->second.slots.get(), &key);
      }
      crash_point("clear chain slot");
    }
  }
  if (j.contains("next")) {
    for (const auto& [i, pin] : field(j["next"], "links").items()) {
      if (auto l = bpf::obj_get(d + "/" + pin.get<std::string>())) (void)bpf::link_detach(l->get());
      (void)bpf::remove_path(d + "/" + pin.get<std::string>());
    }
    for (const char* k : {"maps", "progs"})
      for (const auto& [n, pin] : field(j["next"], k).items())
        if (starts_with(pin.get<std::string>(), kNextDir)) (void)bpf::remove_path(d + "/" + pin.get<std::string>());
  }
  for (const char* k : {"maps", "progs"})
    for (const auto& [n, pin] : field(j, k).items()) {
      (void)bpf::remove_path(d + "/" + pin.get<std::string>());
      crash_point("unpin");
    }
  (void)bpf::remove_path(d + "/" + kMetaPin);
  crash_point("unpin meta");
  remove_dirs(d);
}

// Puts the old version back on every hook an interrupted replace may have
// switched, and drops the staged new version.
void Manager::rollback_replace(const std::string& name, const json& j) {
  const std::string d = dir(name);
  const json& nx = j.at("next");
  std::map<std::string, Fd> old_fds;
  std::map<std::string, uint32_t> old_ids;
  std::set<uint32_t> new_ids;
  for (const auto& [n, pin] : j.at("progs").items()) {
    Fd fd;
    old_ids[n] = pinned_prog_id(d + "/" + pin.get<std::string>(), &fd);
    old_fds.emplace(n, std::move(fd));
  }
  for (const auto& [n, pin] : field(nx, "progs").items())
    if (uint32_t id = pinned_prog_id(d + "/" + pin.get<std::string>())) new_ids.insert(id);
  const json links = field(nx, "links");
  const auto& atts = j.at("attach");
  for (size_t i = 0; i < atts.size(); i++) {
    const auto& ja = atts[i];
    const std::string prog = ja.value("program", "");
    auto of = old_fds.find(prog);
    if (of == old_fds.end() || !of->second.valid()) continue;
    const int ofd = of->second.get();
    const uint32_t oid = old_ids[prog];
    if (ja.contains("link")) {
      if (links.contains(std::to_string(i))) {
        const std::string pin = d + "/" + links[std::to_string(i)].get<std::string>();
        if (auto l = bpf::obj_get(pin)) (void)bpf::link_detach(l->get());
        (void)bpf::remove_path(pin);
        crash_point("detach new link");
      } else if (auto l = bpf::obj_get(d + "/" + ja["link"].get<std::string>())) {
        auto li = bpf::link_info(l->get());
        if (li && li->prog_id != oid && new_ids.count(li->prog_id)) {
          (void)bpf::link_update(l->get(), ofd, -1);
          crash_point("swap back link");
        }
      }
    } else if (ja.contains("tc")) {
      const auto& t = ja["tc"];
      const bpf::TcFilter tf{t.value("ifindex", 0), t.value("egress", false), t.value("handle", 1u),
                             t.value("priority", 0u)};
      auto id = bpf::tc_query(tf);
      if (id && new_ids.count(*id)) {
        (void)bpf::tc_attach(ofd, tf.ifindex, tf.egress, tf.priority, true);
        crash_point("swap back tc");
      }
    } else if (ja.contains("xdp_chain")) {
      auto c = chains_.find(ja["xdp_chain"].value("ifname", ""));
      if (c == chains_.end()) continue;
      const uint32_t key = ja["xdp_chain"].value("slot", 0u);
      uint32_t id = 0;
      if (bpf::map_lookup(c->second.slots.get(), &key, &id) && new_ids.count(id)) {
        const uint32_t v = static_cast<uint32_t>(ofd);
        (void)bpf::map_update(c->second.slots.get(), &key, &v);
        crash_point("swap back chain slot");
      }
    }
  }
  for (const char* k : {"maps", "progs"})
    for (const auto& [n, pin] : field(nx, k).items())
      if (starts_with(pin.get<std::string>(), kNextDir)) {
        (void)bpf::remove_path(d + "/" + pin.get<std::string>());
        crash_point("unpin staged");
      }
  for (const char* sub : {"/next/maps", "/next/progs", "/next/links", "/next"}) (void)bpf::remove_path(d + sub);
}

// The commit of a replace, from the pins alone (so a restart can redo it):
// the new links take the old links' pins (old ones detached), the staged
// maps and programs take their final names (rename is atomic on bpffs and
// replaces the old pin), and what the new version dropped is unpinned.
// Every step can run twice.
void Manager::move_next_pins(const std::string& name, const json& j) {
  const std::string d = dir(name);
  const json& nx = j.at("next");
  const auto& atts = j.at("attach");
  for (const auto& [i, pin] : field(nx, "links").items()) {
    const size_t idx = std::stoul(i);
    if (idx >= atts.size() || !atts[idx].contains("link")) continue;
    const std::string from = d + "/" + pin.get<std::string>();
    const std::string to = d + "/" + atts[idx]["link"].get<std::string>();
    if (!bpf::path_exists(from)) continue;
    if (auto old = bpf::obj_get(to)) (void)bpf::link_detach(old->get());
    if (::rename(from.c_str(), to.c_str()) != 0)
      spdlog::error("replace {}: moving {} to {}: {}", name, from, to, std::strerror(errno));
    crash_point("commit link");
  }
  for (const char* k : {"maps", "progs"}) {
    const json& now = field(nx, k);
    for (const auto& [n, pin] : field(j, k).items())
      if (!now.contains(n)) {
        (void)bpf::remove_path(d + "/" + pin.get<std::string>());
        crash_point("unpin dropped");
      }
    for (const auto& [n, pin] : now.items()) {
      const std::string rel = pin.get<std::string>();
      if (!starts_with(rel, kNextDir)) continue;  // reused map: pinned already
      const std::string from = d + "/" + rel;
      const std::string to = d + "/" + k + "/" + pin_name(n);
      if (!bpf::path_exists(from)) continue;
      if (::rename(from.c_str(), to.c_str()) != 0)
        spdlog::error("replace {}: moving {} to {}: {}", name, from, to, std::strerror(errno));
      crash_point("commit pin");
    }
  }
  for (const char* sub : {"/next/maps", "/next/progs", "/next/links", "/next"}) (void)bpf::remove_path(d + sub);
}

Result<json> Manager::recover(const std::string& name, json j, int meta_fd) {
  const std::string state = j.value("state", std::string(kComplete));
  if (state == kLoading || state == kUnloading) {
    purge(name, j);
    spdlog::warn("{}: {} after a crash", name,
                 state == kLoading ? "rolled back an interrupted load" : "finished an interrupted unload");
    return json(nullptr);
  }
  if (state == kReplacing) {
    rollback_replace(name, j);
    j.erase("next");
    j["state"] = kComplete;
    KAGAMI_TRY(write_record(meta_fd, j));
    crash_point("write meta");
    spdlog::warn("{}: rolled back an interrupted replace (generation {} runs)", name, j.value("generation", 0));
    return j;
  }
  if (state == kCommitting) {
    move_next_pins(name, j);
    j = apply_next(std::move(j));
    KAGAMI_TRY(write_record(meta_fd, j));
    crash_point("write meta");
    spdlog::warn("{}: finished an interrupted replace (generation {} runs)", name, j.value("generation", 0));
    return j;
  }
  return make_error("unknown record state '{}'", state);
}

Result<Entry> Manager::entry_from_record(const std::string& name, const json& j, Fd meta) {
  const std::string d = dir(name);
  Entry e;
  e.meta = std::move(meta);
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
  if (j.value("state", std::string(kComplete)) != kComplete) {
    auto r = recover(name, std::move(j), meta->get());
    if (!r) return r.error().with_context("recovering " + d);
    if (r->is_null()) return make_error("");  // nothing left: not an error
    j = std::move(*r);
  }
  return entry_from_record(name, j, std::move(*meta));
}

Result<void> Manager::adopt_all() {
  auto names = bpf::list_dir(opts_.pin_root);
  if (!names) return names.error().with_context("adopting pinned programs");
  for (const auto& name : *names) {
    if (name.empty() || name[0] == '.' || name[0] == '_') continue;
    if (!bpf::path_exists(dir(name) + "/" + kMetaPin)) {
      // Not ours, unless it is the empty skeleton of a load killed between
      // its mkdir and its record: rmdir removes only empty directories.
      remove_dirs(dir(name));
      continue;
    }
    auto e = adopt_one(name);
    if (!e) {
      if (e.error().message.empty()) continue;  // recovered away (interrupted load/unload)
      spdlog::warn("not adopting {}: {}", dir(name), e.error().message);
      adoption_errors_.push_back(fmt::format("{}: {}", dir(name), e.error().message));
      continue;
    }
    spdlog::info("adopted {} (generation {})", name, e->generation);
    entries_.emplace(name, std::move(*e));
  }
  // A chain whose members are all gone (an interrupted load created it) is
  // removed, as the last unload would have.
  std::vector<std::string> ifs;
  for (const auto& [n, c] : chains_) ifs.push_back(n);
  for (const auto& i : ifs) maybe_destroy_chain(i);
  return ok();
}

}  // namespace kagami::core::pm
