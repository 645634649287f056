#include "replay/pcap_reader.h"

#include "replay/pcapng_source.h"

#include "common/file.h"

#include <pcap/pcap.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

namespace kagami::replay {
namespace {

constexpr size_t kEthHlen = 14;
constexpr size_t kSllHlen = 16;   // struct sll_header (pcap/sll.h)
constexpr size_t kSll2Hlen = 20;  // struct sll2_header
constexpr size_t kNullHlen = 4;   // DLT_NULL / DLT_LOOP address family

constexpr uint16_t kEthPIp = 0x0800;
constexpr uint16_t kEthPIpv6 = 0x86DD;
// Below this an Ethernet type field is an 802.3 length, and a cooked
// capture's protocol field holds a pseudo-protocol (LLC, CAN, netlink...).
constexpr uint16_t kMinEthertype = 0x0600;
constexpr uint16_t kArphrdNetlink = 824;  // cooked netlink monitor captures

// Fixed locally administered MACs for synthesized headers: recognisable in a
// hex dump and never a real NIC's address.
constexpr uint8_t kSynthDst[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
constexpr uint8_t kSynthSrc[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// Ethertype from the first nibble of an IP header; 0 when it is neither.
uint16_t ethertype_of_ip(const uint8_t* p, size_t len) {
  if (len == 0) return 0;
  switch (p[0] >> 4) {
    case 4: return kEthPIp;
    case 6: return kEthPIpv6;
    default: return 0;
  }
}

}  // namespace

bool link_type_supported(int dlt) {
  switch (dlt) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case DLT_LINUX_SLL2:
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
    case DLT_NULL:
    case DLT_LOOP:
      return true;
    default:
      return false;
  }
}

PcapReader::~PcapReader() {
  if (pcap_) pcap_close(pcap_);  // also fcloses the FILE
}

std::string link_type_to_name(int dlt) {
  const char* n = pcap_datalink_val_to_name(dlt);
  return n ? n : ("DLT_" + std::to_string(dlt));
}

Result<std::unique_ptr<PcapReader>> PcapReader::from_file(FILE* f, std::string name, std::vector<uint8_t> backing) {
  std::unique_ptr<PcapReader> r(new PcapReader());
  r->name_ = std::move(name);
  r->backing_ = std::move(backing);
  // Normalized frames are at most one record plus a synthesized header.
  r->buf_.reserve(1 << 16);
  uint8_t magic[4] = {};
  size_t n = std::fread(magic, 1, 4, f);
  std::rewind(f);
  if (n == 4 && std::memcmp(magic, "\x0a\x0d\x0d\x0a", 4) == 0) {
    r->ng_ = std::make_unique<PcapngSource>(f, r->name_);
    auto s = r->ng_->start();
    if (!s) return s.error().with_context("capture " + r->name_);
    return r;
  }
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  // Nanosecond precision: libpcap scales microsecond files up, so ts_ns is
  // exact for both.
  r->pcap_ = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (!r->pcap_) {
    std::fclose(f);
    return make_error("capture {}: not a readable pcap/pcapng file: {}", r->name_, errbuf);
  }
  return r;
}

Result<std::unique_ptr<PcapReader>> PcapReader::open(const std::string& path) {
  // A regular file only: /dev/zero is "a character device", not "empty",
  // and a FIFO without writer cannot block the open.
  auto fd = open_regular_file(path, "capture");
  if (!fd) return fd.error();
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return errno_error(errno, "capture {}", path);
  if (st.st_size == 0) return make_error("capture {}: not a readable pcap/pcapng file: empty file", path);
  FILE* f = ::fdopen(fd->get(), "rb");
  if (!f) return errno_error(errno, "capture {}", path);
  fd->release();  // the FILE owns it now
  // 1 MiB of stdio buffer: the default 4 KiB makes a read() per few frames,
  // and a syscall costs ~1.2 us on a VM with PTI (15 ms per 30 MB capture).
  // Owned by the reader (freed after fclose).
  auto buf = std::make_unique<char[]>(kReadBuffer);
  std::setvbuf(f, buf.get(), _IOFBF, kReadBuffer);
  auto r = from_file(f, path, {});
  if (r) (*r)->read_buffer_ = std::move(buf);
  return r;
}

Result<std::unique_ptr<PcapReader>> PcapReader::open_memory(std::span<const uint8_t> bytes,
                                                            const std::string& name) {
  if (bytes.empty()) return make_error("capture {}: empty", name);
  std::vector<uint8_t> backing(bytes.begin(), bytes.end());
  FILE* f = ::fmemopen(backing.data(), backing.size(), "rb");
  if (!f) return errno_error(errno, "capture {}: fmemopen", name);
  // The vector's heap buffer does not move when the vector is moved, so the
  // FILE keeps pointing at valid memory.
  return from_file(f, name, std::move(backing));
}

int PcapReader::link_type() const {
  if (pcap_) return pcap_datalink(pcap_);
  return ng_->link_types().empty() ? -1 : ng_->link_types().front();
}

std::string PcapReader::link_type_name() const {
  if (pcap_) return link_type_to_name(pcap_datalink(pcap_));
  std::string out;
  std::vector<int> done;
  for (int lt : ng_->link_types()) {
    if (std::find(done.begin(), done.end(), lt) != done.end()) continue;
    done.push_back(lt);
    out += (out.empty() ? "" : ",") + link_type_to_name(lt);
  }
  return out.empty() ? "none" : out;
}

const char* PcapReader::normalize(int link_type, const uint8_t* d, uint32_t caplen) {
  buf_.clear();
  auto synth = [&](uint16_t ethertype, const uint8_t* src_mac, const uint8_t* payload, size_t len) {
    buf_.resize(kEthHlen + len);
    std::memcpy(buf_.data(), kSynthDst, 6);
    std::memcpy(buf_.data() + 6, src_mac ? src_mac : kSynthSrc, 6);
    buf_[12] = static_cast<uint8_t>(ethertype >> 8);
    buf_[13] = static_cast<uint8_t>(ethertype);
    if (len) std::memcpy(buf_.data() + kEthHlen, payload, len);
  };

  switch (link_type) {
    case DLT_EN10MB:
      if (caplen < kEthHlen) return kSkipShorterThanLinkHeader;
      buf_.assign(d, d + caplen);
      return nullptr;

    case DLT_LINUX_SLL: {
      // pkttype(2) hatype(2) halen(2) addr(8) protocol(2)
      if (caplen < kSllHlen) return kSkipShorterThanLinkHeader;
      uint16_t hatype = be16(d + 2), halen = be16(d + 4), proto = be16(d + 14);
      if (hatype == kArphrdNetlink || proto < kMinEthertype) return kSkipNonIpPayload;
      synth(proto, halen == 6 ? d + 6 : nullptr, d + kSllHlen, caplen - kSllHlen);
      return nullptr;
    }

    case DLT_LINUX_SLL2: {
      // protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8)
      if (caplen < kSll2Hlen) return kSkipShorterThanLinkHeader;
      uint16_t proto = be16(d), hatype = be16(d + 8);
      uint8_t halen = d[11];
      if (hatype == kArphrdNetlink || proto < kMinEthertype) return kSkipNonIpPayload;
      synth(proto, halen == 6 ? d + 12 : nullptr, d + kSll2Hlen, caplen - kSll2Hlen);
      return nullptr;
    }

    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6: {
      uint16_t et = ethertype_of_ip(d, caplen);
      if (caplen == 0) return kSkipShorterThanLinkHeader;
      if (!et) return kSkipNonIpPayload;
      synth(et, nullptr, d, caplen);
      return nullptr;
    }

    case DLT_NULL:
    case DLT_LOOP: {
      if (caplen <= kNullHlen) return kSkipShorterThanLinkHeader;
      uint16_t et = ethertype_of_ip(d + kNullHlen, caplen - kNullHlen);
      if (!et) return kSkipNonIpPayload;
      synth(et, nullptr, d + kNullHlen, caplen - kNullHlen);
      return nullptr;
    }

    default:
      return kSkipUnsupportedLinkType;
  }
}

Result<bool> PcapReader::next(Frame& out) {
  if (!sticky_error_.empty()) return make_error("{}", sticky_error_);
  // Each iteration consumes one record; the loop ends at EOF or error, so it
  // is bounded by the file.
  for (;;) {
    const uint8_t* data = nullptr;
    uint32_t caplen = 0, len = 0;
    uint64_t ts_ns = 0;
    int lt = 0;
    if (ng_) {
      PcapngPacket p;
      auto more = ng_->next(p);
      if (!more) {
        sticky_error_ = fmt::format("capture {}: after frame {}: {}", name_, frames_read_, more.error().message);
        return make_error("{}", sticky_error_);
      }
      if (!*more) return false;
      data = p.data;
      caplen = p.cap_len;
      len = p.wire_len;
      ts_ns = p.ts_ns;
      lt = p.link_type;
    } else {
      struct pcap_pkthdr* hdr = nullptr;
      const u_char* d = nullptr;
      int rc = pcap_next_ex(pcap_, &hdr, &d);
      if (rc == PCAP_ERROR_BREAK) return false;  // end of file
      if (rc != 1) {
        // libpcap's messages are precise ("truncated dump file; tried to
        // read 74 captured bytes, only got 20"); add where.
        sticky_error_ = fmt::format("capture {}: record after frame {} unreadable: {}", name_, frames_read_,
                                    pcap_geterr(pcap_));
        return make_error("{}", sticky_error_);
      }
      data = d;
      caplen = hdr->caplen;
      len = hdr->len;
      // With PCAP_TSTAMP_PRECISION_NANO, tv_usec holds nanoseconds.
      ts_ns = static_cast<uint64_t>(hdr->ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(hdr->ts.tv_usec);
      lt = pcap_datalink(pcap_);
    }
    frames_read_++;
    if (caplen < len) snapped_++;
    const char* skip = normalize(lt, data, caplen);
    if (skip) {
      skipped_[skip]++;
      continue;
    }
    out.number = frames_read_;
    out.data = std::span<const uint8_t>(buf_.data(), buf_.size());
    out.wire_len = len;
    out.cap_len = caplen;
    out.ts_ns = ts_ns;
    out.link_type = lt;
    return true;
  }
}

}  // namespace kagami::replay
