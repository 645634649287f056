// The replay driver: feeds every frame of a capture to one loaded TC program
// through BPF_PROG_TEST_RUN. It knows nothing about the program's maps; the
// caller reads them afterwards (replay.cc does it for the obs module, the
// tests and benchmarks do it for the platform's empty programs).
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
#include <map>
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
};

// Largest packet BPF_PROG_TEST_RUN accepts for an skb program on this host.
uint32_t skb_test_run_max_bytes();

// Runs every frame through the SCHED_CLS program `tc_prog_fd`.
// An Error means the file is damaged or the kernel refused the program;
// frames the kernel rejects individually (EINVAL) are counted as skipped.
Result<DriverStats> replay_frames(PcapReader& reader, int tc_prog_fd);

}  // namespace kagami::replay
