// Per-packet cost of n2_tc_ingress, measured by the kernel
// (BPF_PROG_TEST_RUN, repeat = 10000 by default), next to the platform's
// empty TC program on the same packet in the same process; "x_empty" is
// n2 / empty. The ring is drained after every call, so every run copies its
// messages up as a live node does (10000 x 4 records fit the 8 MiB ring).
//
// Packets: an NGAP InitialUEMessage carrying a NAS Registration request
// (one DATA chunk); a bundle of four such DATA chunks and a SACK; a GTP-U
// packet (what n2 costs user-plane traffic on a shared interface).
//
// Run as root: build/bench/n2_packet_cost_bench
#include <benchmark/benchmark.h>
#include <bpf/libbpf.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "bpf/ringbuf.h"
#include "modules/n2/abi.h"
#include "modules/n2/tracker.h"
#include "bpf/test_run.h"
#include "n2.skel.h"
#include "platform.skel.h"
#include "support/packet_builder.h"

namespace {

using namespace kagami;
using test::PacketBuilder;

uint32_t repeat() {
  const char* e = std::getenv("KAGAMI_BENCH_REPEAT");
  return e ? static_cast<uint32_t>(std::strtoul(e, nullptr, 10)) : 10000;
}

// InitialUEMessage: RAN UE NGAP ID, NAS-PDU (Registration request, SUCI),
// user location and RRC cause as opaque IEs of realistic size.
std::vector<uint8_t> initial_ue_message() {
  std::vector<uint8_t> nas = {0x7e, 0x00, 0x41, 0x79, 0x00, 0x0d, 0x01, 0x02, 0xf8, 0x39, 0xf0, 0xff,
                              0x00, 0x00, 0x00, 0x00, 0x47, 0x78, 0x91, 0x2e, 0x04, 0x80, 0x80, 0x80, 0x80};
  std::vector<uint8_t> body = {0x00, 0x00, 0x04};
  auto ie = [&](uint16_t id, std::vector<uint8_t> v) {
    body.push_back(id >> 8);
    body.push_back(id & 0xff);
    body.push_back(0x40);
    body.push_back(static_cast<uint8_t>(v.size()));
    body.insert(body.end(), v.begin(), v.end());
  };
  ie(85, {0x40, 0x9e, 0x06});
  std::vector<uint8_t> nv = {static_cast<uint8_t>(nas.size())};
  nv.insert(nv.end(), nas.begin(), nas.end());
  ie(38, nv);
  ie(121, std::vector<uint8_t>(15, 0x22));  // UserLocationInformation
  ie(90, {0x18});                            // RRCEstablishmentCause
  std::vector<uint8_t> out = {0x00, 0x0f, 0x40, static_cast<uint8_t>(body.size())};
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

std::map<std::string, std::vector<uint8_t>> packets() {
  std::map<std::string, std::vector<uint8_t>> p;
  auto ng = initial_ue_message();
  p["ngap_nas"] = PacketBuilder().eth().ipv4("10.0.0.1", "10.0.0.2").sctp(38412, 38412, 1, {test::sctp_data(1, 60, ng)}).build();
  p["bundle4"] = PacketBuilder()
                     .eth()
                     .ipv4("10.0.0.1", "10.0.0.2")
                     .sctp(38412, 38412, 1,
                           {test::sctp_sack(7), test::sctp_data(1, 60, ng), test::sctp_data(2, 60, ng),
                            test::sctp_data(3, 60, ng), test::sctp_data(4, 60, ng)})
                     .build();
  p["gtpu"] = PacketBuilder()
                  .eth()
                  .ipv4("192.168.1.1", "192.168.1.2")
                  .udp(2152, 2152)
                  .gtpu(test::kGtpTpdu, 0x1234)
                  .ipv4("10.45.0.2", "8.8.8.8")
                  .udp(40000, 53)
                  .payload(64)
                  .build();
  return p;
}

struct Progs {
  Progs() {
    spdlog::set_level(spdlog::level::warn);
    plat = platform_bpf__open_and_load();
    n2 = n2_bpf__open();
    if (n2) {
      bpf_program__set_autoload(n2->progs.n2_replay, false);
      if (n2_bpf__load(n2)) {
        n2_bpf__destroy(n2);
        n2 = nullptr;
      }
    }
    if (!plat || !n2) {
      std::fprintf(stderr, "n2_packet_cost_bench: needs root (loading failed)\n");
      std::exit(1);
    }
    auto r = bpf::RingBuffer::open({bpf_map__fd(n2->maps.n2_events)}, [](size_t, std::span<const uint8_t>) {});
    if (!r) std::exit(1);
    ring = std::move(*r);
  }
  int fd(bool is_n2) const {
    return is_n2 ? bpf_program__fd(n2->progs.n2_tc_ingress) : bpf_program__fd(plat->progs.empty_tc);
  }
  platform_bpf* plat = nullptr;
  n2_bpf* n2 = nullptr;
  bpf::RingBuffer ring;
};

Progs& progs() {
  static Progs p;
  return p;
}

double run_ns(bool is_n2, const std::vector<uint8_t>& pkt, uint32_t rep) {
  bpf::TestRunInput in;
  in.packet = pkt;
  in.repeat = rep;
  auto r = bpf::test_run_skb(progs().fd(is_n2), in);
  if (!r) {
    std::fprintf(stderr, "n2_packet_cost_bench: %s\n", r.error().message.c_str());
    std::exit(1);
  }
  (void)progs().ring.consume();
  return r->duration_ns;
}

double empty_ns(const std::string& name, const std::vector<uint8_t>& pkt) {
  static std::map<std::string, double> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  double best = 1e18;
  for (int i = 0; i < 5; i++) best = std::min(best, run_ns(false, pkt, repeat()));
  return cache[name] = best;
}

void bm(benchmark::State& st, bool is_n2, std::string name, std::vector<uint8_t> pkt) {
  const uint32_t rep = repeat();
  double sum = 0;
  uint64_t n = 0;
  for (auto _ : st) {
    double ns = run_ns(is_n2, pkt, rep);
    st.SetIterationTime(ns * rep / 1e9);
    sum += ns;
    n++;
  }
  double mean = n ? sum / n : 0;
  st.counters["ns_per_pkt"] = mean;
  st.counters["x_empty"] = mean / std::max(1.0, empty_ns(name, pkt));
  st.SetItemsProcessed(static_cast<int64_t>(n) * rep);
}

// Userspace cost per message: Tracker::add (NGAP walk, NAS decode in both
// views, per-UE record, timeline line) on the InitialUEMessage above, for
// 1000 UEs in turn. CPU at 1,000 control-plane messages/s is
// ns_per_msg x 1000 / 1e9 of one CPU, plus the kernel's per-packet cost.
void tracker_add(benchmark::State& st) {
  auto ng = initial_ue_message();
  std::vector<std::vector<uint8_t>> recs;
  for (uint32_t ue = 0; ue < 1000; ue++) {
    auto m = ng;
    // RAN UE NGAP ID: IE 85's value is at message offset 11 (0x40: two
    // octets follow), so the two octets are 12 and 13.
    m[12] = static_cast<uint8_t>(ue >> 8);
    m[13] = static_cast<uint8_t>(ue);
    n2_msg_event ev{};
    ev.hdr.kind = N2_EVENT_NGAP;
    ev.hdr.len = static_cast<__u32>(N2_EVENT_FIXED + m.size());
    ev.msg_len = ev.copied = static_cast<__u32>(m.size());
    std::vector<uint8_t> r(reinterpret_cast<uint8_t*>(&ev), reinterpret_cast<uint8_t*>(&ev) + N2_EVENT_FIXED);
    r.insert(r.end(), m.begin(), m.end());
    recs.push_back(std::move(r));
  }
  n2::Tracker t;
  size_t i = 0;
  for (auto _ : st) {
    nlohmann::json line;
    auto r = t.add(recs[i++ % recs.size()], &line);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(line);
  }
  st.counters["ues"] = static_cast<double>(t.ues());
  st.counters["ns_per_msg"] = benchmark::Counter(static_cast<double>(st.iterations()),
                                                 benchmark::Counter::kIsRate | benchmark::Counter::kInvert) ;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  for (const auto& [name, pkt] : packets())
    for (bool is_n2 : {false, true}) {
      std::string n = std::string("tc/") + (is_n2 ? "n2" : "empty") + "/" + name;
      benchmark::RegisterBenchmark(n.c_str(), bm, is_n2, name, pkt)->UseManualTime()->MinTime(0.5);
    }
  benchmark::RegisterBenchmark("userspace/tracker_add", tracker_add);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
