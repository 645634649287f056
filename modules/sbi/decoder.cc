#include "modules/sbi/decoder.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace kagami::sbi {
namespace {

using nlohmann::json;

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// HTTP/2 frame types and flags (RFC 9113 section 6).
constexpr uint8_t kHeaders = 1, kSettings = 4, kPushPromise = 5, kContinuation = 9;
constexpr uint8_t kEndHeaders = 0x4, kPadded = 0x8, kPriority = 0x20;
constexpr uint16_t kSettingsHeaderTableSize = 1;

// Methods an HTTP/1.1 request line may start with (RFC 9110 section 9 and
// the WebDAV ones seen on cores): a client stream starting otherwise is not
// HTTP/1.1.
bool is_method(std::string_view m) {
  static constexpr std::string_view kMethods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD",
                                                  "OPTIONS", "CONNECT", "TRACE"};
  return std::find(std::begin(kMethods), std::end(kMethods), m) != std::end(kMethods);
}

// Header values go into JSON keys, metric labels and events: bytes outside
// printable ASCII are percent-encoded as in a URI ("%AF"; JSON needs valid
// UTF-8, and a hostile :path must not break the agent's output), and the
// length is capped.
std::string printable(std::string_view v, size_t max) {
  std::string o;
  for (char ch : v.substr(0, max)) {
    const auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u > 0x7e) o += fmt::format("%{:02X}", u);
    else o += ch;
  }
  return o;
}

std::string lower(std::string_view s) {
  std::string o(s);
  for (auto& ch : o) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return o;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool parse_u64(std::string_view s, uint64_t& out, int base = 10) {
  if (s.empty() || s.size() > 16) return false;
  uint64_t v = 0;
  for (char ch : s) {
    int d;
    if (ch >= '0' && ch <= '9') d = ch - '0';
    else if (base == 16 && ch >= 'a' && ch <= 'f') d = ch - 'a' + 10;
    else if (base == 16 && ch >= 'A' && ch <= 'F') d = ch - 'A' + 10;
    else return false;
    v = v * base + d;
  }
  out = v;
  return true;
}

// Whether `seg` is a whole number of well-formed HTTP/2 frames: every frame
// header plausible for its type (RFC 9113 section 6: stream 0 or not, fixed
// lengths, at most the default SETTINGS_MAX_FRAME_SIZE 16384 since no
// SETTINGS raising it was seen) and the last frame ending exactly at the
// segment's end. Text or binary payload taken for a frame header fails one
// of these with near certainty; decoding then relies on HPACK being sound
// from an empty table (docs/sbi.md, "Connections seen from the middle").
bool h2_frames_walk(std::span<const uint8_t> seg) {
  size_t pos = 0, n = 0;
  // Each iteration consumes at least 9 bytes: at most seg.size() / 9.
  while (pos + 9 <= seg.size()) {
    const uint8_t* h = seg.data() + pos;
    const uint32_t len = uint32_t(h[0]) << 16 | uint32_t(h[1]) << 8 | h[2];
    const uint8_t type = h[3];
    const bool reserved = h[5] & 0x80;
    const uint32_t stream = (uint32_t(h[5] & 0x7f) << 24) | uint32_t(h[6]) << 16 | uint32_t(h[7]) << 8 | h[8];
    if (len > 16384 || type > 9 || reserved) return false;
    const bool conn_level = type == 4 || type == 6 || type == 7;
    if (conn_level != (stream == 0) && type != 8) return false;
    if ((type == 4 && len % 6) || (type == 6 && len != 8) || (type == 8 && len != 4) || (type == 3 && len != 4) ||
        (type == 2 && len != 5))
      return false;
    pos += 9 + len;
    n++;
  }
  return n > 0 && pos == seg.size();
}

json counts(const std::map<std::string, uint64_t>& m) {
  json o = json::object();
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

}  // namespace

std::string Endpoint::to_string() const {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(addr.data(), kMapped, 12) == 0)
    return fmt::format("{}.{}.{}.{}:{}", addr[12], addr[13], addr[14], addr[15], port);
  std::string s = "[";
  for (int i = 0; i < 16; i += 2) {
    if (i) s += ':';
    s += fmt::format("{:x}", (addr[i] << 8) | addr[i + 1]);
  }
  return s + fmt::format("]:{}", port);
}

// ---- path keys ----------------------------------------------------------------

bool is_id_segment(std::string_view seg) {
  // SUPI/GPSI/SUCI forms of TS 29.571 (imsi-..., nai-..., msisdn-...) and
  // 5G-GUTIs as AMFs put them in ue-contexts paths.
  static constexpr std::string_view kPrefixes[] = {"imsi-", "suci-", "nai-", "msisdn-", "extid-", "gli-",
                                                   "gci-", "imei-", "imeisv-", "5g-guti-"};
  for (auto p : kPrefixes)
    if (seg.substr(0, p.size()) == p) return true;
  bool digit = false, hex_only = true;
  int run = 0, max_run = 0;
  for (char ch : seg) {
    const bool d = ch >= '0' && ch <= '9';
    digit |= d;
    run = d ? run + 1 : 0;
    max_run = std::max(max_run, run);
    if (!d && !((ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') || ch == '-')) hex_only = false;
  }
  // Hex digits and dashes with at least one digit: numbers, UUIDs, hex ids
  // ("1", "5a1b...", "c0ffee-12"). Four digits in a row anywhere: ids
  // with a prefix of their own ("smf-20893"). Words with a digit stay
  // ("5g-aka-confirmation", "v2" never gets here).
  return (digit && hex_only) || max_run >= 4;
}

PathKeys path_keys(std::string_view path) {
  PathKeys k;
  path = path.substr(0, path.find('?'));
  std::vector<std::string_view> seg;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) seg.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  if (seg.empty()) {
    k.service_key = k.service_version = k.path_template = "/";
    return k;
  }
  k.service = std::string(seg[0]);
  k.service_key = "/" + k.service;
  k.service_version = seg.size() > 1 ? fmt::format("/{}/{}", seg[0], seg[1]) : k.service_key;
  for (size_t n = 0; n < seg.size(); n++) {
    k.path_template += '/';
    k.path_template += n >= 2 && is_id_segment(seg[n]) ? std::string("{id}") : std::string(seg[n]);
  }
  return k;
}

// ---- connections --------------------------------------------------------------

struct Decoder::Dir {
  // TCP: next expected sequence number once the ISN is known.
  bool have_isn = false;
  uint32_t next_seq = 0;
  std::map<uint64_t, std::vector<uint8_t>> ooo;  // stream offset -> bytes not yet in order
  uint64_t offset = 0;                            // stream bytes delivered in order
  size_t ooo_bytes = 0;
  bool fin = false;
  bool preface_anchor = false, h1_anchor = false;  // how a SYN-less client stream was picked up
  bool resynced = false;                           // picked up at an h2 frame boundary
  bool broken = false;  // a gap, a decode error or a limit: nothing more is parsed
  std::string buf;      // in-order bytes not yet parsed
  // HTTP/2
  bool preface_done = false;
  uint64_t skip = 0;  // payload bytes of a frame we do not keep (DATA, ...)
  nghttp2_hd_inflater* inflater = nullptr;
  std::string block;  // HEADERS/PUSH_PROMISE + CONTINUATION payloads so far
  uint32_t block_stream = 0;
  bool block_open = false, block_is_headers = false;
  // HTTP/1.1
  enum class Body { None, Length, Chunked, ChunkData, ChunkCrlf, Trailer, UntilClose } body = Body::None;
  uint64_t body_left = 0;

  ~Dir() {
    if (inflater) nghttp2_hd_inflate_del(inflater);
  }
};

struct Decoder::Conn {
  enum class Proto { Unknown, H2, H1, NotHttp } proto = Proto::Unknown;
  bool tls = false;
  bool client_known = false;  // roles decided: a/b fixed, dir[0] is a's stream
  Endpoint a, b;              // a sends dir[0], b sends dir[1]
  Endpoint client, server;    // labels: == a, b except for a resynchronised h2 connection
  bool resynced = false;      // picked up mid-stream at an h2 frame boundary (anchor())
  bool counted_proto = false, labels_fixed = false;
  Dir dir[2];  // [0] client -> server, [1] server -> client
  uint64_t last_use = 0;
  bool mid_stream_counted = false;
  int tls_role = -1;  // TLS: 1 the probed process is the client, 0 the server
  uint32_t tls_pid = 0;
  struct Pending {
    std::string method, path;
    uint64_t ts = 0;
  };
  std::map<uint32_t, Pending> streams;  // HTTP/2 stream id -> request
  std::deque<Pending> h1_pending;       // HTTP/1.1 requests awaiting a response
};

Decoder::Decoder(Limits limits, OnExchange on_exchange) : limits_(limits), on_exchange_(std::move(on_exchange)) {}
Decoder::~Decoder() = default;

void Decoder::error(const char* reason, uint64_t n) { stats_.errors[reason] += n; }

void Decoder::emit(const Exchange& e) {
  stats_.exchanges++;
  if (on_exchange_) on_exchange_(e);
}

Decoder::Conn* Decoder::conn_for(const Segment& s, bool& from_client) {
  const bool src_low = s.src < s.dst;
  auto key = src_low ? std::make_pair(s.src, s.dst) : std::make_pair(s.dst, s.src);
  auto it = conns_.find(key);
  if (it == conns_.end()) {
    // A new connection starts with a SYN; anything else is the middle of
    // one we cannot decode. It gets an entry all the same, so its other
    // segments are counted once and not as new connections each.
    if (conns_.size() >= limits_.max_connections) {
      auto lru = std::min_element(conns_.begin(), conns_.end(),
                                  [](const auto& a, const auto& b) { return a.second->last_use < b.second->last_use; });
      finish_conn(*lru->second);
      conns_.erase(lru);
      stats_.conns.evicted++;
    }
    it = conns_.emplace(key, std::make_unique<Conn>()).first;
    stats_.conns.seen++;
  }
  Conn& c = *it->second;
  c.last_use = ++lru_clock_;
  if (!c.client_known && s.syn) {
    // SYN without ACK comes from the client; SYN+ACK from the server.
    c.client = c.a = s.ack ? s.dst : s.src;
    c.server = c.b = s.ack ? s.src : s.dst;
    c.client_known = true;
  }
  from_client = c.client_known && s.src == c.a;
  return &c;
}

// A direction whose SYN was not seen can still be followed from a segment
// that starts with bytes only the start of a stream can hold (docs/sbi.md,
// "Connections seen from the middle"):
//   client, HTTP/2:  the connection preface "PRI * HTTP/2.0..." (RFC 9113 3.4);
//   server, HTTP/2:  a SETTINGS frame on stream 0 without ACK, the server's
//                    mandatory first frame, once the client's preface
//                    anchored (or before it: then the preface must follow);
//   HTTP/1.1:        a request line ("GET /x HTTP/1.1") or a status line
//                    ("HTTP/1.1 200"): messages carry no state across each
//                    other, so following from a message start loses nothing
//                    for the messages after it.
// Anything else stays not decodable (counted as mid_stream).
void Decoder::anchor(Conn& c, const Segment& s, bool& from_client) {
  std::string_view v(reinterpret_cast<const char*>(s.data.data()), s.data.size());
  const bool preface = v.substr(0, kPreface.size()) == kPreface;
  const size_t eol = v.find("\r\n");
  const std::string_view line = v.substr(0, eol);
  const size_t sp = line.find(' ');
  const bool request_line = sp != std::string_view::npos && is_method(line.substr(0, sp)) &&
                            line.find(" HTTP/1.") != std::string_view::npos;
  const bool status_line = v.substr(0, 7) == "HTTP/1.";
  const auto* b = s.data.data();
  const bool settings = v.size() >= 9 && b[3] == kSettings && b[4] == 0 && b[5] == 0 && b[6] == 0 &&
                        b[7] == 0 && b[8] == 0 && ((uint32_t(b[0]) << 16 | uint32_t(b[1]) << 8 | b[2]) % 6) == 0;
  const bool frames = !preface && !request_line && !status_line && h2_frames_walk(s.data);
  if (!c.client_known) {
    if (preface || request_line) {
      c.client = c.a = s.src;
      c.server = c.b = s.dst;
    } else if (settings || status_line) {
      c.client = c.a = s.dst;
      c.server = c.b = s.src;
    } else if (frames) {
      // Roles unknown until a header block says :method or :status; a is
      // whoever was seen first, the labels follow the first request.
      c.client = c.a = s.src;
      c.server = c.b = s.dst;
      c.resynced = true;
    } else {
      return;
    }
    c.client_known = true;
    from_client = s.src == c.a;
  }
  Dir& d = c.dir[from_client ? 0 : 1];
  if (d.have_isn) return;
  const bool h2 = c.proto == Conn::Proto::H2 || c.dir[0].preface_anchor;
  const bool h1 = c.proto == Conn::Proto::H1 || c.dir[0].h1_anchor;
  bool ok = false;
  if (c.resynced || (frames && !h1 && !c.dir[0].preface_anchor && !c.dir[1].have_isn)) {
    // Mid-stream HTTP/2 on both sides (see h2_frames_walk()).
    ok = frames;
    if (ok && !c.resynced) c.resynced = true;
  } else if (from_client) {
    ok = preface || request_line;
    d.preface_anchor = preface;
    d.h1_anchor = request_line;
  } else {
    ok = (settings && !h1) || (status_line && !h2);
  }
  if (!ok) return;
  if (c.resynced) {
    c.proto = Conn::Proto::H2;
    d.preface_done = true;
    d.resynced = true;
    if (!c.counted_proto) {
      c.counted_proto = true;
      stats_.conns.h2++;
      stats_.resynced++;
    }
  }
  d.have_isn = true;
  d.next_seq = s.seq;
  stats_.anchored++;
}

void Decoder::segment(const Segment& s) {
  stats_.tcp.segments++;
  stats_.tcp.bytes += s.data.size();
  bool from_client = false;
  Conn* cp = conn_for(s, from_client);
  Conn& c = *cp;
  if (!s.syn && !s.data.empty()) anchor(c, s, from_client);
  if (!c.client_known) {
    if (!c.mid_stream_counted && !s.data.empty()) {
      c.mid_stream_counted = true;
      error("mid_stream");
    }
    return;
  }
  Dir& d = c.dir[from_client ? 0 : 1];
  if (s.syn) {
    if (!d.have_isn) {
      d.have_isn = true;
      d.next_seq = s.seq + 1;
    }
    if (s.data.empty()) return;
  }
  if (!d.have_isn) {
    // No SYN and no anchor (below) for this direction: where its stream
    // starts is unknown.
    if (!c.mid_stream_counted && !s.data.empty()) {
      c.mid_stream_counted = true;
      error("mid_stream");
    }
    return;
  }
  const uint32_t seq = s.syn ? s.seq + 1 : s.seq;
  // Stream offset of this segment: the 32-bit distance from the next
  // expected byte, signed (wrap-around safe).
  int32_t dist = static_cast<int32_t>(seq - d.next_seq);
  auto data = s.data;
  if (dist == 9 && c.proto == Conn::Proto::H2 && !d.broken && d.buf.empty() && !d.skip && !d.block_open &&
      h2_frames_walk(data)) {
    // Nine bytes missing between two frame boundaries: exactly one frame
    // with an empty payload (SETTINGS ACK, an empty DATA with END_STREAM),
    // which carries no header block and cannot change the HPACK table.
    // Captures lose these (open5gs_5g-roaming-hr); stepping over them is
    // exact. Should they still come, they are old bytes and ignored.
    stats_.tcp.empty_frame_holes++;
    d.next_seq += 9;
    d.offset += 9;
    dist = 0;
  }
  if (!d.broken && !data.empty()) {
    if (dist < 0) {
      const uint64_t old = static_cast<uint64_t>(-static_cast<int64_t>(dist));
      if (old >= data.size()) {
        stats_.tcp.retransmitted++;
        data = {};
      } else {
        stats_.tcp.retransmitted++;
        data = data.subspan(old);
      }
    }
    if (!data.empty()) {
      if (dist > 0) {
        const uint64_t off = d.offset + static_cast<uint64_t>(dist);
        if (!d.ooo.count(off)) {
          stats_.tcp.out_of_order++;
          d.ooo_bytes += data.size();
          d.ooo.emplace(off, std::vector<uint8_t>(data.begin(), data.end()));
        }
        if (d.ooo_bytes + d.buf.size() > limits_.max_buffered_bytes) {
          // The missing bytes are not coming (lost by the ring or the
          // capture): the stream cannot be followed past them.
          stats_.tcp.gaps++;
          d.broken = true;
          d.ooo.clear();
          d.ooo_bytes = 0;
          d.buf.clear();
        }
      } else {
        feed(c, from_client, s.ts_ns, data);
        // Whatever waited for these bytes.
        while (!d.broken && !d.ooo.empty()) {
          auto it = d.ooo.begin();
          if (it->first > d.offset) break;
          const uint64_t skip = d.offset - it->first;
          std::vector<uint8_t> v = std::move(it->second);
          d.ooo_bytes -= v.size();
          d.ooo.erase(it);
          if (skip < v.size()) feed(c, from_client, s.ts_ns, std::span<const uint8_t>(v).subspan(skip));
        }
      }
    }
  }
  if (s.fin || s.rst) {
    d.fin = true;
    if (!d.ooo.empty() && !d.broken) {
      stats_.tcp.gaps++;
      d.broken = true;
    }
    // A response delimited by the end of the connection ends here.
    if (c.proto == Conn::Proto::H1 && !from_client && d.body == Dir::Body::UntilClose && !d.broken) {
      d.body = Dir::Body::None;
    }
    if (s.rst || (c.dir[0].fin && c.dir[1].fin)) {
      finish_conn(c);
      conns_.erase(s.src < s.dst ? std::make_pair(s.src, s.dst) : std::make_pair(s.dst, s.src));
    }
  }
}

void Decoder::finish_conn(Conn& c) {
  if (!c.streams.empty()) error("requests_without_response", c.streams.size());
  if (!c.h1_pending.empty()) error("requests_without_response", c.h1_pending.size());
  c.streams.clear();
  c.h1_pending.clear();
}

void Decoder::feed(Conn& c, bool from_client, uint64_t ts, std::span<const uint8_t> data) {
  Dir& d = c.dir[from_client ? 0 : 1];
  d.next_seq += static_cast<uint32_t>(data.size());
  d.offset += data.size();
  if (d.broken || c.proto == Conn::Proto::NotHttp) return;
  // Bytes of a frame we skip never enter the buffer.
  if (c.proto == Conn::Proto::H2 && d.skip) {
    const uint64_t n = std::min<uint64_t>(d.skip, data.size());
    d.skip -= n;
    data = data.subspan(n);
  }
  d.buf.append(reinterpret_cast<const char*>(data.data()), data.size());
  parse(c, from_client, ts);
  if (!d.broken && d.buf.size() > limits_.max_buffered_bytes) {
    error("buffer_limit");
    d.broken = true;
    d.buf.clear();
  }
}

void Decoder::parse(Conn& c, bool from_client, uint64_t ts) {
  if (c.proto == Conn::Proto::Unknown) {
    Dir& cd = c.dir[0];
    if (cd.buf.empty()) return;  // the server spoke first: wait for the client
    const size_t n = std::min(cd.buf.size(), kPreface.size());
    if (std::string_view(cd.buf).substr(0, n) == kPreface.substr(0, n)) {
      if (n < kPreface.size()) return;
      c.proto = Conn::Proto::H2;
      stats_.conns.h2++;
      c.counted_proto = true;
    } else {
      const size_t sp = cd.buf.find(' ');
      if (sp == std::string::npos && cd.buf.size() < 8) return;
      if (sp != std::string::npos && is_method(std::string_view(cd.buf).substr(0, sp))) {
        c.proto = Conn::Proto::H1;
        stats_.conns.http1++;
      } else {
        c.proto = Conn::Proto::NotHttp;
        stats_.conns.not_http++;
        for (auto& d : c.dir) {
          d.buf.clear();
          d.buf.shrink_to_fit();
          d.ooo.clear();
          d.ooo_bytes = 0;
        }
        return;
      }
    }
    // Decided: parse what both directions hold (the server's SETTINGS may
    // have come first).
    for (int i = 0; i < 2; i++) {
      if (c.proto == Conn::Proto::H2) parse_h2(c, i == 0, ts);
      else parse_h1(c, i == 0, ts);
    }
    return;
  }
  if (c.proto == Conn::Proto::H2) parse_h2(c, from_client, ts);
  else if (c.proto == Conn::Proto::H1) parse_h1(c, from_client, ts);
}

// ---- HTTP/2 -------------------------------------------------------------------

void Decoder::parse_h2(Conn& c, bool from_client, uint64_t ts) {
  Dir& d = c.dir[from_client ? 0 : 1];
  size_t pos = 0;
  if (from_client && !d.preface_done) {
    if (d.buf.size() < kPreface.size()) return;
    pos = kPreface.size();
    d.preface_done = true;
  }
  // Each iteration consumes one frame header and either its payload or the
  // start of a skip; it ends when the buffer holds less than a frame.
  while (!d.broken) {
    if (d.skip) {
      const uint64_t n = std::min<uint64_t>(d.skip, d.buf.size() - pos);
      d.skip -= n;
      pos += n;
      if (d.skip) break;
    }
    if (d.buf.size() - pos < 9) break;
    const auto* h = reinterpret_cast<const uint8_t*>(d.buf.data() + pos);
    const uint32_t len = (uint32_t(h[0]) << 16) | (uint32_t(h[1]) << 8) | h[2];
    const uint8_t type = h[3], flags = h[4];
    const uint32_t stream = ((uint32_t(h[5]) << 24) | (uint32_t(h[6]) << 16) | (uint32_t(h[7]) << 8) | h[8]) &
                            0x7fffffffu;
    const bool keeps = type == kHeaders || type == kContinuation || type == kPushPromise || type == kSettings;
    if (d.block_open && type != kContinuation) {
      // RFC 9113 6.10: nothing may come between HEADERS and its
      // CONTINUATIONs. The block cannot be decoded; the table is lost.
      error("continuation_expected");
      d.broken = true;
      break;
    }
    if (len > limits_.max_frame) {
      error("oversized_frame");
      d.broken = true;
      break;
    }
    if (!keeps) {
      pos += 9;
      d.skip = len;
      continue;
    }
    if ((type != kSettings && len > limits_.max_header_block) ||
        (type == kSettings && len > 6 * 64)) {
      // A header block this large is hostile or broken; keeping it would
      // let one peer hold megabytes per connection.
      error(type == kSettings ? "oversized_frame" : "header_block_too_large");
      if (type == kHeaders) {
        stats_.h2.headers_frames++;
        stats_.h2.undecoded++;
      }
      d.broken = true;
      break;
    }
    if (d.buf.size() - pos < 9 + size_t(len)) break;  // wait for the rest (split across segments)
    std::string_view p(d.buf.data() + pos + 9, len);
    pos += 9 + len;
    if (type == kSettings) {
      // The receiver's table size bounds the sender's encoder: our
      // inflater for the other direction must accept that size.
      if (!(flags & 0x1)) {
        for (size_t i = 0; i + 6 <= p.size(); i += 6) {
          const auto* q = reinterpret_cast<const uint8_t*>(p.data() + i);
          const uint16_t id = uint16_t((q[0] << 8) | q[1]);
          const uint32_t v = (uint32_t(q[2]) << 24) | (uint32_t(q[3]) << 16) | (uint32_t(q[4]) << 8) | q[5];
          if (id == kSettingsHeaderTableSize) {
            Dir& other = c.dir[from_client ? 1 : 0];
            if (!other.inflater && nghttp2_hd_inflate_new(&other.inflater) != 0) other.inflater = nullptr;
            if (other.inflater) nghttp2_hd_inflate_change_table_size(other.inflater, v);
          }
        }
      }
      continue;
    }
    if (type == kContinuation) {
      if (!d.block_open || stream != d.block_stream) {
        error("unexpected_continuation");
        d.broken = true;
        break;
      }
      d.block.append(p);
    } else {
      size_t skip = 0, pad = 0;
      if (flags & kPadded) {
        if (p.empty()) {
          error("bad_padding");
          d.broken = true;
          break;
        }
        pad = static_cast<uint8_t>(p[0]);
        skip = 1;
      }
      if (type == kHeaders && (flags & kPriority)) skip += 5;
      if (type == kPushPromise) skip += 4;  // promised stream id
      if (skip + pad > p.size()) {
        error("bad_padding");
        if (type == kHeaders) {
          stats_.h2.headers_frames++;
          stats_.h2.undecoded++;
        }
        d.broken = true;
        break;
      }
      if (type == kHeaders) stats_.h2.headers_frames++;
      d.block.assign(p.substr(skip, p.size() - skip - pad));
      d.block_stream = stream;
      d.block_is_headers = type == kHeaders;
      d.block_open = true;
    }
    if (d.block.size() > limits_.max_header_block) {
      error("header_block_too_large");
      if (d.block_is_headers) stats_.h2.undecoded++;
      d.broken = true;
      break;
    }
    if (flags & kEndHeaders) {
      d.block_open = false;
      if (!h2_header_block(c, from_client, ts, d.block_stream, d.block_is_headers)) {
        d.broken = true;
        break;
      }
      d.block.clear();
    }
  }
  if (d.broken) {
    d.buf.clear();
    d.block.clear();
    return;
  }
  d.buf.erase(0, pos);
}

bool Decoder::h2_header_block(Conn& c, bool from_client, uint64_t ts, uint32_t stream, bool headers_frame) {
  Dir& d = c.dir[from_client ? 0 : 1];
  if (!d.inflater && nghttp2_hd_inflate_new(&d.inflater) != 0) {
    d.inflater = nullptr;
    error("out_of_memory");
    return false;
  }
  std::string method, path, status;
  size_t list = 0;
  bool too_large = false;
  auto* in = reinterpret_cast<uint8_t*>(d.block.data());
  size_t left = d.block.size();
  // Each call consumes input and emits at most one header; the input is
  // finite and every call either consumes bytes or ends the block, so the
  // loop ends (nghttp2_hd_inflate_hd2 contract).
  for (;;) {
    nghttp2_nv nv;
    int iflags = 0;
    const ssize_t rv = nghttp2_hd_inflate_hd2(d.inflater, &nv, &iflags, in, left, 1);
    if (rv < 0) {
      // An index past the static and dynamic tables, a bad Huffman code, a
      // table size update over the limit: nghttp2 says HEADER_COMP for all.
      // Picked up mid-stream: the block refers to table entries added
      // before we saw the connection. Not decodable, not an error of the peer.
      error(d.resynced ? "mid_stream_table_unknown" : "hpack_decode_error");
      if (headers_frame) stats_.h2.undecoded++;
      return false;
    }
    in += rv;
    left -= static_cast<size_t>(rv);
    if (iflags & NGHTTP2_HD_INFLATE_EMIT) {
      list += nv.namelen + nv.valuelen + 32;
      if (list > limits_.max_header_list) {
        if (!too_large) error("header_list_too_large");
        too_large = true;  // keep inflating: the table must stay in step
      } else {
        std::string_view name(reinterpret_cast<const char*>(nv.name), nv.namelen);
        std::string_view value(reinterpret_cast<const char*>(nv.value), nv.valuelen);
        if (name == ":method") method = printable(value, 32);
        else if (name == ":path") path = printable(value, 2048);
        else if (name == ":status") status = printable(value, 8);
      }
    }
    if (iflags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(d.inflater);
      break;
    }
    if (!(iflags & NGHTTP2_HD_INFLATE_EMIT) && left == 0) {
      error("hpack_decode_error");  // block ended inside a header
      if (headers_frame) stats_.h2.undecoded++;
      return false;
    }
  }
  if (!headers_frame) return true;  // PUSH_PROMISE: kept for the table only
  if (c.resynced && !c.labels_fixed && (!method.empty() || !status.empty())) {
    // The first request or response tells who the client is.
    const Endpoint& sender = from_client ? c.a : c.b;
    const Endpoint& peer = from_client ? c.b : c.a;
    c.client = method.empty() ? peer : sender;
    c.server = method.empty() ? sender : peer;
    c.labels_fixed = true;
  }
  if (!method.empty()) {
    stats_.h2.requests++;
    stats_.h2.method[method]++;
    auto k = path_keys(path);
    stats_.h2.method_service[method + " " + k.service_key]++;
    stats_.h2.method_service_version[method + " " + k.service_version]++;
    if (c.streams.size() >= limits_.max_streams) {
      error("streams_evicted");
      c.streams.erase(c.streams.begin());
    }
    c.streams[stream] = Conn::Pending{method, path, ts};
  } else if (!status.empty()) {
    stats_.h2.responses++;
    stats_.h2.status[status]++;
    uint64_t code = 0;
    parse_u64(status, code);
    auto it = c.streams.find(stream);
    if (code >= 200 && it != c.streams.end()) {
      Exchange e;
      e.transport = c.tls ? "tls" : "h2c";
      e.method = it->second.method;
      e.path = it->second.path;
      auto k = path_keys(e.path);
      e.service = k.service;
      e.path_template = k.path_template;
      e.status = static_cast<int>(code);
      e.request_ns = it->second.ts;
      e.response_ns = ts;
      e.client = c.client;
      e.server = c.server;
      e.stream_id = stream;
      if (c.tls) {
        e.side = c.tls_role == 1 ? "client" : "server";
        e.pid = c.tls_pid;
      }
      c.streams.erase(it);
      emit(e);
    }
  } else {
    stats_.h2.undecoded++;  // trailers, or a block without pseudo-headers
  }
  return true;
}

// ---- HTTP/1.1 -----------------------------------------------------------------

void Decoder::parse_h1(Conn& c, bool from_client, uint64_t ts) {
  Dir& d = c.dir[from_client ? 0 : 1];
  size_t pos = 0;
  // Each iteration consumes a message head or a piece of a body; it stops
  // when the buffer holds less than the next piece.
  while (!d.broken && pos < d.buf.size()) {
    std::string_view rest = std::string_view(d.buf).substr(pos);
    using B = Dir::Body;
    if (d.body == B::Length || d.body == B::UntilClose) {
      const uint64_t n = d.body == B::Length ? std::min<uint64_t>(d.body_left, rest.size()) : rest.size();
      pos += n;
      if (d.body == B::Length) {
        d.body_left -= n;
        if (!d.body_left) d.body = B::None;
      }
      continue;
    }
    if (d.body == B::ChunkData) {
      const uint64_t n = std::min<uint64_t>(d.body_left, rest.size());
      pos += n;
      d.body_left -= n;
      if (!d.body_left) d.body = B::ChunkCrlf;
      continue;
    }
    if (d.body == B::Chunked || d.body == B::ChunkCrlf || d.body == B::Trailer) {
      const size_t eol = rest.find("\r\n");
      if (eol == std::string_view::npos) {
        if (rest.size() > 1024) {
          error("http1_bad_chunk");
          d.broken = true;
        }
        break;
      }
      std::string_view line = rest.substr(0, eol);
      pos += eol + 2;
      if (d.body == B::ChunkCrlf) {
        if (!line.empty()) {
          error("http1_bad_chunk");
          d.broken = true;
        }
        d.body = B::Chunked;
      } else if (d.body == B::Trailer) {
        if (line.empty()) d.body = B::None;
      } else {
        uint64_t n = 0;
        if (!parse_u64(trim(line.substr(0, line.find(';'))), n, 16)) {
          error("http1_bad_chunk");
          d.broken = true;
          break;
        }
        if (n == 0) d.body = B::Trailer;
        else {
          d.body = B::ChunkData;
          d.body_left = n;
        }
      }
      continue;
    }
    // A message head.
    const size_t end = rest.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (rest.size() > limits_.max_h1_head) {
        error("http1_head_too_large");
        d.broken = true;
      }
      break;
    }
    std::string_view head = rest.substr(0, end);
    pos += end + 4;
    const size_t eol = head.find("\r\n");
    std::string_view start = head.substr(0, eol);
    std::string_view fields = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
    const size_t s1 = start.find(' ');
    const size_t s2 = s1 == std::string_view::npos ? s1 : start.find(' ', s1 + 1);
    if (s1 == std::string_view::npos || s2 == std::string_view::npos) {
      error("http1_bad_start_line");
      d.broken = true;
      break;
    }
    uint64_t content_length = 0;
    bool have_length = false, chunked = false;
    size_t fpos = 0;
    // One header line per iteration; each consumes at least its CRLF.
    while (fpos < fields.size()) {
      size_t fe = fields.find("\r\n", fpos);
      if (fe == std::string_view::npos) fe = fields.size();
      std::string_view line = fields.substr(fpos, fe - fpos);
      fpos = fe + 2;
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      const std::string name = lower(trim(line.substr(0, colon)));
      std::string_view value = trim(line.substr(colon + 1));
      if (name == "content-length") {
        if (!parse_u64(value, content_length)) {
          error("http1_bad_content_length");
          d.broken = true;
          break;
        }
        have_length = true;
      } else if (name == "transfer-encoding" && lower(value).find("chunked") != std::string::npos) {
        chunked = true;
      }
    }
    if (d.broken) break;
    if (from_client) {
      std::string method(start.substr(0, s1));
      std::string uri = printable(start.substr(s1 + 1, s2 - s1 - 1), 2048);
      if (!is_method(method) || start.substr(s2 + 1, 5) != "HTTP/") {
        error("http1_bad_start_line");
        d.broken = true;
        break;
      }
      stats_.h1.requests++;
      stats_.h1.method[method]++;
      auto k = path_keys(uri);
      stats_.h1.method_service[method + " " + k.service_key]++;
      if (c.h1_pending.size() >= limits_.max_streams) {
        error("streams_evicted");
        c.h1_pending.pop_front();
      }
      c.h1_pending.push_back(Conn::Pending{method, uri, ts});
      d.body = chunked ? B::Chunked : (have_length && content_length) ? B::Length : B::None;
      d.body_left = content_length;
    } else {
      uint64_t code = 0;
      if (start.substr(0, 5) != "HTTP/" || !parse_u64(start.substr(s1 + 1, s2 - s1 - 1), code) || code > 999) {
        // "HTTP/1.1 200" without a reason phrase has one space only.
        const std::string_view tail = start.substr(s1 + 1);
        if (start.substr(0, 5) != "HTTP/" || !parse_u64(tail, code) || code > 999) {
          error("http1_bad_start_line");
          d.broken = true;
          break;
        }
      }
      stats_.h1.responses++;
      stats_.h1.status[std::to_string(code)]++;
      bool head_req = false;
      if (code >= 200 || code == 101) {
        if (!c.h1_pending.empty()) {
          auto p = std::move(c.h1_pending.front());
          c.h1_pending.pop_front();
          head_req = p.method == "HEAD";
          Exchange e;
          e.transport = c.tls ? "tls" : "http1";
          e.method = p.method;
          e.path = p.path;
          auto k = path_keys(e.path);
          e.service = k.service;
          e.path_template = k.path_template;
          e.status = static_cast<int>(code);
          e.request_ns = p.ts;
          e.response_ns = ts;
          e.client = c.client;
          e.server = c.server;
          if (c.tls) {
            e.side = c.tls_role == 1 ? "client" : "server";
            e.pid = c.tls_pid;
          }
          emit(e);
        } else {
          error("response_without_request");
        }
      }
      // RFC 9112 6.3: no body for HEAD, 1xx, 204, 304.
      if (head_req || code < 200 || code == 204 || code == 304) d.body = B::None;
      else if (chunked) d.body = B::Chunked;
      else if (have_length) d.body = content_length ? B::Length : B::None;
      else d.body = B::UntilClose;
      d.body_left = content_length;
    }
  }
  // Parsed part of a head missing its line: the remainder must not grow
  // without bound; broken directions drop everything.
  if (d.broken) {
    d.buf.clear();
    return;
  }
  d.buf.erase(0, pos);
}

// ---- TLS plaintext ------------------------------------------------------------

void Decoder::tls_data(uint32_t pid, uint64_t ssl, bool is_write, uint64_t ts_ns, std::span<const uint8_t> data) {
  if (data.empty()) return;
  stats_.tcp.segments++;
  stats_.tcp.bytes += data.size();
  auto key = std::make_pair(pid, ssl);
  auto it = tls_.find(key);
  if (it == tls_.end()) {
    if (tls_.size() >= limits_.max_connections) {
      auto lru = std::min_element(tls_.begin(), tls_.end(),
                                  [](const auto& a, const auto& b) { return a.second->last_use < b.second->last_use; });
      finish_conn(*lru->second);
      tls_.erase(lru);
      stats_.conns.evicted++;
    }
    it = tls_.emplace(key, std::make_unique<Conn>()).first;
    it->second->tls = true;
    it->second->tls_pid = pid;
    stats_.conns.seen++;
  }
  std::string_view v(reinterpret_cast<const char*>(data.data()), data.size());
  const bool preface = v.substr(0, kPreface.size()) == kPreface;
  if (preface && it->second->tls_role >= 0 && it->second->dir[0].offset > 0) {
    // libssl reuses freed SSL objects: a preface on a known (pid, SSL*) is
    // a new connection, never the middle of the old one (the preface
    // exists only at the start of a connection).
    finish_conn(*it->second);
    it->second = std::make_unique<Conn>();
    it->second->tls = true;
    it->second->tls_pid = pid;
    stats_.conns.seen++;
  }
  Conn& c = *it->second;
  c.last_use = ++lru_clock_;
  if (c.tls_role < 0) {
    // The first bytes of a TLS session are the application's first
    // (SSL_write/SSL_read see whole records in order), so these are not
    // guesses about framing: the h2 preface or a request line comes from
    // the client; a SETTINGS frame on stream 0 (the server's connection
    // preface, which a server may write before reading the client's) or a
    // status line from the server.
    const size_t sp = v.find(' ');
    const size_t n = std::min(v.size(), kPreface.size());
    const bool looks_client = v.substr(0, n) == kPreface.substr(0, n) ||
                              (sp != std::string_view::npos && is_method(v.substr(0, sp)));
    const auto* b = data.data();
    const bool looks_server = (data.size() >= 9 && b[3] == kSettings && b[4] == 0 && b[5] == 0 && b[6] == 0 &&
                               b[7] == 0 && b[8] == 0) ||
                              v.substr(0, 7) == "HTTP/1.";
    if (!looks_client && !looks_server) {
      if (!c.mid_stream_counted) {
        c.mid_stream_counted = true;
        error("mid_stream");
      }
      return;
    }
    // tls_role 1: the probed process is the client.
    c.tls_role = looks_client == is_write ? 1 : 0;
    c.client_known = true;
    if (looks_server && !looks_client) {
      // The server spoke first: the client's stream must start with the
      // preface; the server's SETTINGS waits for it in dir[1].
      c.dir[0].preface_done = false;
    }
  }
  const bool from_client = is_write == (c.tls_role == 1);
  feed(c, from_client, ts_ns, data);
}

void Decoder::tls_close(uint32_t pid, uint64_t ssl) {
  auto it = tls_.find({pid, ssl});
  if (it == tls_.end()) return;
  finish_conn(*it->second);
  tls_.erase(it);
}

// ---- JSON ---------------------------------------------------------------------

json Stats::truth_sections() const {
  json o = json::object();
  if (h2.headers_frames) {
    o["http2"] = {{"headers_frames", h2.headers_frames},
                  {"requests", h2.requests},
                  {"responses", h2.responses},
                  {"headers_frames_without_decoded_pseudo_headers", h2.undecoded},
                  {"requests_by_method", counts(h2.method)},
                  {"requests_by_method_and_service", counts(h2.method_service)},
                  {"requests_by_method_and_service_version", counts(h2.method_service_version)},
                  {"responses_by_status", counts(h2.status)}};
  }
  if (h1.requests || h1.responses) {
    o["http1"] = {{"requests", h1.requests},
                  {"responses", h1.responses},
                  {"requests_by_method", counts(h1.method)},
                  {"requests_by_method_and_service", counts(h1.method_service)},
                  {"responses_by_status", counts(h1.status)}};
  }
  return o;
}

json Stats::to_json() const {
  return {{"tcp",
           {{"segments", tcp.segments},
            {"bytes", tcp.bytes},
            {"out_of_order", tcp.out_of_order},
            {"retransmitted", tcp.retransmitted},
            {"gaps", tcp.gaps},
            {"empty_frame_holes", tcp.empty_frame_holes}}},
          {"connections",
           {{"seen", conns.seen}, {"h2", conns.h2}, {"http1", conns.http1}, {"not_http", conns.not_http},
            {"evicted", conns.evicted}}},
          {"exchanges", exchanges},
          {"anchored_without_syn", anchored},
          {"h2_resynchronised", resynced},
          {"errors", counts(errors)}};
}

}  // namespace kagami::sbi
