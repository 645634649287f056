#include "replay/pcap_reader.h"

#include <pcap/pcap.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

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

PcapReader::PcapReader(pcap_t* p, std::string name, std::vector<uint8_t> backing)
    : pcap_(p), name_(std::move(name)), backing_(std::move(backing)) {
  link_type_ = pcap_datalink(p);
  supported_ = link_type_supported(link_type_);
  // Normalized frames are at most the snapshot length plus a synthesized
  // header; libpcap already refuses records longer than its maximum.
  buf_.reserve(1 << 16);
}

PcapReader::~PcapReader() {
  if (pcap_) pcap_close(pcap_);  // also fcloses the fmemopen FILE
}

Result<std::unique_ptr<PcapReader>> PcapReader::open(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_error(errno, "capture {}", path);
  if (S_ISDIR(st.st_mode)) return make_error("capture {}: is a directory", path);
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  // Nanosecond precision: libpcap scales microsecond files up, so ts_ns is
  // exact for both.
  pcap_t* p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (!p) return make_error("capture {}: not a readable pcap/pcapng file: {}", path, errbuf);
  return std::unique_ptr<PcapReader>(new PcapReader(p, path, {}));
}

Result<std::unique_ptr<PcapReader>> PcapReader::open_memory(std::span<const uint8_t> bytes,
                                                            const std::string& name) {
  if (bytes.empty()) return make_error("capture {}: empty", name);
  std::vector<uint8_t> backing(bytes.begin(), bytes.end());
  FILE* f = ::fmemopen(backing.data(), backing.size(), "rb");
  if (!f) return errno_error(errno, "capture {}: fmemopen", name);
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (!p) {
    std::fclose(f);
    return make_error("capture {}: not a readable pcap/pcapng file: {}", name, errbuf);
  }
  // The vector's heap buffer does not move when the vector is moved, so the
  // FILE keeps pointing at valid memory.
  return std::unique_ptr<PcapReader>(new PcapReader(p, name, std::move(backing)));
}

std::string PcapReader::link_type_name() const {
  const char* n = pcap_datalink_val_to_name(link_type_);
  return n ? n : ("DLT_" + std::to_string(link_type_));
}

const char* PcapReader::normalize(const uint8_t* d, uint32_t caplen) {
  buf_.clear();
  auto synth = [&](uint16_t ethertype, const uint8_t* src_mac, const uint8_t* payload, size_t len) {
    buf_.resize(kEthHlen + len);
    std::memcpy(buf_.data(), kSynthDst, 6);
    std::memcpy(buf_.data() + 6, src_mac ? src_mac : kSynthSrc, 6);
    buf_[12] = static_cast<uint8_t>(ethertype >> 8);
    buf_[13] = static_cast<uint8_t>(ethertype);
    if (len) std::memcpy(buf_.data() + kEthHlen, payload, len);
  };

  switch (link_type_) {
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
  // Each iteration consumes one record; the loop ends at EOF or error, so it
  // is bounded by the file.
  for (;;) {
    struct pcap_pkthdr* hdr = nullptr;
    const u_char* data = nullptr;
    int rc = pcap_next_ex(pcap_, &hdr, &data);
    if (rc == PCAP_ERROR_BREAK) return false;  // end of file
    if (rc != 1) {
      // libpcap's messages are precise ("truncated dump file; tried to read
      // 74 captured bytes, only got 20", "an interface has a type 1
      // different from the type of the first interface"); add where.
      return make_error("capture {}: record after frame {} unreadable: {}", name_, frames_read_,
                        pcap_geterr(pcap_));
    }
    frames_read_++;
    if (hdr->caplen < hdr->len) snapped_++;
    const char* skip = normalize(data, hdr->caplen);
    if (skip) {
      skipped_[skip]++;
      continue;
    }
    out.number = frames_read_;
    out.data = std::span<const uint8_t>(buf_.data(), buf_.size());
    out.wire_len = hdr->len;
    out.cap_len = hdr->caplen;
    // With PCAP_TSTAMP_PRECISION_NANO, tv_usec holds nanoseconds.
    out.ts_ns = static_cast<uint64_t>(hdr->ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(hdr->ts.tv_usec);
    return true;
  }
}

}  // namespace kagami::replay
