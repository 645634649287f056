// Security policy: the YAML format of docs/security-policy.md, parsed with
// line and column in every error, and compiled into the map contents the
// kernel matches (abi.h). Pure: no kernel access, no files but the one read
// by load_policy_file().
//
//   parse_policy(text, origin)  -> Policy     (errors: "<origin>:L:C: rules[2].match.port: ...")
//   check_enforceable(policy, lsm_available)  (deny where no hook can deny: an error offering kill)
//   compile_policy(policy)      -> Compiled   (kinds, rules, paths, binaries; cgroup masks by selector)
//   cgroup_masks(compiled, rel) -> {match, except} for one cgroup path
#pragma once

#include <linux/types.h>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "identity/identity.h"
#include "identity/workloads.h"
#include "modules/security/abi.h"

namespace kagami::modules::security {

// The names of event kinds as the policy and the JSON spell them ("open").
const char* kind_name(uint32_t kind);          // "unknown" outside the enum
std::optional<uint32_t> kind_from_name(const std::string& s);

// Falco's priorities, highest first; "warning" is the default severity.
const std::vector<std::string>& severities();

struct Selector {
  std::vector<std::string> containers;  // container ids or prefixes (>= 6 hex)
  std::vector<std::string> pod_uids;
  std::vector<std::string> cgroups;     // cgroup path prefixes ("/kubepods.slice/")
  std::vector<std::string> binaries;    // process names (comm; a path's base name, 15 bytes)
  bool in_container = false;            // only tasks in a container's cgroup
  // Kubernetes part, resolved against the declared workloads (the config's
  // `workloads:` today, the API-server feed later): a cgroup of a workload
  // in one of `namespaces` (any when empty) whose labels `pod_labels` matches.
  std::vector<std::string> namespaces;
  identity::LabelSelector pod_labels;
  bool k8s_part() const { return !namespaces.empty() || !pod_labels.empty(); }
  bool path_part() const { return !containers.empty() || !pod_uids.empty() || !cgroups.empty() || in_container; }
  bool empty_cgroup_part() const { return !path_part() && !k8s_part(); }
};

// An exec argument pattern (match.args), matched in userspace on the
// arguments the exec record carries (256 bytes of argv): every given test
// must hold for one argument (argv[index] when index is given, else any).
struct ArgPattern {
  std::optional<uint32_t> index;
  std::optional<std::string> equals, prefix, contains;
  // args_truncated: the record lost arguments past 256 bytes; a pattern that
  // finds no argument then does not match (the missing ones are unknown).
  bool matches(const std::vector<std::string>& args) const;
};

struct Rule {
  std::string name;
  std::string description;
  std::string severity = "warning";
  std::vector<uint32_t> kinds;
  Selector selector;
  Selector except;
  std::optional<uint32_t> uid, uid_not;
  std::vector<std::string> paths, prefixes;
  std::string open;  // "" | read | write
  uint32_t flags_any = 0, flags_all = 0;
  // address: CIDR (inside) or allowed CIDR (not_cidr: outside matches)
  std::optional<std::string> cidr, not_cidr;
  std::optional<uint16_t> port;
  std::optional<uint32_t> arg_index;
  uint64_t arg_value = 0, arg_mask = ~0ULL;
  std::vector<ArgPattern> args;  // exec argument patterns, all must hold (alert only)
  uint32_t actions = SEC_ACT_ALERT;
  int line = 0, column = 0;  // of the rule in the YAML (1-based)
};

struct Policy {
  std::string origin;  // file name or "default"
  std::vector<Rule> rules;
};

// An error names origin, line and column and the field ("rules[3].match.cidr").
Result<Policy> parse_policy(const std::string& text, const std::string& origin);
Result<Policy> load_policy_file(const std::string& path);

// The shipped telco policy (detect-only), docs/security-policy.md.
const std::string& default_policy_yaml();

// Refuses deny where this node has no hook that can deny the operation:
// connect/bind/socket(AF_INET/6) deny through cgroup hooks; everything else
// only through BPF LSM, absent here (lsm_available false). The error names
// the rule and its line and offers kill.
Result<void> check_enforceable(const Policy& p, bool lsm_available);

struct SelVal {
  __u64 match = 0, except = 0;
};

struct Compiled {
  std::vector<std::string> rule_names;  // bit i -> name
  std::vector<std::string> rule_severity;
  std::vector<uint32_t> rule_actions;
  // [side][kind] masks
  std::array<std::array<__u64, SEC_KIND_MAX>, 2> kinds{};
  sec_gen gen{};  // masks (need_*, except_*, kill, deny, alert)
  std::vector<sec_rule> rules;                   // index = bit
  std::map<std::string, __u64> exact;            // path -> mask
  std::map<std::string, __u64> prefix;           // prefix -> mask (shorter prefixes folded in)
  std::map<std::string, SelVal> bins;            // comm -> masks
  std::vector<Rule> source;                      // for cgroup selectors
  __u64 args_rules = 0;                          // rules with exec argument patterns (decided in userspace)
  bool k8s = false;                              // a rule selects by namespace or pod labels
};

Result<Compiled> compile_policy(const Policy& p);

// The selector masks of one cgroup (path relative to the v2 root); `ws`:
// the declared workloads this cgroup belongs to (namespace/label selectors).
SelVal cgroup_masks(const Compiled& c, const std::string& rel_path,
                    const std::vector<const identity::DeclaredWorkload*>& ws = {});

}  // namespace kagami::modules::security
