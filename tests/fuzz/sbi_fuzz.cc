// libFuzzer target for the sbi module's userspace decoder (modules/sbi/
// decoder.cc): TCP reassembly, HTTP/2 framing + the nghttp2 HPACK glue,
// HTTP/1.1, the mid-stream anchors, and the TLS plaintext path.
//
// Input: a list of segments, each
//   u8 flags   bit0 from server, bit1 SYN, bit2 FIN, bit3 RST, bit4 TLS
//              (the bytes go to tls_data, bit0 = SSL_write), bit5 skip the
//              sequence number forward by the next byte (a hole),
//              bit6 second connection
//   u8 len_hi, u8 len_lo, then len payload bytes (cut at the input's end).
// Sequence numbers follow the bytes sent per direction, so the fuzzer
// reaches the parsers instead of the out-of-order queue; bit5 makes holes
// and reorderings. Seeds: tests/fuzz/corpus/sbi (made by
// tests/fuzz/make_sbi_seeds.py) plus, in scripts/fuzz.sh, TCP payloads of
// the shared SBI captures turned into this format.
#include <cstddef>
#include <cstdint>
#include <span>

#include <nlohmann/json.hpp>

#include "modules/sbi/decoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kagami::sbi;
  Limits lim;
  lim.max_connections = 4;
  lim.max_buffered_bytes = 1 << 16;
  lim.max_header_block = 1 << 14;
  lim.max_header_list = 1 << 13;
  lim.max_streams = 8;
  uint64_t exchanges = 0;
  Decoder d(lim, [&](const Exchange& e) {
    exchanges++;
    (void)path_keys(e.path);
  });
  uint32_t seq[2][2] = {{1000, 5000}, {9000, 13000}};
  size_t i = 0;
  while (i + 3 <= size) {
    const uint8_t f = data[i];
    size_t len = size_t(data[i + 1]) << 8 | data[i + 2];
    i += 3;
    if (len > size - i) len = size - i;
    std::span<const uint8_t> payload(data + i, len);
    i += len;
    const int conn = (f >> 6) & 1, dir = f & 1;
    if (f & 0x10) {
      d.tls_data(7, 0x1000 + conn, dir, i, payload);
      continue;
    }
    Endpoint c, s;
    c.addr[15] = 1;
    s.addr[15] = 2;
    c.port = 40000 + conn;
    s.port = 7777;
    Segment g;
    g.src = dir ? s : c;
    g.dst = dir ? c : s;
    if ((f & 0x20) && !payload.empty()) {
      seq[conn][dir] += payload[0];
      payload = payload.subspan(1);
    }
    g.seq = seq[conn][dir];
    g.syn = f & 0x02;
    g.fin = f & 0x04;
    g.rst = f & 0x08;
    g.ack = dir || !g.syn;
    g.ts_ns = i;
    g.data = payload;
    d.segment(g);
    seq[conn][dir] += static_cast<uint32_t>(payload.size()) + (g.syn ? 1 : 0) + (g.fin ? 1 : 0);
  }
  // The JSON of whatever was counted must always build.
  const auto& st = d.stats();
  (void)st.truth_sections().dump();
  (void)st.to_json().dump();
  if (st.exchanges != exchanges) __builtin_trap();
  return 0;
}
