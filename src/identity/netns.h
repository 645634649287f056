// Which workload an interface belongs to, through its network namespace.
//
// A CNF's traffic on a Kubernetes node crosses the host-side end of its
// pod's veth (or another paired device). The other end lives in the pod's
// network namespace, which every container of the pod shares. So:
//   interface -> IFLA_LINK_NETNSID (the peer's namespace, as an id the host
//   namespace assigned) -> a process whose /proc/<pid>/ns/net has that id
//   (RTM_GETNSID on the namespace fd) -> /proc/<pid>/cgroup -> Workload.
// No CNI state and no API server are needed; the pod UID is what cgroups
// carry (pod names and namespaces come with the Kubernetes layer).
#pragma once

#include <string>

#include "common/result.h"
#include "identity/identity.h"

namespace kagami::identity {

struct InterfaceOwner {
  bool peer_elsewhere = false;  // the interface's peer is in another namespace
  int32_t peer_nsid = -1;       // its id in this namespace (-1: none)
  int pid = 0;                  // a process found in that namespace (0: none)
  Workload workload;            // that process's workload ("" fields if none)
};

// Needs root (reads every /proc/<pid>/ns/net). An interface with no peer in
// another namespace (a NIC, a bridge, a veth whose ends are both here) is
// no error: peer_elsewhere is false. A peer namespace no process holds (an
// `ip netns add` namespace, bind-mounted only) gives pid 0.
Result<InterfaceOwner> interface_owner(const std::string& ifname);

}  // namespace kagami::identity
