// Compiles workloads + policies into the datapath's tables (abi.h): the
// identity of every address prefix, the isolation flags of every local
// identity, and the allow/deny rule prefixes. Pure: no kernel access, so
// the unit tests check it by hand and the module writes the result into
// the inactive slot (policy_module.cc).
//
// Identities: an address's identity is the pair (policies that select it,
// peers it satisfies). The peers of a prefix P (its longest match in the
// trie) are the selector peers of the workload owning P, plus every ipBlock
// whose cidr contains P and none of whose `except` contains P: an except
// block is itself in the trie, so an address inside it finds it (or
// something longer) first. Addresses with the same pair share an identity.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "modules/policy/model.h"

namespace kagami::policy {

// Rule names -> ids, stable across compiles (counters keep their labels).
class RuleIds {
 public:
  uint32_t id(const std::string& name);
  const std::string& name(uint32_t id) const;
 private:
  std::map<std::string, uint32_t> ids_;
  std::vector<std::string> names_{""};  // id 0: no rule
};

struct RuleEntry {
  bool deny = false;
  uint8_t dir = 0;        // enum pol_dir
  uint8_t proto = 0;      // 0: any
  uint32_t local = 0, peer = 0;
  uint16_t port = 0;
  uint8_t port_bits = 0;  // 0..16 leading bits of port that must match
  uint32_t rule = 0;
  uint32_t mod = 0;       // 1 + index into Compiled::mods; 0: none
};

// One GTP-U rule entry (abi.h struct pol_gtp_rule) for one local identity
// and one inner port range.
struct GtpEntry {
  uint8_t dir = 0;
  bool deny = false;
  uint32_t local = 0, rule = 0;
  std::optional<uint32_t> teid;
  std::optional<uint8_t> qfi;
  std::optional<Cidr> src, dst;
  bool any_proto = true;
  uint8_t proto = 0;
  uint16_t port_lo = 0, port_hi = 65535;
  uint32_t mod = 0;       // 1 + index into Compiled::mods; 0: none
};

struct Compiled {
  std::vector<GtpEntry> gtp;                        // in policy order, written in that order
  struct ModEntry {
    uint32_t rule = 0;
    std::string name;
    Modify modify;
  };
  std::vector<ModEntry> mods;                       // rules with Modify actions
  std::vector<std::pair<Cidr, uint32_t>> prefixes;  // prefix -> identity
  std::map<uint32_t, uint32_t> local_flags;         // identity -> POL_LOCAL_*
  std::vector<RuleEntry> rules;
  std::vector<std::pair<Cidr, uint32_t>> edge;      // XDP deny-list: source prefix -> rule
  std::map<uint32_t, std::string> identity_names;   // for events: "default/server", "10.0.0.0/8"
  size_t identities = 0;
};

struct CompileLimits {
  size_t max_prefixes = 131072;   // per slot: half of POL_IP_MAX_ENTRIES (v4 and v6 each)
  size_t max_rules = 262144;      // per slot and table: half of POL_RULES_MAX_ENTRIES
  size_t max_gtp = 128;           // per slot: POL_GTP_MAX_RULES
  size_t max_mods = 64;           // per slot: POL_MOD_MAX (rules with modify:)
};

Result<Compiled> compile(const std::vector<Workload>& workloads, const std::vector<Policy>& policies,
                         const Namespaces& namespaces, RuleIds& ids, const CompileLimits& lim = {});

// The prefixes (value, leading bits) that cover [first, last] exactly.
std::vector<std::pair<uint16_t, uint8_t>> port_prefixes(uint16_t first, uint16_t last);

}  // namespace kagami::policy
