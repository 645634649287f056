// Declared workloads: the agent config's top-level `workloads:` list
// ({name, namespace, labels, netns | cgroup}), read without depending on
// any module, and resolved to the cgroups their processes run in.
//
// The same shape is what the Kubernetes API-server feed will fill later
// (name, namespace, labels per pod; the pod's cgroup from its UID); a
// consumer that selects by namespace and labels (the security module's
// selectors) keeps working unchanged when the feed replaces the list.
//
//   parse_declared_workloads(json)        -> [DeclaredWorkload]   (errors name workloads[i].field)
//   LabelSelector::matches(labels)        Kubernetes matchLabels + matchExpressions
//   workload_cgroups(workloads, root)     -> per workload, the cgroup paths (relative to the v2 root)
//
// Resolution: a `cgroup:` workload is that cgroup and everything below it (a
// pod slice holds its containers' scopes); a `netns:` workload is the
// cgroups of the processes whose /proc/<pid>/ns/net is that namespace (one
// scan of /proc; the caller refreshes it as processes come and go).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace kagami::identity {

using Labels = std::map<std::string, std::string>;

struct DeclaredWorkload {
  std::string name;
  std::string ns = "default";
  Labels labels;
  std::string netns;   // a name under /run/netns or an absolute path
  std::string cgroup;  // a cgroup v2 directory: absolute file path, or relative to the v2 root ("/kubepods.slice/...")
};

// The `workloads:` list as JSON (the config folds YAML into JSON). Keys the
// policy module also reads (ips) are accepted and ignored here; unknown keys
// are errors. null or absent: no workloads.
Result<std::vector<DeclaredWorkload>> parse_declared_workloads(const nlohmann::json& list);

// A Kubernetes LabelSelector: every matchLabels pair and every expression
// must hold; an empty selector matches everything.
struct LabelRequirement {
  enum class Op { In, NotIn, Exists, DoesNotExist };
  std::string key;
  Op op = Op::In;
  std::vector<std::string> values;
};
struct LabelSelector {
  Labels match_labels;
  std::vector<LabelRequirement> exprs;
  bool empty() const { return match_labels.empty() && exprs.empty(); }
  bool matches(const Labels& l) const;
};
// "In" | "NotIn" | "Exists" | "DoesNotExist" (Kubernetes spelling).
Result<LabelRequirement::Op> label_op(const std::string& s);

// Per workload (same index), the cgroup paths relative to the v2 root
// ("/..."): a cgroup workload's directory (its descendants are the caller's
// to include by prefix: `subtree` says so); a netns workload's processes'
// cgroups. A workload whose netns or cgroup does not exist (yet) resolves to
// nothing, not an error: it is covered when it appears.
struct WorkloadCgroups {
  std::set<std::string> exact;    // netns workloads: these cgroups
  std::set<std::string> subtree;  // cgroup workloads: these cgroups and below
  bool contains(const std::string& rel) const;
};
std::vector<WorkloadCgroups> workload_cgroups(const std::vector<DeclaredWorkload>& ws, const std::string& cgroup_root,
                                              const std::string& proc_root = "/proc");

}  // namespace kagami::identity
