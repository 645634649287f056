// libFuzzer target: PcapReader over arbitrary bytes (pcap, pcapng, garbage).
// Seeds: the shared captures and tests/unit/replay_fuzz_seeds_test.cc's
// generated files; scripts/fuzz.sh runs it.
#include "fuzz/pcap_fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kagami::fuzz::pcap_reader_one_input(data, size);
  return 0;
}
