// The replay driver: feeds every frame of a capture to a loaded packet
// program through BPF_PROG_TEST_RUN. It knows nothing about the program's
// maps; the caller reads them afterwards (replay.cc through each module's
// ReplayRun, the tests and benchmarks for the platform's empty programs).
//
// Two ways:
//   replay_batches()  `kagami replay`: up to KG_REPLAY_MAX_FRAMES frames per
//                     run of an XDP program that understands the batch format
//                     of include/kagami/abi/replay.h (obs_replay, ...). One test run
//                     is one syscall, ~1.2 us on this VM whatever the
//                     program does, so batching is what makes replay fast.
//   replay_frames()   one frame per run of any TC program, with the context
//                     below; for programs that know nothing of batches.
//
// The __sk_buff context of each run carries what a packet program cannot
// learn from the bytes alone (docs/replay.md, "Context"):
//   cb[0]   original frame length on the wire (tshark's frame.len)
//   cb[1]   kReplayMagic, so a program can tell a replayed skb from a live one
//   tstamp  capture timestamp in ns
// A frame longer than the kernel accepts for an skb test run (one page minus
// headroom and skb_shared_info, 3712 bytes with 4 KiB pages) is cut to that
// size and counted in cut_frames; cb[0] still carries its full length, so
// length-based counters stay exact.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>

#include "common/result.h"
#include "replay/pcap_reader.h"

namespace kagami::replay {

// "KGRP": marks cb[1] of a replayed skb.
inline constexpr uint32_t kReplayMagic = 0x4b475250;

struct DriverStats {
  std::string link_type;
  uint64_t total_frames = 0;     // records in the file
  uint64_t replayed_frames = 0;  // frames run through the program
  uint64_t snapped_frames = 0;   // captured shorter than on the wire (caplen < len)
  uint64_t cut_frames = 0;       // cut to the test-run size limit by replay
  std::map<std::string, uint64_t> skipped;  // reason -> frames not replayed
  std::map<uint32_t, uint64_t> verdicts;    // program return value -> frames
  uint64_t wall_ns = 0;          // whole replay, file reading included
  uint64_t kernel_ns = 0;        // sum of the kernel's per-run durations
  uint64_t runs = 0;             // BPF_PROG_TEST_RUN calls
};

// Largest packet BPF_PROG_TEST_RUN accepts for an skb program on this host.
uint32_t skb_test_run_max_bytes();

// Largest buffer BPF_PROG_TEST_RUN gives an XDP program in one linear piece.
uint32_t xdp_test_run_max_bytes();

// Runs every frame through the XDP programs `xdp_prog_fds` (each module's
// replay program), in batches (struct kg_replay_batch): the capture is read
// once and every batch runs through each program in turn. Frames longer
// than a batch can hold are cut; their records keep the full wire length.
// `verdicts` are the first program's; `kernel_ns` and `runs` add up every
// program's. An Error means the file is damaged or the kernel refused a run.
// `after_batch`, when set, runs after each batch has gone through every
// program (a module that decodes in userspace drains the ring buffer its
// replay program filled before the next batch can overflow it); its Error
// ends the replay.
using AfterBatch = std::function<Result<void>()>;
Result<DriverStats> replay_batches(PcapReader& reader, std::span<const int> xdp_prog_fds,
                                   const AfterBatch& after_batch = {});
Result<DriverStats> replay_batches(PcapReader& reader, int xdp_prog_fd);

// Runs every frame through the SCHED_CLS program `tc_prog_fd`.
// An Error means the file is damaged or the kernel refused the program;
// frames the kernel rejects individually (EINVAL) are counted as skipped.
Result<DriverStats> replay_frames(PcapReader& reader, int tc_prog_fd);

}  // namespace kagami::replay
