// Interval attribution; see attribution.h.
#include "modules/energy/attribution.h"

namespace kagami::modules::energy {

uint64_t mul_div(uint64_t a, uint64_t b, uint64_t c) {
  if (c == 0) return 0;
  const unsigned __int128 p = static_cast<unsigned __int128>(a) * b / c;
  return p > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(p);
}

IntervalResult attribute(const IntervalInput& in) {
  IntervalResult r;
  r.node_nj = in.node_nj;
  const uint64_t idle = in.idle_nj < in.node_nj ? in.idle_nj : in.node_nj;
  const uint64_t dynamic = in.node_nj - idle;

  uint64_t work_ns = 0;
  for (const auto& [id, ns] : in.workload_ns) work_ns += ns;
  r.activity_ns = work_ns + in.softirq_net_ns + in.softirq_other_ns + in.ksoftirqd_ns + in.other_busy_ns;
  // The weights of dynamic energy: nanoseconds, or counter counts.
  const auto& weights = in.by_counter ? in.workload_ctr : in.workload_ns;
  uint64_t activity = r.activity_ns, net_w = in.softirq_net_ns;
  if (in.by_counter) {
    activity = in.softirq_net_ctr + in.softirq_other_ctr + in.ksoftirqd_ctr + in.other_busy_ctr;
    for (const auto& [id, c] : in.workload_ctr) activity += c;
    net_w = in.softirq_net_ctr;
  }
  r.activity = activity;
  r.by_counter = in.by_counter;

  uint64_t given = 0;  // to workloads (cpu + net + idle share)
  if (activity > 0) {
    for (const auto& [id, w] : weights) {
      if (!w) continue;
      const uint64_t e = mul_div(dynamic, w, activity);
      r.workload_nj[id] += e;
      given += e;
    }
    const uint64_t net = mul_div(dynamic, net_w, activity);
    uint64_t packets = 0;
    for (const auto& [id, p] : in.net_packets) packets += p;
    uint64_t net_given = 0;
    if (packets > 0) {
      for (const auto& [id, p] : in.net_packets) {
        if (!p) continue;
        const uint64_t e = mul_div(net, p, packets);
        r.workload_nj[id] += e;
        r.workload_net_nj[id] += e;
        net_given += e;
      }
    }
    given += net_given;
    r.network_nj = net - net_given;
  }
  uint64_t idle_given = 0;
  if (in.idle_policy == IdlePolicy::Share && work_ns > 0) {
    for (const auto& [id, ns] : in.workload_ns) {
      if (!ns) continue;
      const uint64_t e = mul_div(idle, ns, work_ns);
      r.workload_nj[id] += e;
      idle_given += e;
    }
  }
  given += idle_given;
  r.idle_nj = idle - idle_given;
  // The remainder: never negative, since every share above is a floor of a
  // fraction <= 1 of its pool and the pools partition node.
  r.system_nj = in.node_nj - r.idle_nj - r.network_nj - given;
  return r;
}

}  // namespace kagami::modules::energy
