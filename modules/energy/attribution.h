// Attribution of one interval's node energy (docs/energy.md, "Attribution").
// Pure integer arithmetic on nanojoules and nanoseconds, so that
//
//     sum(workloads) + idle + system + network = node      exactly, every interval.
//
//   dynamic = node - idle            idle = the model's idle power x interval,
//                                    capped at node
//   each workload gets floor(dynamic x its CPU ns / activity ns)
//   network (NET_RX+NET_TX softirq) gets floor(dynamic x net ns / activity ns),
//     split over pods by their packet counts (transport), floor again; what
//     no pod can be given stays node-level "network"
//   idle_policy "node":  idle stays a node-level series (default)
//   idle_policy "share": idle is split like dynamic energy over workloads
//   system = everything else: kernel threads outside cgroups, ksoftirqd,
//     other softirqs, and every rounding remainder (< 1 nJ per workload).
//
// activity ns = workloads + softirq (all vectors) + ksoftirqd + unaccounted
// busy time; when it is 0, dynamic energy goes to system.
//
// With `by_counter`, the same pools are weighted by the activity counter
// (instructions) instead of nanoseconds: workload i gets
// floor(dynamic x ctr_i / activity ctr), network floor(dynamic x net ctr /
// activity ctr), and so on. Idle (policy share) is still split by CPU time:
// idle power is what the node draws doing nothing, not a function of work.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace kagami::modules::energy {

enum class IdlePolicy { Node, Share };

struct IntervalInput {
  uint64_t node_nj = 0;
  uint64_t idle_nj = 0;                  // capped at node_nj
  // Per cgroup id: on-CPU ns in the interval.
  std::unordered_map<uint64_t, uint64_t> workload_ns;
  uint64_t softirq_net_ns = 0;           // NET_RX + NET_TX
  uint64_t softirq_other_ns = 0;
  uint64_t ksoftirqd_ns = 0;
  uint64_t other_busy_ns = 0;            // busy time in no workload (folded, lost to LRU races)
  // Per cgroup id: packets in the interval (transport), weights for network energy.
  std::unordered_map<uint64_t, uint64_t> net_packets;
  IdlePolicy idle_policy = IdlePolicy::Node;
  // Activity counter weights (instructions), used for dynamic energy when
  // by_counter; same pools as the ns fields above.
  bool by_counter = false;
  std::unordered_map<uint64_t, uint64_t> workload_ctr;
  uint64_t softirq_net_ctr = 0, softirq_other_ctr = 0, ksoftirqd_ctr = 0, other_busy_ctr = 0;
};

struct IntervalResult {
  std::unordered_map<uint64_t, uint64_t> workload_nj;      // cpu + idle share (policy share)
  std::unordered_map<uint64_t, uint64_t> workload_net_nj;  // network share (also in workload_nj)
  uint64_t idle_nj = 0;     // node-level idle (all of it under policy node; the remainder under share)
  uint64_t network_nj = 0;  // node-level network energy no pod was given
  uint64_t system_nj = 0;
  uint64_t node_nj = 0;
  uint64_t activity_ns = 0;
  uint64_t activity = 0;    // the divisor of dynamic energy: activity_ns, or counts when by_counter
  bool by_counter = false;
};

// floor(a * b / c) without overflow; c > 0.
uint64_t mul_div(uint64_t a, uint64_t b, uint64_t c);

IntervalResult attribute(const IntervalInput& in);

}  // namespace kagami::modules::energy
