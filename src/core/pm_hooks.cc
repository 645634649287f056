// The hook table: what each hook kind accepts, how it attaches, how replace
// swaps it and how it persists. One row per kind.
#include <linux/bpf.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "common/fs.h"
#include "core/crash_point.h"
#include "core/pm_internal.h"

namespace kagami::core::pm {
namespace {

using K = AttachPoint::Kind;

// cgroup option -> (attach type, program type).
std::pair<uint32_t, uint32_t> cgroup_hook(const std::string& opt) {
  if (opt == "connect4") return {BPF_CGROUP_INET4_CONNECT, BPF_PROG_TYPE_CGROUP_SOCK_ADDR};
  if (opt == "connect6") return {BPF_CGROUP_INET6_CONNECT, BPF_PROG_TYPE_CGROUP_SOCK_ADDR};
  if (opt == "sendmsg4") return {BPF_CGROUP_UDP4_SENDMSG, BPF_PROG_TYPE_CGROUP_SOCK_ADDR};
  if (opt == "sendmsg6") return {BPF_CGROUP_UDP6_SENDMSG, BPF_PROG_TYPE_CGROUP_SOCK_ADDR};
  if (opt == "bind4") return {BPF_CGROUP_INET4_BIND, BPF_PROG_TYPE_CGROUP_SOCK_ADDR};
  if (opt == "bind6") return {BPF_CGROUP_INET6_BIND, BPF_PROG_TYPE_CGROUP_SOCK_ADDR};
  if (opt == "sock_create") return {BPF_CGROUP_INET_SOCK_CREATE, BPF_PROG_TYPE_CGROUP_SOCK};
  if (opt == "ingress") return {BPF_CGROUP_INET_INGRESS, BPF_PROG_TYPE_CGROUP_SKB};
  if (opt == "egress") return {BPF_CGROUP_INET_EGRESS, BPF_PROG_TYPE_CGROUP_SKB};
  return {BPF_CGROUP_SOCK_OPS, BPF_PROG_TYPE_SOCK_OPS};
}

bpf::XdpMode xdp_mode(const AttachPoint& p) {
  return p.option == "native" ? bpf::XdpMode::Native
         : p.option == "generic" ? bpf::XdpMode::Generic : bpf::XdpMode::Auto;
}

Result<int> prog_fd_of(const bpf::Object& obj, const std::string& prog) { return obj.prog_fd(prog); }

Attached link_attached(Fd l, const char* mechanism) {
  Attached a;
  a.mech = Mech::Link;
  a.link = std::move(l);
  a.mechanism = mechanism;
  return a;
}

// --- accepts ---
bool xdp_accepts(uint32_t t) { return t == BPF_PROG_TYPE_XDP; }
bool tc_accepts(uint32_t t) { return t == BPF_PROG_TYPE_SCHED_CLS || t == BPF_PROG_TYPE_SCHED_ACT; }
bool tp_accepts(uint32_t t) { return t == BPF_PROG_TYPE_TRACEPOINT; }
bool raw_tp_accepts(uint32_t t) { return t == BPF_PROG_TYPE_RAW_TRACEPOINT; }
bool tp_btf_accepts(uint32_t t) { return t == BPF_PROG_TYPE_TRACING; }
bool cgroup_accepts(uint32_t t) {
  return t == BPF_PROG_TYPE_CGROUP_SOCK_ADDR || t == BPF_PROG_TYPE_CGROUP_SOCK ||
         t == BPF_PROG_TYPE_CGROUP_SKB || t == BPF_PROG_TYPE_SOCK_OPS;
}
bool sk_msg_accepts(uint32_t t) { return t == BPF_PROG_TYPE_SK_MSG; }
bool sk_skb_accepts(uint32_t t) { return t == BPF_PROG_TYPE_SK_SKB; }
bool uprobe_accepts(uint32_t t) { return t == BPF_PROG_TYPE_KPROBE; }

// --- targets ---
Result<void> no_check(const AttachPoint&, const bpf::Object&) { return ok(); }
Result<void> check_interface(const AttachPoint& p, const bpf::Object&) {
  if (if_nametoindex(p.target.c_str()) == 0)
    return make_error("attach {}: no such interface {}", p.to_string(), p.target);
  return ok();
}
Result<void> check_cgroup(const AttachPoint& p, const bpf::Object&) {
  if (!bpf::path_exists(p.target)) return make_error("attach {}: no such cgroup {}", p.to_string(), p.target);
  if (!fs::is_cgroup2(p.target))
    return make_error("attach {}: {} is not a cgroup v2 directory (BPF cgroup hooks need cgroup2)",
                      p.to_string(), p.target);
  return ok();
}
Result<void> check_sockmap(const AttachPoint& p, const bpf::Object& obj) {
  for (const auto& m : obj.maps())
    if (m.name == p.target) {
      if (m.map_type != BPF_MAP_TYPE_SOCKMAP && m.map_type != BPF_MAP_TYPE_SOCKHASH)
        return make_error("attach {}: map {} is a {}, not a sockmap/sockhash", p.to_string(), m.name, m.type);
      return ok();
    }
  return make_error("attach {}: {} has no map {}", p.to_string(), obj.label(), p.target);
}
Result<void> check_binary(const AttachPoint& p, const bpf::Object&) {
  auto r = fs::check_regular_file(p.target, "uprobe binary");
  if (!r) return r.error().with_context("attach " + p.to_string());
  return ok();
}

// --- prepare ---
Result<void> prepare_cgroup(bpf::Object& obj, const AttachPoint& p, const std::string& prog) {
  auto [at, pt] = cgroup_hook(p.option);
  for (const auto& d : obj.programs())
    if (d.name == prog && d.prog_type != pt)
      return make_error("attach {}: program {} is of type {}, which cannot attach to cgroup hook {}",
                        p.to_string(), prog, d.type, p.option);
  return obj.set_expected_attach_type(prog, at);
}
Result<void> prepare_tp_btf(bpf::Object& obj, const AttachPoint& p, const std::string& prog) {
  return obj.set_attach_target(prog, p.target);
}

// --- attach ---
Result<Attached> attach_xdp(const bpf::Object& obj, const AttachPoint& p, const std::string& prog) {
  auto fd = prog_fd_of(obj, prog);
  if (!fd) return fd.error();
  const int ifindex = static_cast<int>(if_nametoindex(p.target.c_str()));
  auto l = bpf::attach_xdp(*fd, ifindex, xdp_mode(p));
  if (!l) {
    if (l.error().code == EBUSY || l.error().code == EEXIST) {
      auto id = bpf::xdp_query(ifindex);
      return make_error("xdp:{} already runs an XDP program (id {}) that this manager does not own",
                        p.target, id ? *id : 0);
    }
    return l.error().with_context("attach " + p.to_string());
  }
  return link_attached(std::move(l->link), l->native ? "xdp-native" : "xdp-generic");
}
Result<Attached> attach_tc(const bpf::Object& obj, const AttachPoint& p, const std::string& prog) {
  auto fd = prog_fd_of(obj, prog);
  if (!fd) return fd.error();
  const int ifindex = static_cast<int>(if_nametoindex(p.target.c_str()));
  auto f = bpf::tc_attach(*fd, ifindex, p.option == "egress", static_cast<uint32_t>(p.order), false);
  if (!f) return f.error().with_context("attach " + p.to_string());
  Attached a;
  a.mech = Mech::Tc;
  a.tc = *f;
  a.mechanism = fmt::format("tc-prio:{}", f->priority);
  return a;
}
Result<Attached> attach_tracepoint(const bpf::Object& obj, const AttachPoint& p, const std::string& prog) {
  auto fd = prog_fd_of(obj, prog);
  if (!fd) return fd.error();
  const size_t s = p.target.find('/');
  auto l = bpf::attach_tracepoint(*fd, p.target.substr(0, s), p.target.substr(s + 1));
  if (!l) return l.error().with_context("attach " + p.to_string());
  return link_attached(std::move(*l), "bpf_link(perf_event)");
}
Result<Attached> attach_raw_tp(const bpf::Object& obj, const AttachPoint& p, const std::string& prog) {
  auto fd = prog_fd_of(obj, prog);
  if (!fd) return fd.error();
  auto l = bpf::attach_raw_tp(*fd, p.target);
  if (!l) return l.error().with_context("attach " + p.to_string());
  return link_attached(std::move(*l), "bpf_link(raw_tp)");
}
Result<Attached> attach_tp_btf(const bpf::Object& obj, const AttachPoint& p, const std::string& prog) {
  auto fd = prog_fd_of(obj, prog);
  if (!fd) return fd.error();
  auto l = bpf::attach_raw_tp(*fd, "");
  if (!l) return l.error().with_context("attach " + p.to_string());
  return link_attached(std::move(*l), "bpf_link(tracing)");
}
Result<Attached> attach_cgroup(const bpf::Object& obj, const AttachPoint& p, const std::string& prog) {
  auto fd = prog_fd_of(obj, prog);
  if (!fd) return fd.error();
  auto l = bpf::attach_cgroup(*fd, p.target, cgroup_hook(p.option).first);
  if (!l) return l.error().with_context("attach " + p.to_string());
  return link_attached(std::move(*l), "bpf_link(cgroup)");
}
Result<Attached> attach_sk_msg(const bpf::Object& obj, const AttachPoint& p, const std::string& prog) {
  auto fd = prog_fd_of(obj, prog);
  if (!fd) return fd.error();
  auto mfd = obj.map_fd(p.target);
  if (!mfd) return mfd.error().with_context("attach " + p.to_string());
  auto l = bpf::attach_sk_msg(*fd, *mfd);
  if (!l) return l.error().with_context("attach " + p.to_string());
  return link_attached(std::move(*l), "bpf_link(sockmap)");
}
Result<Attached> attach_sk_skb(const bpf::Object& obj, const AttachPoint& p, const std::string& prog) {
  auto fd = prog_fd_of(obj, prog);
  if (!fd) return fd.error();
  auto mfd = obj.map_fd(p.target);
  if (!mfd) return mfd.error().with_context("attach " + p.to_string());
  auto l = bpf::attach_sk_skb(*fd, *mfd, p.option == "parser");
  if (!l) return l.error().with_context("attach " + p.to_string());
  return link_attached(std::move(*l), "bpf_link(sockmap)");
}
Result<Attached> attach_uprobe(const bpf::Object& obj, const AttachPoint& p, const std::string& prog) {
  auto* bp = obj.program(prog);
  if (!bp) return make_error("attach {}: {} has no program {}", p.to_string(), obj.label(), prog);
  auto l = bpf::attach_uprobe(bp, p.target, p.option, p.kind == K::Uretprobe);
  if (!l) return l.error().with_context("attach " + p.to_string());
  return link_attached(std::move(*l), "bpf_link(perf_event)");
}

// xdp, cgroup (incl. sockops) and sockmap links implement update_prog;
// perf-event (tracepoint, uprobe), raw_tp and tracing links do not.
const HookRow kHooks[] = {
    {K::Xdp, "xdp", xdp_accepts, check_interface, nullptr, attach_xdp, Swap::LinkUpdate, Mech::Link},
    {K::Tc, "tc", tc_accepts, check_interface, nullptr, attach_tc, Swap::TcReplace, Mech::Tc},
    {K::Tracepoint, "tracepoint", tp_accepts, no_check, nullptr, attach_tracepoint, Swap::NewLink, Mech::Link},
    {K::RawTp, "raw_tp", raw_tp_accepts, no_check, nullptr, attach_raw_tp, Swap::NewLink, Mech::Link},
    {K::TpBtf, "tp_btf", tp_btf_accepts, no_check, prepare_tp_btf, attach_tp_btf, Swap::NewLink, Mech::Link},
    {K::Cgroup, "cgroup", cgroup_accepts, check_cgroup, prepare_cgroup, attach_cgroup, Swap::LinkUpdate,
     Mech::Link},
    {K::SkMsg, "sk_msg", sk_msg_accepts, check_sockmap, nullptr, attach_sk_msg, Swap::LinkUpdate, Mech::Link},
    {K::SkSkb, "sk_skb", sk_skb_accepts, check_sockmap, nullptr, attach_sk_skb, Swap::LinkUpdate, Mech::Link},
    {K::Uprobe, "uprobe", uprobe_accepts, check_binary, nullptr, attach_uprobe, Swap::NewLink, Mech::Link},
    {K::Uretprobe, "uretprobe", uprobe_accepts, check_binary, nullptr, attach_uprobe, Swap::NewLink,
     Mech::Link},
};

}  // namespace

const HookRow& hook_row(AttachPoint::Kind k) {
  for (const auto& r : kHooks)
    if (r.kind == k) return r;
  // Every Kind has a row (core_attach_test checks it); this is unreachable.
  spdlog::critical("internal: no hook row for attach kind {}", static_cast<int>(k));
  std::abort();
}

std::string hook_kind_name(const AttachPoint& p) { return hook_row(p.kind).name; }

Result<bpf::ProgDesc> pick_program(const bpf::Object& obj, const AttachPoint& p) {
  const auto& row = hook_row(p.kind);
  const auto progs = obj.programs();
  if (!p.program.empty()) {
    for (const auto& d : progs) {
      if (d.name != p.program) continue;
      if (!row.accepts(d.prog_type))
        return make_error("attach {}: program {} is of type {}, which cannot attach to a {} hook",
                          p.to_string(), d.name, d.type, row.name);
      return d;
    }
    return make_error("attach {}: {} has no program named {}", p.to_string(), obj.label(), p.program);
  }
  std::vector<bpf::ProgDesc> fits;
  for (const auto& d : progs)
    if (row.accepts(d.prog_type)) fits.push_back(d);
  if (p.kind == K::SkSkb) {
    // A parser and a verdict in one object: the section names the role.
    const std::string want = "sk_skb/stream_" + p.option;
    std::vector<bpf::ProgDesc> exact;
    for (const auto& d : fits)
      if (d.section == want) exact.push_back(d);
    if (exact.size() == 1) return exact[0];
  }
  if (p.kind == K::Cgroup) {
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
                      obj.label(), row.name);
  std::string names;
  for (const auto& d : fits) names += (names.empty() ? "" : ", ") + d.name;
  return make_error("attach {}: several programs fit ({}); pick one with @name", p.to_string(), names);
}

Result<void> Manager::check_xdp_exclusive(const AttachPoint& p, const std::string& self) const {
  for (const auto& [n, other] : entries_)
    for (const auto& oa : other.atts)
      if (oa.point.kind == K::Xdp && oa.point.target == p.target && n != self)
        return make_error("xdp:{} already runs program {}, which is not chain-aware; only chain-aware "
                          "programs (bpf/lib/xdp_chain.h) can share an interface", p.target, n);
  return ok();
}

Result<Fd> Manager::attach_new_link(const bpf::Object& obj, const AttachPoint& p, const std::string& prog,
                                    Undo& undo) {
  auto a = hook_row(p.kind).attach(obj, p, prog);
  if (!a) return a.error();
  crash_point("attach");
  if (a->mech != Mech::Link) return make_error("internal: {} has no link", p.to_string());
  // A link that fails later in the transaction is detached explicitly: the
  // caller keeps the fd, so capture a dup for the undo.
  auto d = bpf::dup_fd(a->link.get());
  if (!d) {
    (void)bpf::link_detach(a->link.get());
    return d.error();
  }
  auto shared = std::make_shared<Fd>(std::move(*d));
  undo.add([shared] { (void)bpf::link_detach(shared->get()); });
  return std::move(a->link);
}

Result<void> Manager::attach_one(const bpf::Object& obj, Attachment& a, const Entry& e, Undo& undo) {
  if (a.mech == Mech::XdpChain) {
    auto fd = obj.prog_fd(a.program);
    if (!fd) return fd.error();
    return set_chain_slot(a, *fd, &undo);
  }
  if (a.point.kind == K::Xdp) KAGAMI_TRY(check_xdp_exclusive(a.point, e.name));
  auto r = hook_row(a.point.kind).attach(obj, a.point, a.program);
  if (!r) return r.error();
  crash_point("attach");
  a.mechanism = r->mechanism;
  if (r->mech == Mech::Tc) {
    a.tc = r->tc;
    const bpf::TcFilter tf = r->tc;
    undo.add([tf] { (void)bpf::tc_detach(tf); });
    return ok();
  }
  a.link = std::move(r->link);
  auto d = bpf::dup_fd(a.link.get());
  if (!d) {
    (void)bpf::link_detach(a.link.get());
    return d.error();
  }
  auto shared = std::make_shared<Fd>(std::move(*d));
  undo.add([shared] { (void)bpf::link_detach(shared->get()); });
  // Pinned at once: until the pin exists the link lives only in this
  // process, so a crash before this line detaches it with the process.
  const std::string pin = dir(e.name) + "/" + a.link_pin;
  KAGAMI_TRY_CTX(bpf::obj_pin(a.link.get(), pin), "pinning link");
  crash_point("pin link");
  undo.add([pin] { (void)bpf::remove_path(pin); });
  return ok();
}

void Manager::detach(Entry& e, Attachment& a) {
  switch (a.mech) {
    case Mech::Link:
      (void)bpf::link_detach(a.link.get());
      if (!a.link_pin.empty()) (void)bpf::remove_path(dir(e.name) + "/" + a.link_pin);
      a.link.reset();
      crash_point("detach link");
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
      crash_point("detach tc");
      break;
    }
    case Mech::XdpChain: {
      auto it = chains_.find(a.point.target);
      if (it != chains_.end()) {
        const uint32_t key = static_cast<uint32_t>(a.chain_slot);
        (void)bpf::map_delete(it->second.slots.get(), &key);
      }
      crash_point("clear chain slot");
      break;
    }
  }
}

}  // namespace kagami::core::pm
