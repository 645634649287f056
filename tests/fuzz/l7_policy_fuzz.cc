// libFuzzer target for the L7 policy parsers (modules/policy/l7/l7_model.cc):
// CiliumNetworkPolicy files come from operators and, with a Kubernetes
// feed, from anyone who may create one. Beyond "no crash": every error
// names the file; an accepted policy compiles against sample workloads
// into rules the kernel can hold (paths within L7_MAX_PATH, methods within
// L7_MAX_METHOD, exact/prefix literals free of regex metacharacters); and
// a line accepted as a path regex yields such a literal.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "modules/policy/l7/abi.h"
#include "modules/policy/l7/l7_model.h"

using namespace kagami::policy;
using namespace kagami::policy::l7;

namespace {
void check_path(const PathPattern& p) {
  if (p.literal.size() > L7_MAX_PATH) __builtin_trap();
  if (p.kind == PathKind::Any && !p.literal.empty()) __builtin_trap();
  if (p.kind != PathKind::Any && p.kind != PathKind::Exact && p.kind != PathKind::Prefix) __builtin_trap();
  for (char ch : p.literal)
    if (static_cast<unsigned char>(ch) <= ' ' || static_cast<unsigned char>(ch) >= 0x7f) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto ps = parse_l7_policies(in, "fuzz.yaml");
  if (!ps) {
    if (ps.error().message.rfind("fuzz.yaml", 0) != 0) __builtin_trap();
  } else {
    std::vector<Workload> wl(2);
    wl[0].name = "server";
    wl[0].labels = {{"app", "server"}};
    wl[0].cgroup = "/sys/fs/cgroup/s";
    wl[0].addresses = {*parse_cidr("10.0.0.1")};
    wl[1].name = "client";
    wl[1].labels = {{"app", "client"}};
    wl[1].addresses = {*parse_cidr("10.0.0.2")};
    auto c = compile_l7(wl, *ps);
    if (c) {
      if (c->rules.size() > L7_MAX_RULES) __builtin_trap();
      for (const auto& r : c->rules) {
        if (r.rule_id == 0 || r.rule_id >= c->rule_names.size() || r.port == 0) __builtin_trap();
        if (r.method.size() > L7_MAX_METHOD || r.src_ident > 2) __builtin_trap();
        check_path(r.path);
      }
    }
  }
  // The first line as a path and as a method regex.
  const std::string line(in.substr(0, std::min<size_t>(in.find('\n'), 256)));
  if (auto p = parse_path_regex(line)) check_path(*p);
  if (auto m = parse_method_regex(line))
    for (const auto& t : *m)
      if (t.empty() || t.size() > L7_MAX_METHOD) __builtin_trap();
  return 0;
}
