// libFuzzer target for the security policy (modules/security/policy.cc):
//   build/tests/fuzz/security_policy_fuzz tests/fuzz/corpus/security_policy
//
// Properties checked on every input, beyond "no crash, no hang, no leak":
//   - a rejected policy always has a message naming where ("origin:" first);
//   - an accepted one compiles or says why; a compiled one has one name per
//     rule, masks with no bit past the last rule, every prefix's mask a
//     superset of each shorter prefix's, deny rules only on the cgroup side;
//   - the enforceability check and the cgroup selector masks never crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "modules/security/policy.h"

namespace {
[[noreturn]] void violated() { __builtin_trap(); }
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kagami::modules::security;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto p = parse_policy(text, "fuzz.yaml");
  if (!p) {
    if (p.error().message.rfind("fuzz.yaml", 0) != 0) violated();
    return 0;
  }
  (void)check_enforceable(*p, false);
  auto c = compile_policy(*p);
  if (!c) {
    if (c.error().message.empty()) violated();
    return 0;
  }
  const size_t n = p->rules.size();
  if (c->rule_names.size() != n || c->rules.size() != n || n > SEC_MAX_RULES) violated();
  const __u64 all = n == 64 ? ~0ULL : ((1ULL << n) - 1);
  for (const auto& side : c->kinds)
    for (__u64 m : side)
      if (m & ~all) violated();
  if (c->kinds[SEC_SIDE_TP][SEC_KIND_CONNECT] & c->gen.deny) violated();
  for (const auto& [pre, m] : c->prefix)
    for (const auto& [other, om] : c->prefix)
      if (other.size() < pre.size() && pre.rfind(other, 0) == 0 && (m & om) != om) violated();
  for (const char* path : {"/", "/system.slice/sshd.service",
                           "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0f6a1c2d_1111_2222_3333_"
                           "444455556666.slice/cri-containerd-abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                           "0123456789.scope"}) {
    SelVal v = cgroup_masks(*c, path);
    if ((v.match | v.except) & ~all) violated();
  }
  return 0;
}
