// The L7 policy model: the `rules.http` part of CiliumNetworkPolicy
// (cilium.io/v2) parsed into HTTP rules, and compiled against the declared
// workloads into the table l7.bpf.c reads (abi.h).
//
// Parsing never touches the kernel. Every error names file:line:col and the
// field path, like the NetworkPolicy parser (modules/policy/model.h):
//   l7/web.yaml:14:19: spec.ingress[0].toPorts[0].rules.http[1].path: regex '/a/(b|c)' is not supported ...
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "modules/policy/model.h"

namespace kagami::policy::l7 {

enum class PathKind : uint8_t { Any = 0, Exact = 1, Prefix = 2 };

// A Cilium path regex reduced to what the kernel decides: ".*" (any),
// a literal (exact), a literal followed by ".*" (prefix). Anchors ^ and $
// are accepted (Envoy matches the whole path anyway); "\." "\-" "\/" "\_"
// "\~" are literal characters. Anything else is an error that says why.
struct PathPattern {
  PathKind kind = PathKind::Any;
  std::string literal;
};
Result<PathPattern> parse_path_regex(std::string_view re);
// "GET", "GET|HEAD", "" / ".*" (any: empty list). Upper-case tokens only.
Result<std::vector<std::string>> parse_method_regex(std::string_view re);

struct HttpRule {
  std::vector<std::string> methods;  // empty = any
  PathPattern path;
  std::string name;                  // "<ns>/<policy>:ingress[i].toPorts[j].http[k]"
  int line = 0, col = 0;
};

struct PortRules {
  std::vector<uint16_t> ports;       // TCP ports of toPorts[].ports
  std::vector<HttpRule> http;        // empty list: the port is policed and every request is allowed
};

struct IngressRule {
  bool any_source = true;            // fromEndpoints absent or [{}]
  std::vector<Selector> from;        // with the policy's namespace folded in (see .cc)
  std::vector<std::string> from_ns;  // namespace each selector is limited to ("" = any)
  std::vector<PortRules> to_ports;
};

struct L7Policy {
  std::string name, ns = "default";
  Selector endpoint;                 // endpointSelector
  std::vector<IngressRule> ingress;
  std::string file;
  int line = 0;
};

// One YAML text (documents separated by ---). Only CiliumNetworkPolicy;
// documents of other kinds are skipped (the same folder may hold the
// NetworkPolicy files the policy module reads).
Result<std::vector<L7Policy>> parse_l7_policies(std::string_view text, const std::string& file);
Result<std::vector<L7Policy>> load_l7_policy_files(const std::vector<std::string>& paths);

// The table l7.bpf.c reads.
struct CompiledRule {
  uint32_t rule_id = 0;   // index into names (1..)
  uint32_t src_ident = 0; // 0 = any source
  uint16_t port = 0;
  std::string method;     // "" = any
  PathPattern path;
};
struct Compiled {
  std::vector<CompiledRule> rules;
  std::vector<uint16_t> ports;                 // policed ports
  std::map<uint32_t, uint32_t> peers;          // IPv4 (network order) -> identity
  std::vector<std::string> rule_names;         // [0] = "none"
  std::map<uint32_t, std::string> identity_names;  // identity -> "ns/name"
  std::vector<std::string> cgroups;            // cgroups of the selected workloads (sockops)
};
// Identities are the workloads' positions in `workloads` (1-based).
// Errors: too many rules, a port policed by two policies that select
// different workloads, a path longer than the kernel's limit.
Result<Compiled> compile_l7(const std::vector<Workload>& workloads, const std::vector<L7Policy>& policies);

}  // namespace kagami::policy::l7
