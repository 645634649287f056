// BPF_PROG_TEST_RUN: runs a loaded packet program over one buffer in the
// kernel, with no interface involved. The deterministic path used by replay,
// the kernel tests and the per-packet benchmarks.
//
// For skb programs (TC, cgroup_skb) the kernel accepts a __sk_buff context
// from userspace; only a few fields may be set (see bpf_ctx_convert in
// net/bpf/test_run.c: mark, priority, ingress_ifindex, ifindex, cb[], tstamp,
// wire_len, gso_*). Replay uses cb[] and tstamp to hand a program the original
// frame length and capture timestamp (docs/replay.md).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"

namespace kagami::bpf {

struct TestRunInput {
  std::span<const uint8_t> packet;  // starts at the Ethernet header
  uint32_t repeat = 1;              // >1 for benchmarks: the kernel loops and averages
  // skb context (ignored for XDP)
  bool set_skb_ctx = false;
  std::array<uint32_t, 5> cb{};
  uint64_t tstamp_ns = 0;
  uint32_t ifindex = 0;
  bool want_packet_out = false;
};

struct TestRunOutput {
  uint32_t retval = 0;
  uint32_t duration_ns = 0;  // average per run, as the kernel reports it
  std::vector<uint8_t> packet_out;
};

// Runs a BPF_PROG_TYPE_SCHED_CLS / SCHED_ACT / CGROUP_SKB program.
Result<TestRunOutput> test_run_skb(int prog_fd, const TestRunInput& in);
// Runs a BPF_PROG_TYPE_XDP program.
Result<TestRunOutput> test_run_xdp(int prog_fd, const TestRunInput& in);

}  // namespace kagami::bpf
