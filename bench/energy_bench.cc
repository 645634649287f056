// Energy module costs (modules/energy/README.md, docs/performance.md):
//
//   energy_bench overhead [rounds] [loops]
//       `taskset -c 0 perf bench sched pipe -l <loops>` (two tasks
//       ping-ponging on one CPU: two context switches per round trip) with no programs, with empty
//       programs on the same hooks (the floor), with the tp_btf variant and with the tracepoint variant attached, interleaved
//       round by round so the other load of the machine hits all three
//       alike; prints the median ops/s of each and the ratios. Also the two
//       counter variants (energy_pmu / energy_tp_pmu) with a counter per
//       CPU in energy_pmu: hardware instructions where the machine has
//       them, else the software cpu-clock event (this VM; the BPF side is
//       the same helper call, the kernel's read of the event differs).
//   energy_bench scale [n...]
//       n sleeping processes (default 1000 and 10000), each scheduled at
//       least once, so energy_proc holds n entries; then the CPU time and
//       the memory of one scrape: read_kernel + EnergyAccountant::advance
//       + energy_metrics, as the agent's collect() runs them.
// Run as root: build/bench/energy_bench overhead 7 200000; build/bench/energy_bench scale
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/kernel.h"
#include <linux/types.h>

#include "modules/energy/abi.h"
#include "modules/energy/energy.h"
#include "energy.skel.h"
#include "energy_tp.skel.h"
#include "energy_pmu.skel.h"
#include "energy_tp_pmu.skel.h"
#include "energy_floor.skel.h"

using namespace kagami::modules::energy;

namespace {

struct Attached {
  bpf_object* obj = nullptr;
  std::vector<bpf_link*> links;
  void (*destroy)(void*) = nullptr;
  void* skel = nullptr;
  ~Attached() {
    for (auto* l : links) bpf_link__destroy(l);
    if (destroy) destroy(skel);
  }
  int fd(const char* n) const { return bpf_map__fd(bpf_object__find_map_by_name(obj, n)); }
};

bool attach_all(Attached& a) {
  bpf_program* p;
  bpf_object__for_each_program(p, a.obj) {
    bpf_link* l = bpf_program__attach(p);
    if (!l) return false;
    a.links.push_back(l);
  }
  return true;
}

enum class Variant { Floor, TpBtf, Tracepoint, TpBtfPmu, TracepointPmu };

// The counters the counter variants read (opened once, written into each
// loaded object's energy_pmu).
ActivityCounters* g_counters = nullptr;

std::unique_ptr<Attached> load(Variant v) {
  auto a = std::make_unique<Attached>();
  if (v == Variant::Floor) {
    auto* s = energy_floor_bpf__open_and_load();
    if (!s) return nullptr;
    a->skel = s;
    a->obj = s->obj;
    a->destroy = [](void* p) { energy_floor_bpf__destroy(static_cast<energy_floor_bpf*>(p)); };
  } else if (v == Variant::TpBtf) {
    auto* s = energy_bpf__open_and_load();
    if (!s) return nullptr;
    a->skel = s;
    a->obj = s->obj;
    a->destroy = [](void* p) { energy_bpf__destroy(static_cast<energy_bpf*>(p)); };
  } else if (v == Variant::Tracepoint) {
    auto* s = energy_tp_bpf__open_and_load();
    if (!s) return nullptr;
    a->skel = s;
    a->obj = s->obj;
    a->destroy = [](void* p) { energy_tp_bpf__destroy(static_cast<energy_tp_bpf*>(p)); };
  } else if (v == Variant::TpBtfPmu) {
    auto* s = energy_pmu_bpf__open_and_load();
    if (!s) return nullptr;
    a->skel = s;
    a->obj = s->obj;
    a->destroy = [](void* p) { energy_pmu_bpf__destroy(static_cast<energy_pmu_bpf*>(p)); };
  } else {
    auto* s = energy_tp_pmu_bpf__open_and_load();
    if (!s) return nullptr;
    a->skel = s;
    a->obj = s->obj;
    a->destroy = [](void* p) { energy_tp_pmu_bpf__destroy(static_cast<energy_tp_pmu_bpf*>(p)); };
  }
  if ((v == Variant::TpBtfPmu || v == Variant::TracepointPmu) &&
      (!g_counters || !g_counters->fill(a->fd(ENERGY_MAP_PMU))))
    return nullptr;
  if (!attach_all(*a)) return nullptr;
  return a;
}

// ops/s reported by perf bench sched pipe.
double pipe_ops(long loops) {
  std::string cmd = "taskset -c 0 perf bench sched pipe -l " + std::to_string(loops) + " 2>/dev/null";
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return 0;
  char line[256];
  double ops = 0;
  while (std::fgets(line, sizeof(line), f))
    if (std::strstr(line, "ops/sec")) ops = std::atof(line);
  ::pclose(f);
  return ops;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

int overhead(int rounds, long loops) {
  std::vector<double> none, flo, btf, tp, pbtf, ptp;
  auto cpus = kagami::online_cpus();
  ActivityCounters counters;
  if (cpus) counters.open(kagami::PerfEventKind::HwInstructions, *cpus);
  if (!counters.complete()) {
    std::printf("hw_instructions: %s; the counter variants use sw_cpu_clock\n", counters.why_not().c_str());
    if (cpus) counters.open(kagami::PerfEventKind::SwCpuClock, *cpus);
  }
  if (!counters.complete()) return std::fprintf(stderr, "no counter: %s\n", counters.why_not().c_str()), 1;
  g_counters = &counters;
  for (int r = 0; r < rounds; r++) {
    none.push_back(pipe_ops(loops));
    {
      auto a = load(Variant::Floor);
      if (!a) return std::fprintf(stderr, "load/attach of the empty tp_btf programs failed (root?)\n"), 1;
      flo.push_back(pipe_ops(loops));
    }
    {
      auto a = load(Variant::TpBtf);
      if (!a) return std::fprintf(stderr, "load/attach tp_btf variant failed (root?)\n"), 1;
      btf.push_back(pipe_ops(loops));
    }
    {
      auto a = load(Variant::Tracepoint);
      if (!a) return std::fprintf(stderr, "load/attach tracepoint variant failed\n"), 1;
      tp.push_back(pipe_ops(loops));
    }
    {
      auto a = load(Variant::TpBtfPmu);
      if (!a) return std::fprintf(stderr, "load/attach tp_btf counter variant failed\n"), 1;
      pbtf.push_back(pipe_ops(loops));
    }
    {
      auto a = load(Variant::TracepointPmu);
      if (!a) return std::fprintf(stderr, "load/attach tracepoint counter variant failed\n"), 1;
      ptp.push_back(pipe_ops(loops));
    }
    std::printf("round %d: none %.0f  floor %.0f  tp_btf %.0f  tracepoint %.0f  tp_btf+counter %.0f  "
                "tracepoint+counter %.0f ops/s\n",
                r, none.back(), flo.back(), btf.back(), tp.back(), pbtf.back(), ptp.back());
  }
  // Direct cost: the kernel's own run-time statistics of each program
  // (BPF_ENABLE_STATS) over one more run with the tp_btf variant.
  for (Variant var : {Variant::Floor, Variant::TpBtf, Variant::Tracepoint, Variant::TpBtfPmu, Variant::TracepointPmu}) {
    const char* vname = var == Variant::Floor        ? "floor"
                        : var == Variant::TpBtf      ? "tp_btf"
                        : var == Variant::Tracepoint ? "tracepoint"
                        : var == Variant::TpBtfPmu   ? "tp_btf+counter"
                                                     : "tracepoint+counter";
    int stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
    auto a = load(var);
    if (stats >= 0 && a) {
      pipe_ops(loops);
      bpf_program* p;
      bpf_object__for_each_program(p, a->obj) {
        bpf_prog_info info{};
        __u32 len = sizeof(info);
        if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len) == 0 && info.run_cnt)
          std::printf("%s %s: %llu runs, %.0f ns per run\n", vname,
                      bpf_program__name(p), (unsigned long long)info.run_cnt,
                      static_cast<double>(info.run_time_ns) / info.run_cnt);
      }
    }
    if (stats >= 0) ::close(stats);
  }
  // Paired: each round's ratio against the baseline run next to it, then
  // the median over rounds (robust to the machine's other load).
  std::vector<double> rf, rb, rt, rbf, rpb, rpt, rpbf, rptf;
  for (size_t i = 0; i < none.size(); i++)
    if (none[i] > 0 && flo[i] > 0) {
      rf.push_back(flo[i] / none[i]);
      rb.push_back(btf[i] / none[i]);
      rt.push_back(tp[i] / none[i]);
      rbf.push_back(btf[i] / flo[i]);
      rpb.push_back(pbtf[i] / none[i]);
      rpt.push_back(ptp[i] / none[i]);
      rpbf.push_back(pbtf[i] / flo[i]);
      rptf.push_back(ptp[i] / flo[i]);
    }
  const double n = median(none), f = median(rf), b = median(rb), t = median(rt), bf = median(rbf);
  std::printf("median ops/s none %.0f; median paired ratio to none: floor %.3f (cost %.1f%%), tp_btf %.3f (cost %.1f%%), "
              "tracepoint %.3f (cost %.1f%%); tp_btf to floor %.3f (cost above the floor %.1f%%)\n",
              n, f, 100 * (1 - f), b, 100 * (1 - b), t, 100 * (1 - t), bf, 100 * (1 - bf));
  const double pb = median(rpb), pt = median(rpt), pbf = median(rpbf), ptf = median(rptf);
  std::printf("counter variants (%s): tp_btf+counter %.3f (cost %.1f%%), tracepoint+counter %.3f (cost %.1f%%) "
              "against none; against the floor %.3f (%.1f%%) and %.3f (%.1f%%)\n",
              std::string(kagami::to_string(counters.kind())).c_str(), pb, 100 * (1 - pb), pt, 100 * (1 - pt), pbf,
              100 * (1 - pbf), ptf, 100 * (1 - ptf));
  return 0;
}

double cpu_s() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

long rss_kb() {
  FILE* f = std::fopen("/proc/self/status", "r");
  char line[256];
  long kb = 0;
  while (f && std::fgets(line, sizeof(line), f))
    if (std::strncmp(line, "VmRSS:", 6) == 0) kb = std::atol(line + 6);
  if (f) std::fclose(f);
  return kb;
}

uint64_t mono_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000ull + ts.tv_nsec;
}

int scale(const std::vector<long>& ns) {
  auto a = load(Variant::TpBtf);
  if (!a) a = load(Variant::Tracepoint);
  if (!a) return std::fprintf(stderr, "load/attach failed (root?)\n"), 1;
  EnergyMapFds fds{a->fd(ENERGY_MAP_CPU_TIME), a->fd(ENERGY_MAP_CGROUP), a->fd(ENERGY_MAP_PROC),
                   a->fd(ENERGY_MAP_OTHER), a->fd(ENERGY_MAP_OVERFLOW)};
  for (long n : ns) {
    std::vector<pid_t> kids;
    for (long i = 0; i < n; i++) {
      pid_t p = ::fork();
      if (p == 0) {
        ::pause();  // scheduled once, then asleep
        _exit(0);
      }
      if (p < 0) break;
      kids.push_back(p);
    }
    ::usleep(500000);
    PowerModel m;
    m.units = 2;
    EnergyAccountant acc(make_model_source(m), m, IdlePolicy::Node, 2);
    const long rss0 = rss_kb();
    OutputOptions o;
    o.node = "bench";
    const int scrapes = 10;
    double cpu = 0, worst = 0;
    size_t procs = 0;
    for (int s = 0; s < scrapes; s++) {
      const double c0 = cpu_s();
      auto k = read_kernel(fds);
      if (!k) return std::fprintf(stderr, "%s\n", k.error().message.c_str()), 1;
      procs = k->procs.size();
      (void)acc.advance(*k, mono_ns());
      auto fams = energy_metrics(acc, {}, o);
      const double d = cpu_s() - c0;
      if (s > 0) {  // the first scrape only primes
        cpu += d;
        worst = std::max(worst, d);
      }
      ::usleep(100000);
    }
    std::printf("%ld processes (%zu in energy_proc): %.2f ms CPU per scrape (worst %.2f ms), RSS %ld kB (+%ld kB for the interval state)\n",
                n, procs, 1000 * cpu / (scrapes - 1), 1000 * worst, rss_kb(), rss_kb() - rss0);
    for (pid_t p : kids) ::kill(p, SIGKILL);
    for (pid_t p : kids) ::waitpid(p, nullptr, 0);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (auto t = kagami::bpf::ensure_tracefs(); !t) {
    std::fprintf(stderr, "%s\n", t.error().message.c_str());
    return 1;
  }
  const std::string mode = argc > 1 ? argv[1] : "overhead";
  if (mode == "overhead") return overhead(argc > 2 ? std::atoi(argv[2]) : 7, argc > 3 ? std::atol(argv[3]) : 200000);
  if (mode == "scale") {
    std::vector<long> ns;
    for (int i = 2; i < argc; i++) ns.push_back(std::atol(argv[i]));
    if (ns.empty()) ns = {1000, 10000};
    return scale(ns);
  }
  std::fprintf(stderr, "usage: energy_bench overhead [rounds] [loops] | scale [n...]\n");
  return 2;
}
