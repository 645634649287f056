// The policy model: workloads grouped by labels, and policies parsed from
// Kubernetes NetworkPolicy YAML (networking.k8s.io/v1) and the Kagami kind
// (kagami.io/v1alpha1 KagamiNetworkPolicy: deny rules, SCTP, ICMP types).
//
// The same Workload list is what the Kubernetes metadata feed will fill
// (name, namespace, labels, addresses); config-declared workloads
// (bare-metal CNFs, tests) name a netns or a cgroup and may list addresses.
//
// Parsing never touches the kernel. Every error names the file, line and
// column (1-based, from yaml-cpp's Mark) and the field path:
//   policies/web.yaml:12:9: spec.ingress[0].ports[1].endPort: must be >= port (got 80 < 443)
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace kagami::policy {

using Labels = std::map<std::string, std::string>;

struct Cidr {
  uint8_t family = 4;             // 4 or 6
  std::array<uint8_t, 16> addr{}; // network order; IPv4 in the first 4 bytes
  uint8_t len = 0;                // prefix length
  bool contains(const Cidr& o) const;  // o is inside this (same family, o.len >= len)
  std::string str() const;
  auto operator<=>(const Cidr&) const = default;
};
// "10.0.0.0/8", "fd00::/64", or a bare address (a host prefix). Host bits
// set beyond the prefix are an error (Kubernetes accepts them; a typo is
// likelier than intent, and the message says which bits).
Result<Cidr> parse_cidr(std::string_view s);

struct Workload {
  std::string name;
  std::string ns = "default";
  Labels labels;
  std::string netns;            // /run/netns/<netns> or an absolute path
  std::string cgroup;           // a cgroup v2 directory (identity only; see docs/policy.md)
  std::vector<Cidr> addresses;  // host prefixes; from `ips:` or read from the netns
};

struct Requirement {
  enum class Op { In, NotIn, Exists, DoesNotExist };
  std::string key;
  Op op = Op::In;
  std::vector<std::string> values;
};

// A Kubernetes LabelSelector; empty matches everything.
struct Selector {
  Labels match_labels;
  std::vector<Requirement> exprs;
  bool matches(const Labels& l) const;
};

struct IpBlock {
  Cidr cidr;
  std::vector<Cidr> except;
};

// One entry of from/to. pod and ns absent with ip_block set: an ipBlock peer.
struct Peer {
  std::optional<Selector> pod;
  std::optional<Selector> ns;
  std::optional<IpBlock> ip_block;
};

struct PortRange {
  uint8_t proto = 6;     // IPPROTO_TCP/UDP/SCTP/ICMP/ICMPV6
  bool any_port = true;  // no port given: every port (or every ICMP type)
  uint16_t first = 0, last = 0;
};

// A GTP-U-aware rule (KagamiNetworkPolicy `gtpu:`): matches tunnelled
// traffic (outer UDP 2152) by TEID, QFI (PDU Session Container) and the
// inner packet's addresses, protocol and destination port. Absent fields
// match everything.
struct GtpMatch {
  std::optional<uint32_t> teid;
  std::optional<uint8_t> qfi;
  std::optional<Cidr> src, dst;   // inner source / destination prefixes
  bool any_port = true;           // inner ports absent: every protocol and port
  std::vector<PortRange> ports;
};

// Modify actions of an allow rule (KagamiNetworkPolicy `modify:`), applied
// to the packets the rule admits: DSCP (fixed, or from the QFI of a GTP-U
// packet), IPv4 TTL / IPv6 hop limit, redirect out of another interface.
struct Modify {
  std::optional<uint8_t> dscp;           // 0..63
  std::map<uint8_t, uint8_t> qfi_dscp;   // dscpFromQfi: QFI -> DSCP (gtpu rules only)
  std::optional<uint8_t> ttl;            // 1..255
  std::string redirect;                  // interface name; resolved at every apply
};

struct Rule {
  bool deny = false;
  std::optional<Modify> modify;
  std::optional<GtpMatch> gtpu;  // set: a rule on the tunnel's inner flows, not on the outer packet
  bool any_peer = true;          // from/to absent or empty
  std::vector<Peer> peers;
  bool any_port = true;          // ports absent or empty: every protocol and port
  std::vector<PortRange> ports;
  std::string name;              // "<ns>/<policy>:ingress[0]", the counters' label
};

struct Policy {
  std::string kind;              // NetworkPolicy | KagamiNetworkPolicy | KagamiEdgePolicy
  std::string name, ns = "default";
  Selector pod_selector;
  bool isolates_ingress = false, isolates_egress = false;
  std::vector<Rule> ingress, egress;
  // KagamiEdgePolicy: sources dropped by XDP at the node's edge interfaces
  // (spec.deny: [CIDR, ...]); such a policy selects no pods.
  std::vector<Cidr> edge_deny;
  std::string file;
  int line = 0;
};

// Namespace name -> labels. Every namespace also has
// kubernetes.io/metadata.name = <name>, as the API server sets it.
using Namespaces = std::map<std::string, Labels>;
Labels namespace_labels(const Namespaces& nss, const std::string& ns);

// One YAML text (one or more documents separated by ---). `file` names
// the source in errors. Kinds other than the two above are errors.
Result<std::vector<Policy>> parse_policies(std::string_view text, const std::string& file);

// Files and folders (every *.yaml / *.yml directly inside a folder, sorted).
Result<std::vector<Policy>> load_policy_files(const std::vector<std::string>& paths);

// The agent config's `workloads:` list (already JSON) and `policy:` section.
struct PolicyConfig {
  std::vector<std::string> files;
  std::vector<std::string> interfaces;  // host-side interfaces to enforce on
  std::vector<std::string> edge_interfaces;  // node-edge interfaces for the XDP deny-list
  Namespaces namespaces;
  uint32_t sample_rate = 100, sample_burst = 200;  // flow events per second per CPU
};
Result<std::vector<Workload>> parse_workloads(const nlohmann::json& list);
Result<PolicyConfig> parse_policy_config(const nlohmann::json& section);

}  // namespace kagami::policy
