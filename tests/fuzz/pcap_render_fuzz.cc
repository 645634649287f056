// libFuzzer target: replay::render_text over arbitrary JSON documents.
#include "fuzz/pcap_fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kagami::fuzz::replay_render_one_input(data, size);
  return 0;
}
