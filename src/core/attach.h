// AttachPoint: where one BPF program attaches, parsed from the operator's
// "kind:target[:option]" strings (CLI --attach and the YAML config):
//
//   xdp:eth0                 XDP, best mode the driver offers (native, else generic)
//   xdp:eth0:native|generic  XDP in a forced mode
//   tc:eth0:ingress|egress   TC clsact (netlink; libbpf 1.1 has no tcx)
//   tracepoint:sched/sched_process_exec
//   raw_tp:sched_switch      raw tracepoint
//   tp_btf:sched_switch      BTF-typed raw tracepoint
//   cgroup:/sys/fs/cgroup/x:connect4   (connect4|connect6|sendmsg4|sendmsg6|bind4|bind6|
//                                      sock_create|ingress|egress|sockops)
//   sk_msg:<sockmap name>    sk_msg verdict on a sockmap/sockhash of the object
//   sk_skb:<sockmap name>:parser|verdict   sk_skb stream parser / stream verdict on it
//   uprobe:/usr/bin/bash:readline      uprobe (uretprobe: for return)
//
// A trailing "@prog_name" picks a program in a multi-program object
// ("tc:eth0:egress@obs_tc_egress"); a trailing "#N" sets the order among
// programs sharing one XDP or TC hook (lower runs first; default 100).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace kagami::core {

struct AttachPoint {
  enum class Kind { Xdp, Tc, Tracepoint, RawTp, TpBtf, Cgroup, SkMsg, SkSkb, Uprobe, Uretprobe };
  Kind kind = Kind::Xdp;
  std::string target;   // ifname | "category/name" | tp name | cgroup path | map name | binary
  std::string option;   // xdp mode | tc direction | cgroup attach type | uprobe symbol | parser/verdict
  std::string program;  // program name inside the object; "" = the one whose type fits
  int order = 100;      // position among programs on one XDP/TC hook

  static Result<AttachPoint> parse(std::string_view spec);
  std::string to_string() const;
  bool operator==(const AttachPoint&) const = default;
};

// The cgroup hook names accepted after "cgroup:<path>:".
const std::vector<std::string>& cgroup_attach_options();

}  // namespace kagami::core
