// Per-packet cost of the obs packet programs, measured by the kernel
// (BPF_PROG_TEST_RUN with repeat = 1e5 by default: the kernel runs the
// program that many times on one packet and reports the mean), next to the
// platform's empty programs on the same hook and packet in the same process.
// The "x_empty" counter is obs / empty: what observability adds over the bare
// hook. The test-run harness itself (skb setup per call, not per repeat) is
// not in the figure.
//
// Packets: plain TCP, GTP-U G-PDU without and with a PDU Session Container
// extension header, PFCP Session Establishment Request.
// Hooks: TC ingress (obs_tc_ingress vs empty_tc), XDP (obs_xdp vs empty_xdp).
// obs runs in live mode (what a node runs).
//
// Run as root:  build/bench/packet_cost_bench [--benchmark_filter=tc]
//               KAGAMI_BENCH_REPEAT=1000000 build/bench/packet_cost_bench
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "bpf/test_run.h"
#include "modules/obs/obs_object.h"
#include "platform.skel.h"
#include "support/packet_builder.h"

namespace {

using namespace kagami;
using test::PacketBuilder;

uint32_t repeat() {
  const char* e = std::getenv("KAGAMI_BENCH_REPEAT");
  return e ? static_cast<uint32_t>(std::strtoul(e, nullptr, 10)) : 100000;
}

std::map<std::string, std::vector<uint8_t>> packets() {
  std::map<std::string, std::vector<uint8_t>> p;
  p["tcp"] = PacketBuilder().eth().ipv4("10.0.0.1", "10.0.0.2").tcp(40000, 443).payload(100).build();
  p["gtpu"] = PacketBuilder()
                  .eth()
                  .ipv4("192.168.1.1", "192.168.1.2")
                  .udp(2152, 2152)
                  .gtpu(test::kGtpTpdu, 0x1234)
                  .ipv4("10.45.0.2", "8.8.8.8")
                  .udp(40000, 53)
                  .payload(64)
                  .build();
  p["gtpu_ext"] = PacketBuilder()
                      .eth()
                      .ipv4("192.168.1.1", "192.168.1.2")
                      .udp(2152, 2152)
                      .gtpu(test::kGtpTpdu, 0x1234, {.ext = {test::pdu_session_container(1, 9)}})
                      .ipv4("10.45.0.2", "8.8.8.8")
                      .udp(40000, 53)
                      .payload(64)
                      .build();
  p["pfcp"] = PacketBuilder()
                  .eth()
                  .ipv4("192.168.2.1", "192.168.2.2")
                  .udp(8805, 8805)
                  .pfcp(50, 7, {.seid = 0, .ies = {test::pfcp_node_id_ipv4("192.168.2.1")}})
                  .build();
  return p;
}

struct Progs {
  Progs() {
    spdlog::set_level(spdlog::level::warn);
    plat = platform_bpf__open_and_load();
    auto o = obs::ObsObject::open(/*replay_mode=*/false);
    if (!plat || !o) {
      std::fprintf(stderr, "packet_cost_bench: needs root; %s\n", o ? "platform load failed" : o.error().message.c_str());
      std::exit(1);
    }
    obs = std::move(*o);
  }
  ~Progs() { platform_bpf__destroy(plat); }
  int fd(const std::string& hook, bool is_obs) const {
    if (hook == "xdp") return is_obs ? obs->xdp_fd() : bpf_program__fd(plat->progs.empty_xdp);
    return is_obs ? obs->tc_ingress_fd() : bpf_program__fd(plat->progs.empty_tc);
  }
  platform_bpf* plat = nullptr;
  std::unique_ptr<obs::ObsObject> obs;
};

Progs& progs() {
  static Progs p;
  return p;
}

// One kernel-measured mean per call; repeat runs per call.
double run_ns(const std::string& hook, bool is_obs, const std::vector<uint8_t>& pkt, uint32_t rep) {
  bpf::TestRunInput in;
  in.packet = pkt;
  in.repeat = rep;
  int fd = progs().fd(hook, is_obs);
  auto r = hook == "xdp" ? bpf::test_run_xdp(fd, in) : bpf::test_run_skb(fd, in);
  if (!r) {
    std::fprintf(stderr, "packet_cost_bench: %s\n", r.error().message.c_str());
    std::exit(1);
  }
  return r->duration_ns;
}

// The empty program's cost for (hook, packet), measured once per process as
// the minimum of 5 runs (the least disturbed by other load on the host).
double empty_ns(const std::string& hook, const std::string& name, const std::vector<uint8_t>& pkt) {
  static std::map<std::string, double> cache;
  auto key = hook + "/" + name;
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  double best = 1e18;
  for (int i = 0; i < 5; i++) best = std::min(best, run_ns(hook, false, pkt, repeat()));
  return cache[key] = best;
}

void bm(benchmark::State& st, std::string hook, bool is_obs, std::string name, std::vector<uint8_t> pkt) {
  const uint32_t rep = repeat();
  double sum = 0;
  uint64_t n = 0;
  for (auto _ : st) {
    double ns = run_ns(hook, is_obs, pkt, rep);
    st.SetIterationTime(ns * rep / 1e9);
    sum += ns;
    n++;
  }
  double mean = n ? sum / n : 0;
  st.counters["ns_per_pkt"] = mean;
  st.counters["x_empty"] = mean / std::max(1.0, empty_ns(hook, name, pkt));
  st.SetItemsProcessed(static_cast<int64_t>(n) * rep);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  for (const auto& [name, pkt] : packets()) {
    for (const char* hook : {"tc", "xdp"}) {
      for (bool is_obs : {false, true}) {
        std::string n = std::string(hook) + "/" + (is_obs ? "obs" : "empty") + "/" + name;
        benchmark::RegisterBenchmark(n.c_str(), bm, hook, is_obs, name, pkt)->UseManualTime()->MinTime(0.5);
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
