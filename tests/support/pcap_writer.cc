#include "support/pcap_writer.h"

#include <cerrno>
#include <cstdio>

namespace kagami::test {
namespace {

void put16(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}
void put32(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; i++) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put_be16(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void pad4(std::vector<uint8_t>& b) {
  while (b.size() % 4) b.push_back(0);
}
uint16_t ethertype_of(const std::vector<uint8_t>& ip) {
  return (!ip.empty() && (ip[0] >> 4) == 6) ? 0x86DD : 0x0800;
}

}  // namespace

std::vector<uint8_t> make_pcap(uint32_t link_type, const std::vector<PcapRecord>& records, bool nanosecond,
                               uint32_t snaplen) {
  std::vector<uint8_t> b;
  put32(b, nanosecond ? 0xa1b23c4d : 0xa1b2c3d4);
  put16(b, 2);
  put16(b, 4);
  put32(b, 0);  // thiszone
  put32(b, 0);  // sigfigs
  put32(b, snaplen);
  put32(b, link_type);
  for (const auto& r : records) {
    uint64_t sec = r.ts_ns / 1000000000ull, frac = r.ts_ns % 1000000000ull;
    put32(b, static_cast<uint32_t>(sec));
    put32(b, static_cast<uint32_t>(nanosecond ? frac : frac / 1000));
    put32(b, static_cast<uint32_t>(r.data.size()));
    put32(b, r.wire_len ? r.wire_len : static_cast<uint32_t>(r.data.size()));
    b.insert(b.end(), r.data.begin(), r.data.end());
  }
  return b;
}

std::vector<uint8_t> make_pcapng(const std::vector<uint32_t>& interface_link_types,
                                 const std::vector<PcapRecord>& records) {
  std::vector<uint8_t> b;
  // Section header block.
  put32(b, 0x0A0D0D0A);
  put32(b, 28);
  put32(b, 0x1A2B3C4D);
  put16(b, 1);
  put16(b, 0);
  put32(b, 0xffffffff);  // section length unknown
  put32(b, 0xffffffff);
  put32(b, 28);
  for (uint32_t lt : interface_link_types) {
    // Interface description block with if_tsresol = 9 (nanoseconds).
    size_t start = b.size();
    put32(b, 0x00000001);
    put32(b, 0);  // length, patched below
    put16(b, static_cast<uint16_t>(lt));
    put16(b, 0);
    put32(b, 262144);
    put16(b, 9);  // if_tsresol
    put16(b, 1);
    b.push_back(9);
    pad4(b);
    put16(b, 0);  // opt_endofopt
    put16(b, 0);
    uint32_t len = static_cast<uint32_t>(b.size() - start + 4);
    put32(b, len);
    for (int i = 0; i < 4; i++) b[start + 4 + i] = static_cast<uint8_t>(len >> (8 * i));
  }
  for (const auto& r : records) {
    size_t start = b.size();
    put32(b, 0x00000006);
    put32(b, 0);
    put32(b, r.interface);
    put32(b, static_cast<uint32_t>(r.ts_ns >> 32));
    put32(b, static_cast<uint32_t>(r.ts_ns));
    put32(b, static_cast<uint32_t>(r.data.size()));
    put32(b, r.wire_len ? r.wire_len : static_cast<uint32_t>(r.data.size()));
    b.insert(b.end(), r.data.begin(), r.data.end());
    pad4(b);
    uint32_t len = static_cast<uint32_t>(b.size() - start + 4);
    put32(b, len);
    for (int i = 0; i < 4; i++) b[start + 4 + i] = static_cast<uint8_t>(len >> (8 * i));
  }
  return b;
}

std::vector<uint8_t> frame_for_link(uint32_t link_type, const std::vector<uint8_t>& ip) {
  std::vector<uint8_t> f;
  uint16_t et = ethertype_of(ip);
  switch (link_type) {
    case kLinkEthernet:
      f = {0x02, 0, 0, 0, 0, 0xaa, 0x02, 0, 0, 0, 0, 0xbb};
      put_be16(f, et);
      break;
    case kLinkSll:
      put_be16(f, 0);       // pkttype: to us
      put_be16(f, 1);       // ARPHRD_ETHER
      put_be16(f, 6);       // halen
      f.insert(f.end(), {0x02, 0, 0, 0, 0, 0xcc, 0, 0});
      put_be16(f, et);
      break;
    case kLinkSll2:
      put_be16(f, et);
      put_be16(f, 0);       // reserved
      f.insert(f.end(), {0, 0, 0, 7});  // ifindex
      put_be16(f, 1);       // ARPHRD_ETHER
      f.push_back(0);       // pkttype
      f.push_back(6);       // halen
      f.insert(f.end(), {0x02, 0, 0, 0, 0, 0xdd, 0, 0});
      break;
    case kLinkNull:
      put32(f, et == 0x86DD ? 10 : 2);  // AF_INET6 / AF_INET, host order of a Linux x86 writer
      break;
    case kLinkLoop:
      f = {0, 0, 0, static_cast<uint8_t>(et == 0x86DD ? 10 : 2)};
      break;
    default:  // raw IP link types
      break;
  }
  f.insert(f.end(), ip.begin(), ip.end());
  return f;
}

Result<void> write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return errno_error(errno, "open {}", path);
  size_t n = std::fwrite(bytes.data(), 1, bytes.size(), f);
  int rc = std::fclose(f);
  if (n != bytes.size() || rc != 0) return make_error("write {}: short write", path);
  return ok();
}

}  // namespace kagami::test
