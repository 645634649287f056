// Fuzz entry points for replay's userspace decoders, shared by the libFuzzer
// targets (tests/fuzz/pcap_*_fuzz.cc, KAGAMI_FUZZ=ON with clang) and the
// plain GoogleTest that drives them over seeds and deterministic mutations
// (tests/unit/replay_fuzz_seeds_test.cc, every build).
//
// Each entry checks the decoder's invariants and calls abort() when one
// fails, so libFuzzer reports a crash and GoogleTest sees the process die.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kagami::fuzz {

// Reads `size` bytes as a capture file; every frame handed out must be an
// Ethernet frame of sane size, numbered in order, with counts that add up.
// Returns the number of frames read (the seeds test uses it).
size_t pcap_reader_one_input(const uint8_t* data, size_t size);

// Parses the bytes as JSON (silently ignoring non-JSON) and renders them with
// replay::render_text: the report renderer must accept any document.
void replay_render_one_input(const uint8_t* data, size_t size);

}  // namespace kagami::fuzz
