#include "core/attach.h"

#include <net/if.h>

#include <algorithm>
#include <charconv>

namespace kagami::core {
namespace {

constexpr std::string_view kKinds = "xdp, tc, tracepoint, raw_tp, tp_btf, cgroup, sk_msg, sk_skb, uprobe, uretprobe";

const char* kind_name(AttachPoint::Kind k) {
  switch (k) {
    case AttachPoint::Kind::Xdp: return "xdp";
    case AttachPoint::Kind::Tc: return "tc";
    case AttachPoint::Kind::Tracepoint: return "tracepoint";
    case AttachPoint::Kind::RawTp: return "raw_tp";
    case AttachPoint::Kind::TpBtf: return "tp_btf";
    case AttachPoint::Kind::Cgroup: return "cgroup";
    case AttachPoint::Kind::SkMsg: return "sk_msg";
    case AttachPoint::Kind::SkSkb: return "sk_skb";
    case AttachPoint::Kind::Uprobe: return "uprobe";
    case AttachPoint::Kind::Uretprobe: return "uretprobe";
  }
  return "?";
}

bool is_ident(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

Result<void> check_ifname(std::string_view spec, const std::string& ifname) {
  if (ifname.empty()) return make_error("attach '{}': missing interface name", spec);
  if (ifname.size() >= IFNAMSIZ) return make_error("attach '{}': interface name too long", spec);
  return ok();
}

}  // namespace

const std::vector<std::string>& cgroup_attach_options() {
  static const std::vector<std::string> v = {"connect4", "connect6", "sendmsg4", "sendmsg6", "bind4",
                                             "bind6", "sock_create", "ingress", "egress", "sockops"};
  return v;
}

Result<AttachPoint> AttachPoint::parse(std::string_view spec) {
  AttachPoint p;
  std::string_view s = spec;
  // Suffixes "#order" and "@program", in either order.
  for (int i = 0; i < 2; i++) {
    const size_t hash = s.rfind('#');
    if (hash != std::string_view::npos && s.find_first_of("/:@", hash) == std::string_view::npos) {
      std::string_view num = s.substr(hash + 1);
      int order = 0;
      auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), order);
      if (num.empty() || ec != std::errc() || ptr != num.data() + num.size() || order < 1 || order > 65535)
        return make_error("attach '{}': order '#{}' must be a number 1..65535", spec, num);
      p.order = order;
      s = s.substr(0, hash);
      continue;
    }
    const size_t at = s.rfind('@');
    if (at != std::string_view::npos && s.find_first_of("/:#", at) == std::string_view::npos) {
      std::string_view prog = s.substr(at + 1);
      if (!is_ident(prog)) return make_error("attach '{}': bad program name '{}'", spec, prog);
      p.program = std::string(prog);
      s = s.substr(0, at);
    }
  }
  const size_t colon = s.find(':');
  if (colon == std::string_view::npos)
    return make_error("attach '{}': expected kind:target (kinds: {})", spec, kKinds);
  const std::string kind(s.substr(0, colon));
  const std::string rest(s.substr(colon + 1));
  auto split_last = [&](std::string* target, std::string* option) {
    const size_t c = rest.rfind(':');
    if (c == std::string::npos) {
      *target = rest;
      option->clear();
    } else {
      *target = rest.substr(0, c);
      *option = rest.substr(c + 1);
    }
  };
  if (kind == "xdp") {
    p.kind = Kind::Xdp;
    split_last(&p.target, &p.option);
    KAGAMI_TRY(check_ifname(spec, p.target));
    if (p.option == "auto") p.option.clear();
    if (!p.option.empty() && p.option != "native" && p.option != "generic")
      return make_error("attach '{}': xdp mode '{}' is not native, generic or auto", spec, p.option);
  } else if (kind == "tc") {
    p.kind = Kind::Tc;
    split_last(&p.target, &p.option);
    KAGAMI_TRY(check_ifname(spec, p.target));
    if (p.option != "ingress" && p.option != "egress")
      return make_error("attach '{}': tc needs a direction (tc:<if>:ingress|egress)", spec);
  } else if (kind == "tracepoint" || kind == "tp") {
    p.kind = Kind::Tracepoint;
    p.target = rest;
    const size_t slash = rest.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == rest.size() ||
        rest.find('/', slash + 1) != std::string::npos)
      return make_error("attach '{}': tracepoint needs category/name", spec);
  } else if (kind == "raw_tp" || kind == "tp_btf") {
    p.kind = kind == "raw_tp" ? Kind::RawTp : Kind::TpBtf;
    p.target = rest;
    if (!is_ident(rest)) return make_error("attach '{}': bad tracepoint name '{}'", spec, rest);
  } else if (kind == "cgroup") {
    p.kind = Kind::Cgroup;
    split_last(&p.target, &p.option);
    if (p.target.empty() || p.target[0] != '/')
      return make_error("attach '{}': cgroup needs an absolute path (cgroup:/sys/fs/cgroup/x:connect4)", spec);
    const auto& opts = cgroup_attach_options();
    if (std::find(opts.begin(), opts.end(), p.option) == opts.end())
      return make_error("attach '{}': cgroup hook '{}' is not one of connect4, connect6, sendmsg4, "
                        "sendmsg6, bind4, bind6, sock_create, ingress, egress, sockops",
                        spec, p.option);
  } else if (kind == "sk_msg") {
    p.kind = Kind::SkMsg;
    p.target = rest;
    if (!is_ident(rest)) return make_error("attach '{}': sk_msg needs the name of a sockmap/sockhash", spec);
  } else if (kind == "sk_skb") {
    p.kind = Kind::SkSkb;
    split_last(&p.target, &p.option);
    if (!is_ident(p.target) || (p.option != "parser" && p.option != "verdict"))
      return make_error("attach '{}': sk_skb needs <sockmap name>:parser or <sockmap name>:verdict", spec);
  } else if (kind == "uprobe" || kind == "uretprobe") {
    p.kind = kind == "uprobe" ? Kind::Uprobe : Kind::Uretprobe;
    split_last(&p.target, &p.option);
    if (p.target.empty() || p.option.empty())
      return make_error("attach '{}': {} needs binary:symbol", spec, kind);
  } else {
    return make_error("attach '{}': unknown hook kind '{}' (kinds: {})", spec, kind, kKinds);
  }
  return p;
}

std::string AttachPoint::to_string() const {
  std::string s = std::string(kind_name(kind)) + ":" + target;
  if (!option.empty()) s += ":" + option;
  if (!program.empty()) s += "@" + program;
  if (order != 100) s += "#" + std::to_string(order);
  return s;
}

}  // namespace kagami::core
