// Per-packet cost of policy.bpf.c as the number of CIDR rules grows, next to
// the platform's empty TC program on the same packet, in the same process
// (ratios, so the host's load cancels out). The kernel runs each program
// `repeat` times on one packet (BPF_PROG_TEST_RUN) and reports the mean; each
// figure is the minimum of 7 such runs.
//
// Policy: one workload 10.7.0.1 selected by a NetworkPolicy whose one
// ingress rule allows TCP 80 from N ipBlocks (11.a.b.0/24 ...). Packets:
// "allow" from inside the last block (a rule match), "deny" from an address
// in no block (default deny, every lookup done), "reply" of an allowed flow
// (conntrack). N = 0 is "no policy loaded" (generation 0).
//
// Run as root: build/bench/policy_cost_bench   (KAGAMI_BENCH_REPEAT=N)
//
// `policy_cost_bench xdp N`: the XDP deny-list instead: N /32 sources
// (198.51.x.y, the first 198.51.100.1) in a KagamiEdgePolicy, pol_xdp on a
// listed source (drop) and an unlisted one (pass), next to the platform's
// empty XDP program; bench/policy_xdp_vs_xdpfilter.sh puts xdp-filter with
// the same list beside it.
//
// `policy_cost_bench attach IFNAME N CLIENT SERVER`: for
// bench/policy_vs_nftables.sh: loads the policy, writes "SERVER accepts TCP
// from N /32 addresses, CLIENT the last of them" and attaches pol_tc_egress
// (what SERVER receives) to IFNAME at TC order 50; prints "ready" and keeps
// it there until stdin closes, then detaches.
#include <linux/pkt_cls.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <net/if.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "bpf/test_run.h"
#include "modules/policy/compile.h"
#include "modules/policy/policy_module.h"
#include "platform.skel.h"
#include "policy.skel.h"
#include "support/packet_builder.h"

using namespace kagami;
using test::PacketBuilder;

namespace {

uint32_t repeat() {
  const char* e = std::getenv("KAGAMI_BENCH_REPEAT");
  return e ? static_cast<uint32_t>(std::strtoul(e, nullptr, 10)) : 100000;
}

double best_ns(int fd, const std::vector<uint8_t>& pkt, int expect) {
  double best = 1e18;
  for (int i = 0; i < 7; ++i) {
    bpf::TestRunInput in;
    in.packet = pkt;
    in.repeat = repeat();
    auto r = bpf::test_run_skb(fd, in);
    if (!r) {
      std::fprintf(stderr, "policy_cost_bench: %s\n", r.error().message.c_str());
      std::exit(1);
    }
    if (expect != 99 && static_cast<int>(r->retval) != expect) {
      std::fprintf(stderr, "policy_cost_bench: verdict %d, expected %d\n", static_cast<int>(r->retval), expect);
      std::exit(1);
    }
    best = std::min(best, double(r->duration_ns));
  }
  return best;
}

std::string block(size_t i) {
  return "11." + std::to_string(i / 256 % 256) + "." + std::to_string(i % 256) + ".0/24";
}

}  // namespace

double best_xdp_ns(int fd, const std::vector<uint8_t>& pkt, int expect) {
  double best = 1e18;
  for (int i = 0; i < 7; ++i) {
    bpf::TestRunInput in;
    in.packet = pkt;
    in.repeat = repeat();
    auto r = bpf::test_run_xdp(fd, in);
    if (!r || (expect >= 0 && static_cast<int>(r->retval) != expect)) {
      std::fprintf(stderr, "policy_cost_bench: xdp run failed or wrong verdict\n");
      std::exit(1);
    }
    best = std::min(best, double(r->duration_ns));
  }
  return best;
}

std::string edge_addr(size_t i) {
  // i = 0 -> 198.51.100.1; then on through 198.51.x.y
  const size_t v = 100 * 256 + 1 + i;
  return "198.51." + std::to_string(v / 256 % 256) + "." + std::to_string(v % 256);
}

int xdp_main(platform_bpf* plat, size_t n) {
  policy_bpf* skel = policy_bpf__open_and_load();
  if (!skel) return 1;
  policy::Policy p;
  p.kind = "KagamiEdgePolicy";
  p.name = "flood";
  for (size_t i = 0; i < n; ++i) p.edge_deny.push_back(*policy::parse_cidr(edge_addr(i)));
  policy::RuleIds ids;
  auto c = policy::compile({}, {p}, {}, ids);
  if (!c) return 1;
  auto a = policy::write_policy(
      [&](const std::string& m) -> Result<int> {
        auto* map = bpf_object__find_map_by_name(skel->obj, m.c_str());
        if (!map) return make_error("no map {}", m);
        return bpf_map__fd(map);
      },
      *c, 0, 1);
  if (!a) return 1;
  const auto drop = PacketBuilder().eth().ipv4("198.51.100.1", "10.7.0.1").udp(4000, 5000).payload(64).build();
  const auto pass = PacketBuilder().eth().ipv4("192.0.2.1", "10.7.0.1").udp(4000, 5000).payload(64).build();
  const int empty = bpf_program__fd(plat->progs.empty_xdp);
  const int fd = bpf_program__fd(skel->progs.pol_xdp);
  for (const auto& [name, pkt, verdict] : {std::tuple{"drop", &drop, 1}, std::tuple{"pass", &pass, 2}}) {
    const double e = best_xdp_ns(empty, *pkt, -1);
    const double k = best_xdp_ns(fd, *pkt, verdict);
    std::printf("kagami %zu %s %.1f %.1f\n", n, name, e, k);
  }
  policy_bpf__destroy(skel);
  return 0;
}

// 11.x.y.z, the i-th /32 of the nftables comparison's set.
std::string host(size_t i) {
  return "11." + std::to_string(i / 65536 % 256) + "." + std::to_string(i / 256 % 256) + "." + std::to_string(i % 256);
}

int attach_main(const char* ifname, size_t n, const std::string& client, const std::string& server) {
  const int ifindex = static_cast<int>(if_nametoindex(ifname));
  policy_bpf* skel = policy_bpf__open_and_load();
  if (!ifindex || !skel) {
    std::fprintf(stderr, "policy_cost_bench: no interface %s, or the policy did not load\n", ifname);
    return 1;
  }
  std::vector<policy::Workload> wl(1);
  wl[0].name = "server";
  wl[0].labels = {{"app", "server"}};
  wl[0].addresses = {*policy::parse_cidr(server)};
  policy::Policy p;
  p.name = "set";
  p.pod_selector.match_labels = {{"app", "server"}};
  p.isolates_ingress = true;
  policy::Rule r;
  r.any_peer = false;
  r.any_port = false;
  r.ports = {policy::PortRange{6, true, 0, 0}};
  r.name = "default/set:ingress[0]";
  for (size_t i = 0; i < n; ++i) {
    policy::Peer pe;
    pe.ip_block = policy::IpBlock{*policy::parse_cidr(i + 1 == n ? client : host(i)), {}};
    r.peers.push_back(pe);
  }
  p.ingress = {r};
  policy::RuleIds ids;
  auto c = policy::compile(wl, {p}, {}, ids);
  if (!c) return 1;
  auto a = policy::write_policy(
      [&](const std::string& m) -> Result<int> {
        auto* map = bpf_object__find_map_by_name(skel->obj, m.c_str());
        if (!map) return make_error("no map {}", m);
        return bpf_map__fd(map);
      },
      *c, 0, 1);
  if (!a) {
    std::fprintf(stderr, "policy_cost_bench: %s\n", a.error().message.c_str());
    return 1;
  }
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
  bpf_tc_hook_create(&hook);  // EEXIST: clsact is there already
  DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = bpf_program__fd(skel->progs.pol_tc_egress), .handle = 1,
                      .priority = 50);
  if (bpf_tc_attach(&hook, &opts)) {
    std::fprintf(stderr, "policy_cost_bench: TC attach on %s failed\n", ifname);
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  char b;
  while (read(0, &b, 1) > 0) {
  }
  opts.flags = opts.prog_fd = opts.prog_id = 0;
  bpf_tc_detach(&hook, &opts);
  policy_bpf__destroy(skel);
  return 0;
}

int main(int argc, char** argv) {
  libbpf_set_print(nullptr);
  if (argc == 6 && std::string(argv[1]) == "attach")
    return attach_main(argv[2], std::strtoul(argv[3], nullptr, 10), argv[4], argv[5]);
  platform_bpf* plat = platform_bpf__open_and_load();
  if (!plat) {
    std::fprintf(stderr, "policy_cost_bench: needs root\n");
    return 1;
  }
  if (argc == 3 && std::string(argv[1]) == "xdp") {
    const int rc = xdp_main(plat, std::strtoul(argv[2], nullptr, 10));
    platform_bpf__destroy(plat);
    return rc;
  }
  const int empty = bpf_program__fd(plat->progs.empty_tc);
  std::printf("| CIDR rules | compile + write | packet | empty TC ns | policy ns | policy / empty |\n");
  std::printf("|---:|---:|---|---:|---:|---:|\n");
  for (size_t n : {size_t(0), size_t(10), size_t(1000), size_t(100000)}) {
    policy_bpf* skel = policy_bpf__open_and_load();
    if (!skel) {
      std::fprintf(stderr, "policy_cost_bench: policy load failed\n");
      return 1;
    }
    double write_ms = 0;
    if (n) {
      std::vector<policy::Workload> wl(1);
      wl[0].name = "server";
      wl[0].labels = {{"app", "server"}};
      wl[0].addresses = {*policy::parse_cidr("10.7.0.1")};
      policy::Policy p;
      p.name = "many";
      p.pod_selector.match_labels = {{"app", "server"}};
      p.isolates_ingress = true;
      policy::Rule r;
      r.any_peer = false;
      r.any_port = false;
      r.ports = {policy::PortRange{6, false, 80, 80}};
      r.name = "default/many:ingress[0]";
      for (size_t i = 0; i < n; ++i) {
        policy::Peer pe;
        pe.ip_block = policy::IpBlock{*policy::parse_cidr(block(i)), {}};
        r.peers.push_back(pe);
      }
      p.ingress = {r};
      const auto t0 = std::chrono::steady_clock::now();
      policy::RuleIds ids;
      auto c = policy::compile(wl, {p}, {}, ids);
      if (!c) {
        std::fprintf(stderr, "policy_cost_bench: %s\n", c.error().message.c_str());
        return 1;
      }
      auto a = policy::write_policy(
          [&](const std::string& m) -> Result<int> {
            auto* map = bpf_object__find_map_by_name(skel->obj, m.c_str());
            if (!map) return make_error("no map {}", m);
            return bpf_map__fd(map);
          },
          *c, 0, 1);
      if (!a) {
        std::fprintf(stderr, "policy_cost_bench: %s\n", a.error().message.c_str());
        return 1;
      }
      write_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    const std::string last = block(n ? n - 1 : 0);
    const std::string src = last.substr(0, last.size() - 4) + "9";  // x.y.z.9 in the last block
    const auto allow = PacketBuilder().eth().ipv4(src, "10.7.0.1").tcp(40000, 80).payload(64).build();
    const auto deny = PacketBuilder().eth().ipv4("12.0.0.1", "10.7.0.1").tcp(40000, 80).payload(64).build();
    const int fd = bpf_program__fd(skel->progs.pol_tc_egress);
    const int pass = TC_ACT_UNSPEC;
    for (const auto& [name, pkt, verdict] :
         {std::tuple{"allow", &allow, pass}, std::tuple{"deny", &deny, n ? int(TC_ACT_SHOT) : pass}}) {
      const double e = best_ns(empty, *pkt, 99);
      const double pol = best_ns(fd, *pkt, verdict);
      std::printf("| %zu | %.0f ms | %s | %.1f | %.1f | %.2f |\n", n, write_ms, name, e, pol, pol / std::max(1.0, e));
    }
    policy_bpf__destroy(skel);
  }
  platform_bpf__destroy(plat);
  return 0;
}
