// Reading the transport maps and turning them into JSON and metric families.
// Shared by TransportModule (fds from the program manager) and the kernel
// tests (fds from a skeleton).
#include <fcntl.h>
#include <linux/types.h>
#include <net/if.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "bpf/kernel.h"
#include "common/fs.h"
#include "bpf/map_view.h"
#include "common/fd.h"
#include "identity/identity.h"
#include "modules/transport/abi.h"
#include "modules/transport/transport.h"

namespace kagami::modules {
namespace transport_detail {

// The labels that identify a workload in every series.
struct WorkloadLabels {
  std::string pod_uid, container, runtime, workload;
  auto tie() const { return std::tie(pod_uid, container, runtime, workload); }
  bool operator<(const WorkloadLabels& o) const { return tie() < o.tie(); }
};

}  // namespace transport_detail
using transport_detail::WorkloadLabels;

struct TransportRetired {
  transport_traffic traffic{};
  transport_tcp tcp{};
  std::map<std::pair<uint8_t, uint8_t>, uint64_t> states;
  uint64_t drops = 0;
  uint64_t pruned = 0;  // cgroups removed from the maps
  // Workloads that had their own series at the last scrape (sticky top-N).
  std::set<WorkloadLabels> kept;
};

TransportRetired* new_transport_retired() { return new TransportRetired(); }
void destroy_transport_retired(TransportRetired* r) { delete r; }

namespace {

constexpr std::array<const char*, TRANSPORT_L4_MAX> kL4 = {"tcp", "udp", "sctp", "other"};
constexpr std::array<const char*, TRANSPORT_DIR_MAX> kDir = {"ingress", "egress"};
constexpr std::array<const char*, TRANSPORT_HOOK_MAX> kHooks = {
    "cgroup_ingress", "cgroup_egress", "kfree_skb", "tcp_retransmit_skb",
    "tcp_send_reset", "tcp_receive_reset", "inet_sock_set_state", "tcp_probe"};
constexpr std::array<const char*, TRANSPORT_FOLD_MAX> kFold = {"pod_traffic", "pod_tcp", "tcp_state", "drops"};

// include/net/tcp_states.h; index 0 is not a state.
std::string tcp_state_name(unsigned s) {
  static constexpr std::array<const char*, 14> kNames = {
      "UNKNOWN",   "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1",    "FIN_WAIT2",     "TIME_WAIT",
      "CLOSE",     "CLOSE_WAIT",  "LAST_ACK", "LISTEN",   "CLOSING",      "NEW_SYN_RECV",  "BOUND_INACTIVE"};
  return s < kNames.size() ? kNames[s] : "STATE_" + std::to_string(s);
}

struct StateCount {
  uint8_t from = 0, to = 0;
  uint64_t count = 0;
};

struct PodRaw {
  transport_traffic traffic{};
  transport_tcp tcp{};
  bool has_traffic = false, has_tcp = false;
  std::vector<StateCount> states;
};

struct Raw {
  std::map<uint64_t, PodRaw> pods;
  std::vector<std::pair<transport_drop_key, uint64_t>> drops;
  transport_traffic other_traffic{};
  transport_tcp other_tcp{};
  std::array<uint64_t, TRANSPORT_FOLD_MAX> overflow{};
  std::array<uint64_t, TRANSPORT_HOOK_MAX> hook_runs{};
};

// Walks a hash map through its typed, layout-checked view (bpf/map_view.h):
// in batches where the kernel can, so a scrape costs a few syscalls per map
// rather than two per entry.
template <typename K, typename V, typename F>
Result<void> for_each(int fd, const char* name, F&& f) {
  auto m = bpf::MapView<K, V>::open(fd, name);
  if (!m) return m.error();
  auto r = m->for_each(f);
  if (!r) return r.error();
  return ok();
}

template <typename V>
Result<V> lookup_array(int fd, uint32_t idx, const char* name) {
  auto m = bpf::ArrayView<V>::open(fd, name);
  if (!m) return m.error();
  return m->get(idx);
}

Result<Raw> read_raw(const TransportMapFds& fds) {
  Raw r;
  KAGAMI_TRY((for_each<transport_cg_key, transport_traffic>(
      fds.pod_traffic, TRANSPORT_MAP_POD_TRAFFIC, [&](const transport_cg_key& k, const transport_traffic& v) {
        auto& p = r.pods[k.cgroup_id];
        p.traffic = v;
        p.has_traffic = true;
      })));
  KAGAMI_TRY((for_each<transport_cg_key, transport_tcp>(
      fds.pod_tcp, TRANSPORT_MAP_POD_TCP, [&](const transport_cg_key& k, const transport_tcp& v) {
        auto& p = r.pods[k.cgroup_id];
        p.tcp = v;
        p.has_tcp = true;
      })));
  KAGAMI_TRY((for_each<transport_state_key, uint64_t>(
      fds.tcp_state, TRANSPORT_MAP_TCP_STATE, [&](const transport_state_key& k, uint64_t v) {
        r.pods[k.cgroup_id].states.push_back({k.old_state, k.new_state, v});
      })));
  KAGAMI_TRY((for_each<transport_drop_key, uint64_t>(
      fds.drops, TRANSPORT_MAP_DROPS,
      [&](const transport_drop_key& k, uint64_t v) { r.drops.emplace_back(k, v); })));
  auto ot = lookup_array<transport_traffic>(fds.other_traffic, 0, TRANSPORT_MAP_OTHER_TRAFFIC);
  if (!ot) return ot.error();
  r.other_traffic = *ot;
  auto oc = lookup_array<transport_tcp>(fds.other_tcp, 0, TRANSPORT_MAP_OTHER_TCP);
  if (!oc) return oc.error();
  r.other_tcp = *oc;
  // One view and one batched read for the whole array, not a view per index.
  auto overflow = bpf::ArrayView<uint64_t>::open(fds.overflow, TRANSPORT_MAP_OVERFLOW);
  if (!overflow) return overflow.error();
  auto folds = overflow->read_summed(TRANSPORT_FOLD_MAX);
  if (!folds) return folds.error();
  for (uint32_t i = 0; i < TRANSPORT_FOLD_MAX; i++) r.overflow[i] = (*folds)[i];
  // Per-CPU array: summed over the CPUs.
  auto hook_view = bpf::ArrayView<uint64_t>::open(fds.hook_runs, TRANSPORT_MAP_HOOK_RUNS);
  if (!hook_view) return hook_view.error();
  auto runs = hook_view->read_summed(TRANSPORT_HOOK_MAX);
  if (!runs) return runs.error();
  for (uint32_t i = 0; i < TRANSPORT_HOOK_MAX; i++) r.hook_runs[i] = (*runs)[i];
  std::sort(r.drops.begin(), r.drops.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return r;
}

nlohmann::json traffic_json(const transport_traffic& t) {
  nlohmann::json j;
  for (int d = 0; d < TRANSPORT_DIR_MAX; d++)
    for (int l = 0; l < TRANSPORT_L4_MAX; l++)
      j[kDir[d]][kL4[l]] = {{"packets", t.packets[d][l]}, {"bytes", t.bytes[d][l]}};
  return j;
}

nlohmann::json tcp_json(const transport_tcp& t) {
  nlohmann::json buckets = nlohmann::json::array();
  for (uint64_t b : t.rtt_hist) buckets.push_back(b);
  return {{"retransmits", t.retransmits},
          {"resets_sent", t.resets_sent},
          {"resets_received", t.resets_received},
          {"rtt", {{"samples", t.rtt_samples}, {"sum_us", t.rtt_sum_us}, {"buckets", buckets}}}};
}

uint32_t own_netns_ino() {
  struct stat st {};
  return ::stat("/proc/self/ns/net", &st) == 0 ? static_cast<uint32_t>(st.st_ino) : 0;
}

// Interface and netns labels of a drop: names only for devices in the
// agent's own namespace (the node's interfaces); a pod's eth0 lives in
// another namespace where the same ifindex means something else.
std::pair<std::string, std::string> iface_labels(uint32_t netns, uint32_t ifindex, uint32_t own) {
  if (ifindex == 0) return {"", ""};
  if (netns == own) {
    char name[IF_NAMESIZE] = {};
    if (if_indextoname(ifindex, name)) return {name, "host"};
    return {"if" + std::to_string(ifindex), "host"};
  }
  return {"if" + std::to_string(ifindex), std::to_string(netns)};
}

WorkloadLabels workload_of(uint64_t cgid, identity::Resolver* resolver) {
  if (cgid == 0) return {"", "", "", "none"};  // no socket: closed ports, pre-socket drops
  if (!resolver) return {"", "", "", "cgroup:" + std::to_string(cgid)};
  auto w = resolver->resolve(cgid);
  if (!w) return {"", "", "", "cgroup:" + std::to_string(cgid)};  // cgroup gone or unseen yet
  WorkloadLabels l{w->pod_uid, w->container_id, w->runtime, ""};
  if (!w->unit.empty())
    l.workload = w->unit;
  else if (w->cgroup_path == "/" || w->cgroup_path.empty())
    l.workload = "host";
  else if (!w->is_pod() && !w->is_container())
    l.workload = w->cgroup_path;
  return l;
}

nlohmann::json workload_json(const WorkloadLabels& l) {
  return {{"pod_uid", l.pod_uid}, {"container", l.container}, {"runtime", l.runtime}, {"workload", l.workload}};
}

void add(transport_traffic& a, const transport_traffic& b) {
  for (int d = 0; d < TRANSPORT_DIR_MAX; d++)
    for (int l = 0; l < TRANSPORT_L4_MAX; l++) {
      a.packets[d][l] += b.packets[d][l];
      a.bytes[d][l] += b.bytes[d][l];
    }
}

void add(transport_tcp& a, const transport_tcp& b) {
  a.retransmits += b.retransmits;
  a.resets_sent += b.resets_sent;
  a.resets_received += b.resets_received;
  a.rtt_samples += b.rtt_samples;
  a.rtt_sum_us += b.rtt_sum_us;
  for (int i = 0; i < TRANSPORT_RTT_BUCKETS; i++) a.rtt_hist[i] += b.rtt_hist[i];
}

uint64_t weight(const PodRaw& p) {
  uint64_t w = 0;
  for (int d = 0; d < TRANSPORT_DIR_MAX; d++)
    for (int l = 0; l < TRANSPORT_L4_MAX; l++) w += p.traffic.bytes[d][l];
  w += p.tcp.retransmits + p.tcp.resets_sent + p.tcp.resets_received;
  for (const auto& s : p.states) w += s.count;
  return w;
}

}  // namespace

std::string drop_reason_name(uint32_t reason) {
  // enum skb_drop_reason from the running kernel, read once.
  static std::once_flag once;
  static std::unordered_map<uint32_t, std::string> names;
  std::call_once(once, [] {
    auto vals = bpf::kernel_enum("skb_drop_reason");
    if (!vals) return;
    for (auto [v, n] : *vals) {
      for (const char* prefix : {"SKB_DROP_REASON_", "SKB_"})
        if (n.rfind(prefix, 0) == 0) {
          n = n.substr(std::strlen(prefix));
          break;
        }
      names.emplace(static_cast<uint32_t>(v), n);
    }
  });
  if (auto it = names.find(reason); it != names.end()) return it->second;
  // Subsystem reasons (mac80211, openvswitch, ...) carry the subsystem id in
  // the upper 16 bits (SKB_DROP_REASON_SUBSYS_SHIFT).
  if (reason >> 16) return "subsys" + std::to_string(reason >> 16) + "_" + std::to_string(reason & 0xffff);
  return "reason_" + std::to_string(reason);
}

Result<nlohmann::json> transport_json_from_fds(const TransportMapFds& fds, const TransportView& view) {
  auto raw = read_raw(fds);
  if (!raw) return raw.error();
  nlohmann::json pods = nlohmann::json::array();
  for (const auto& [cgid, p] : raw->pods) {
    nlohmann::json states = nlohmann::json::array();
    for (const auto& s : p.states)
      states.push_back({{"from", tcp_state_name(s.from)}, {"to", tcp_state_name(s.to)}, {"count", s.count}});
    pods.push_back({{"cgroup_id", cgid},
                    {"workload", workload_json(workload_of(cgid, view.resolver))},
                    {"traffic", traffic_json(p.traffic)},
                    {"tcp", tcp_json(p.tcp)},
                    {"states", states}});
  }
  const uint32_t own = own_netns_ino();
  nlohmann::json drops = nlohmann::json::array();
  for (const auto& [k, n] : raw->drops) {
    auto [ifname, ns] = iface_labels(k.netns_ino, k.ifindex, own);
    drops.push_back({{"cgroup_id", k.cgroup_id},
                     {"netns", k.netns_ino},
                     {"ifindex", k.ifindex},
                     {"interface", ifname},
                     {"reason", k.reason},
                     {"reason_name", drop_reason_name(k.reason)},
                     {"protocol", k.l4 < TRANSPORT_L4_MAX ? kL4[k.l4] : "other"},
                     {"count", n}});
  }
  nlohmann::json overflow, runs;
  for (int i = 0; i < TRANSPORT_FOLD_MAX; i++) overflow[kFold[i]] = raw->overflow[i];
  for (int i = 0; i < TRANSPORT_HOOK_MAX; i++) runs[kHooks[i]] = raw->hook_runs[i];
  nlohmann::json out{{"pods", pods},
                     {"drops", drops},
                     {"other", {{"traffic", traffic_json(raw->other_traffic)}, {"tcp", tcp_json(raw->other_tcp)}}},
                     {"overflow", overflow},
                     {"hook_runs", runs}};
  if (view.retired)
    out["retired"] = {{"cgroups", view.retired->pruned},
                      {"traffic", traffic_json(view.retired->traffic)},
                      {"tcp", tcp_json(view.retired->tcp)},
                      {"drops", view.retired->drops}};
  return out;
}

Result<std::vector<core::MetricFamily>> transport_metrics_from_fds(const TransportMapFds& fds,
                                                                   const TransportView& view) {
  auto raw = read_raw(fds);
  if (!raw) return raw.error();

  // 1. Group cgroups by workload labels (two cgroup ids can resolve to the
  //    same labels, e.g. a container restarted under one pod), then keep the
  //    heaviest top_n_pods workloads and fold the rest into "other".
  struct Agg {
    PodRaw sum;
    std::map<std::pair<uint8_t, uint8_t>, uint64_t> states;
    uint64_t weight = 0;
  };
  std::map<WorkloadLabels, Agg> by_workload;
  std::unordered_map<uint64_t, WorkloadLabels> label_of;
  for (const auto& [cgid, p] : raw->pods) {
    auto l = workload_of(cgid, view.resolver);
    label_of[cgid] = l;
    auto& a = by_workload[l];
    add(a.sum.traffic, p.traffic);
    add(a.sum.tcp, p.tcp);
    for (const auto& s : p.states) a.states[{s.from, s.to}] += s.count;
    a.weight += weight(p);
  }
  std::vector<std::pair<uint64_t, WorkloadLabels>> ranked;
  for (const auto& [l, a] : by_workload) ranked.emplace_back(a.weight, l);
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  const WorkloadLabels kOther{"", "", "", "other"};
  // Membership is sticky when the caller keeps state (view.retired): a
  // workload that had its own series keeps it while it has counters, and
  // new ones fill free slots by weight. Otherwise a workload moving in or
  // out of the top N would move its totals out of or into "other", and
  // "other" would go backwards, which Prometheus reads as a counter reset.
  std::set<WorkloadLabels> chosen;
  if (view.retired)
    for (const auto& l : view.retired->kept)
      if (chosen.size() < view.top_n_pods && by_workload.count(l)) chosen.insert(l);
  for (const auto& [w, l] : ranked) {
    if (chosen.size() >= view.top_n_pods) break;
    if (l.workload != "other") chosen.insert(l);
  }
  if (view.retired) view.retired->kept = chosen;

  Agg other;
  add(other.sum.traffic, raw->other_traffic);  // folded in the kernel (map full)
  add(other.sum.tcp, raw->other_tcp);
  bool have_other = raw->overflow[TRANSPORT_FOLD_TRAFFIC] || raw->overflow[TRANSPORT_FOLD_TCP];
  if (view.retired && view.retired->pruned) {  // dead cgroups taken out of the maps
    add(other.sum.traffic, view.retired->traffic);
    add(other.sum.tcp, view.retired->tcp);
    for (const auto& [k, n] : view.retired->states) other.states[k] += n;
    have_other = true;
  }
  size_t folded = 0;
  std::vector<std::pair<WorkloadLabels, const Agg*>> kept;
  for (const auto& [w, l] : ranked) {
    const Agg& a = by_workload[l];
    if (chosen.count(l)) {
      kept.emplace_back(l, &a);
      continue;
    }
    add(other.sum.traffic, a.sum.traffic);
    add(other.sum.tcp, a.sum.tcp);
    for (const auto& [k, n] : a.states) other.states[k] += n;
    folded++;
    have_other = true;
  }
  if (have_other) kept.emplace_back(kOther, &other);

  auto labels = [&](const WorkloadLabels& l) {
    return std::map<std::string, std::string>{{"node", view.node},
                                              {"pod_uid", l.pod_uid},
                                              {"container", l.container},
                                              {"runtime", l.runtime},
                                              {"workload", l.workload}};
  };

  core::MetricFamily packets{"kagami_transport_packets_total",
                             "Packets to/from sockets of a workload (cgroup_skb; GSO/GRO segments counted).",
                             "counter", {}};
  core::MetricFamily bytes{"kagami_transport_bytes_total",
                           "IP bytes to/from sockets of a workload (cgroup_skb).", "counter", {}};
  core::MetricFamily retrans{"kagami_transport_tcp_retransmits_total",
                             "TCP segments retransmitted by sockets of a workload.", "counter", {}};
  core::MetricFamily resets{"kagami_transport_tcp_resets_total",
                            "TCP resets sent/received by sockets of a workload.", "counter", {}};
  core::MetricFamily states{"kagami_transport_tcp_state_changes_total",
                            "TCP state transitions of sockets of a workload.", "counter", {}};
  core::MetricFamily rtt{"kagami_transport_tcp_srtt_microseconds",
                         "Smoothed RTT seen on each received segment (tcp:tcp_probe), microseconds.",
                         "histogram", {}};
  for (const auto& [l, a] : kept) {
    for (int d = 0; d < TRANSPORT_DIR_MAX; d++)
      for (int p = 0; p < TRANSPORT_L4_MAX; p++) {
        if (!a->sum.traffic.packets[d][p] && !a->sum.traffic.bytes[d][p]) continue;
        auto lb = labels(l);
        lb["direction"] = kDir[d];
        lb["protocol"] = kL4[p];
        packets.samples.push_back({lb, static_cast<double>(a->sum.traffic.packets[d][p]), ""});
        bytes.samples.push_back({lb, static_cast<double>(a->sum.traffic.bytes[d][p]), ""});
      }
    const auto& t = a->sum.tcp;
    if (t.retransmits) retrans.samples.push_back({labels(l), static_cast<double>(t.retransmits), ""});
    if (t.resets_sent || t.resets_received) {
      auto lb = labels(l);
      lb["direction"] = "sent";
      resets.samples.push_back({lb, static_cast<double>(t.resets_sent), ""});
      lb["direction"] = "received";
      resets.samples.push_back({lb, static_cast<double>(t.resets_received), ""});
    }
    for (const auto& [k, n] : a->states) {
      auto lb = labels(l);
      lb["from"] = tcp_state_name(k.first);
      lb["to"] = tcp_state_name(k.second);
      states.samples.push_back({lb, static_cast<double>(n), ""});
    }
    if (t.rtt_samples) {
      // Bucket i holds [2^i, 2^(i+1)) us, integers: its upper bound is 2^(i+1)-1.
      uint64_t cum = 0;
      for (int i = 0; i < TRANSPORT_RTT_BUCKETS; i++) {
        cum += t.rtt_hist[i];
        auto lb = labels(l);
        lb["le"] = i == TRANSPORT_RTT_BUCKETS - 1 ? "+Inf" : std::to_string((uint64_t{2} << i) - 1);
        rtt.samples.push_back({lb, static_cast<double>(cum), "_bucket"});
      }
      rtt.samples.push_back({labels(l), static_cast<double>(t.rtt_sum_us), "_sum"});
      rtt.samples.push_back({labels(l), static_cast<double>(t.rtt_samples), "_count"});
    }
  }

  // 2. Drops: per (workload, interface, reason, protocol), top_n_drops kept.
  core::MetricFamily drops{"kagami_transport_drops_total",
                           "Packets the kernel dropped (skb:kfree_skb), by reason, interface and owning workload.",
                           "counter", {}};
  // Aggregate on a compact key first and build label maps only for the
  // series kept: a node can have thousands of drop keys.
  const uint32_t own = own_netns_ino();
  using DropKey = std::tuple<WorkloadLabels, uint32_t, uint32_t, uint32_t, uint8_t>;  // netns, ifindex, reason, l4
  std::map<DropKey, uint64_t> drop_series;
  for (const auto& [k, n] : raw->drops) {
    auto it = label_of.find(k.cgroup_id);
    drop_series[DropKey{it != label_of.end() ? it->second : workload_of(k.cgroup_id, view.resolver), k.netns_ino,
                        k.ifindex, k.reason, k.l4}] += n;
  }
  std::vector<std::pair<uint64_t, const DropKey*>> dr;
  dr.reserve(drop_series.size());
  for (const auto& [k, n] : drop_series) dr.emplace_back(n, &k);
  const size_t keep = std::min(view.top_n_drops, dr.size());
  auto by_count = [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : *a.second < *b.second;
  };
  std::partial_sort(dr.begin(), dr.begin() + static_cast<std::ptrdiff_t>(keep), dr.end(), by_count);
  uint64_t drops_other = view.retired ? view.retired->drops : 0;
  size_t drops_folded = 0;
  for (size_t i = 0; i < dr.size(); i++) {
    if (i >= keep) {
      drops_other += dr[i].first;
      drops_folded++;
      continue;
    }
    const auto& [wl, netns, ifindex, reason, l4] = *dr[i].second;
    auto lb = labels(wl);
    auto [ifname, ns] = iface_labels(netns, ifindex, own);
    lb["interface"] = ifname;
    lb["netns"] = ns;
    lb["reason"] = drop_reason_name(reason);
    lb["protocol"] = l4 < TRANSPORT_L4_MAX ? kL4[l4] : "other";
    drops.samples.push_back({std::move(lb), static_cast<double>(dr[i].first), ""});
  }
  if (drops_folded || drops_other || raw->overflow[TRANSPORT_FOLD_DROP]) {
    auto lb = labels(kOther);
    lb["interface"] = "other";
    lb["netns"] = "";
    lb["reason"] = "other";
    lb["protocol"] = "other";
    // Drops folded in the kernel (map full) are counted, not keyed.
    drops.samples.push_back({lb, static_cast<double>(drops_other + raw->overflow[TRANSPORT_FOLD_DROP]), ""});
  }

  // 3. What was folded, and how the hooks run.
  core::MetricFamily folded_f{"kagami_transport_folded_series",
                              "Series folded into the workload=\"other\" series at this scrape (top-N bound).",
                              "gauge", {}};
  folded_f.samples.push_back({{{"node", view.node}, {"family", "workload"}}, static_cast<double>(folded), ""});
  folded_f.samples.push_back({{{"node", view.node}, {"family", "drops"}}, static_cast<double>(drops_folded), ""});
  core::MetricFamily overflow_f{"kagami_transport_kernel_overflow_total",
                                "Events whose kernel map was full, counted under \"other\" instead of their key.",
                                "counter", {}};
  for (int i = 0; i < TRANSPORT_FOLD_MAX; i++)
    overflow_f.samples.push_back({{{"node", view.node}, {"map", kFold[i]}}, static_cast<double>(raw->overflow[i]), ""});
  core::MetricFamily pruned_f{"kagami_transport_pruned_cgroups_total",
                              "Deleted cgroups whose counters moved from the kernel maps into workload=\"other\".",
                              "counter", {}};
  pruned_f.samples.push_back(
      {{{"node", view.node}}, static_cast<double>(view.retired ? view.retired->pruned : 0), ""});
  core::MetricFamily runs_f{"kagami_transport_hook_runs_total", "Times each transport hook ran.", "counter", {}};
  for (int i = 0; i < TRANSPORT_HOOK_MAX; i++)
    runs_f.samples.push_back({{{"node", view.node}, {"hook", kHooks[i]}}, static_cast<double>(raw->hook_runs[i]), ""});

  std::vector<core::MetricFamily> out;
  for (auto* f : {&packets, &bytes, &retrans, &resets, &states, &rtt, &drops, &folded_f, &overflow_f, &pruned_f, &runs_f})
    out.push_back(std::move(*f));
  return out;
}

namespace {

// 1: the cgroup exists, 0: it is gone, -1: cannot tell (no
// CAP_DAC_READ_SEARCH, kernfs not exportable). Same handle trick as the
// identity service: a cgroup v2 id is a kernfs file handle.
int cgroup_alive(int root_fd, uint64_t id) { return fs::cgroup_alive(root_fd, id); }

// Reads and deletes in one step where the kernel can (hash maps, 5.14+), so
// an event between the read and the delete is not lost.
template <typename V>
bool take(int fd, const void* key, V& out) {
  auto r = bpf::map_take(fd, key, &out);
  return r && *r;
}

}  // namespace

Result<size_t> prune_dead_cgroups(const TransportMapFds& fds, const std::string& cgroup2_root, double min_fill,
                                  TransportRetired& into) {
  auto raw = read_raw(fds);
  if (!raw) return raw.error();
  size_t n_traffic = 0, n_tcp = 0, n_states = 0;
  for (const auto& [id, p] : raw->pods) {
    n_traffic += p.has_traffic;
    n_tcp += p.has_tcp;
    n_states += p.states.size();
  }
  auto full_enough = [&](int fd, size_t n, const char* name) -> Result<bool> {
    auto info = bpf::map_info(fd);
    if (!info) return info.error().with_context(name);
    return info->max_entries && static_cast<double>(n) >= min_fill * info->max_entries;
  };
  bool go = false;
  for (auto [fd, n, name] : {std::tuple{fds.pod_traffic, n_traffic, TRANSPORT_MAP_POD_TRAFFIC},
                             std::tuple{fds.pod_tcp, n_tcp, TRANSPORT_MAP_POD_TCP},
                             std::tuple{fds.tcp_state, n_states, TRANSPORT_MAP_TCP_STATE},
                             std::tuple{fds.drops, raw->drops.size(), TRANSPORT_MAP_DROPS}}) {
    auto f = full_enough(fd, n, name);
    if (!f) return f.error();
    go |= *f;
  }
  if (!go) return size_t{0};

  Fd root(::open(cgroup2_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return errno_error(errno, "opening cgroup root {}", cgroup2_root);
  size_t pruned = 0;
  for (const auto& [id, p] : raw->pods) {
    if (id == 0 || cgroup_alive(root.get(), id) != 0) continue;  // 0 = no socket, never a cgroup
    transport_cg_key key{id};
    transport_traffic t{};
    if (take(fds.pod_traffic, &key, t)) add(into.traffic, t);
    transport_tcp c{};
    if (take(fds.pod_tcp, &key, c)) add(into.tcp, c);
    for (const auto& s : p.states) {
      transport_state_key sk{};
      sk.cgroup_id = id;
      sk.old_state = s.from;
      sk.new_state = s.to;
      uint64_t v = 0;
      if (take(fds.tcp_state, &sk, v)) into.states[{s.from, s.to}] += v;
    }
    for (const auto& [dk, n] : raw->drops) {
      if (dk.cgroup_id != id) continue;
      uint64_t v = 0;
      if (take(fds.drops, &dk, v)) into.drops += v;
    }
    pruned++;
  }
  into.pruned += pruned;
  return pruned;
}

}  // namespace kagami::modules
