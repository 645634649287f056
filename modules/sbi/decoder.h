// SBI decoder: TCP payload chunks (from the sbi BPF programs, live or
// replayed) or TLS plaintext (libssl uprobes) in, HTTP/2 and HTTP/1.1
// exchanges out. Pure userspace, no kernel: unit tests and the fuzzer drive
// it directly.
//
//   Segment ──TCP reassembly per connection and direction──> byte stream
//     client stream starts with the h2 preface  -> HTTP/2 framing, HPACK
//     client stream starts with a method token  -> HTTP/1.1
//     anything else                             -> not HTTP (dropped)
//
// Rules (docs/sbi.md):
//   - A connection is decoded from its SYN, or from bytes only the start of
//     a stream can hold (the h2 connection preface, the server's first
//     SETTINGS frame, an HTTP/1.1 request or status line; anchor() in
//     decoder.cc). Anything else seen first is the middle of a stream:
//     nothing says where an HTTP/2 frame or an HPACK block starts, and a
//     missed HEADERS frame desynchronises the dynamic table. It is counted
//     (errors["mid_stream"]), never guessed.
//   - One HPACK inflater per connection and direction (nghttp2), resized when
//     the peer's SETTINGS_HEADER_TABLE_SIZE says so. A block that fails to
//     inflate is counted by reason and stops that direction: later blocks
//     would be decoded against a table we no longer know.
//   - Sequence gaps (a segment lost by the ring or the capture) stop the
//     direction (counted); out-of-order segments wait, bounded.
//   - Everything is bounded (connections, buffered bytes, header block and
//     header list sizes, streams per connection) and every limit that bites
//     is counted by reason in Stats::errors.
//
// Not thread-safe: one thread feeds a Decoder.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace kagami::sbi {

struct Endpoint {
  std::array<uint8_t, 16> addr{};  // IPv4 mapped to ::ffff:a.b.c.d
  uint16_t port = 0;
  auto operator<=>(const Endpoint&) const = default;
  std::string to_string() const;  // "10.0.0.1:7777", "[fd00::1]:80"
};

// One chunk of one direction of a TCP connection.
struct Segment {
  Endpoint src, dst;
  uint32_t seq = 0;
  bool syn = false, fin = false, rst = false, ack = false;
  uint64_t ts_ns = 0;
  std::span<const uint8_t> data;
};

// One request and (when seen) its response.
struct Exchange {
  std::string transport;  // "h2c", "http1", "tls"
  std::string method, path;
  std::string service;    // first path segment ("nnrf-disc"), "" for "/"
  std::string path_template;
  int status = 0;         // 0: no response (connection closed first)
  uint64_t request_ns = 0, response_ns = 0;
  Endpoint client, server;
  uint32_t stream_id = 0;  // HTTP/2 stream, 0 for HTTP/1.1
  // TLS: which end the probed process is ("client", "server"); "" for TCP.
  // A node running both ends sees each exchange once from each.
  std::string side;
  uint32_t pid = 0;  // TLS: the probed process
};

struct Limits {
  size_t max_connections = 16384;
  size_t max_buffered_bytes = 1 << 20;     // per direction: out of order + unparsed
  size_t max_header_block = 256 * 1024;    // HEADERS + CONTINUATION payloads
  size_t max_header_list = 64 * 1024;      // decoded, RFC 7541 sizes (name + value + 32)
  size_t max_frame = 16 * 1024 * 1024;     // largest frame SETTINGS_MAX_FRAME_SIZE allows
  size_t max_streams = 1024;               // open streams per HTTP/2 connection
  size_t max_h1_head = 64 * 1024;          // HTTP/1.1 start line + headers
};

// Counters keyed as in the tshark truth files (http2, http1) plus the
// decoder's own. Maps are bounded by what methods/services/statuses exist;
// Accounting (accounting.h) bounds the label sets for metrics.
struct Stats {
  struct H2 {
    uint64_t headers_frames = 0, requests = 0, responses = 0, undecoded = 0;
    std::map<std::string, uint64_t> method, method_service, method_service_version, status;
  } h2;
  struct H1 {
    uint64_t requests = 0, responses = 0;
    std::map<std::string, uint64_t> method, method_service, status;
  } h1;
  struct Tcp {
    uint64_t segments = 0, bytes = 0, out_of_order = 0, retransmitted = 0, gaps = 0;
    uint64_t empty_frame_holes = 0;  // 9-byte holes stepped over in h2 (decoder.cc)
  } tcp;
  struct Conns {
    uint64_t seen = 0, h2 = 0, http1 = 0, not_http = 0, evicted = 0, open = 0;
  } conns;
  uint64_t exchanges = 0;                  // request + response pairs completed
  uint64_t resynced = 0;                   // h2 connections picked up at a frame boundary
  uint64_t anchored = 0;                   // directions followed without their SYN (docs/sbi.md)
  std::map<std::string, uint64_t> errors;  // reason -> count (docs/sbi.md lists them)

  // The `http2` / `http1` sections with the truth files' keys (only when
  // something was seen, as the truth files do), and a `sbi` section with
  // the rest.
  nlohmann::json truth_sections() const;
  nlohmann::json to_json() const;
};

// "/nudm-sdm/v2/imsi-001010000000001/am-data?x=1" -> service "nudm-sdm",
// version "/nudm-sdm/v2", template "/nudm-sdm/v2/{id}/am-data".
struct PathKeys {
  std::string service;          // "" for "/"
  std::string service_key;      // "/nudm-sdm" or "/" (the truth files' key)
  std::string service_version;  // "/nudm-sdm/v2" or "/"
  std::string path_template;
};
PathKeys path_keys(std::string_view path);
// Whether one path segment (after service and version) is an identifier.
bool is_id_segment(std::string_view seg);

class Decoder {
 public:
  using OnExchange = std::function<void(const Exchange&)>;
  explicit Decoder(Limits limits = {}, OnExchange on_exchange = {});
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  void segment(const Segment& s);

  // TLS plaintext from the libssl uprobes: one byte stream per (pid, SSL*)
  // and direction, no sequence numbers, in order by construction.
  // `is_write`: the process wrote it (SSL_write); whether the process is the
  // client is learnt from which side sends the h2 preface or a request.
  void tls_data(uint32_t pid, uint64_t ssl, bool is_write, uint64_t ts_ns, std::span<const uint8_t> data);
  void tls_close(uint32_t pid, uint64_t ssl);

  const Stats& stats() const { return stats_; }

 private:
  struct Conn;
  struct Dir;
  Conn* conn_for(const Segment& s, bool& from_client);
  void anchor(Conn& c, const Segment& s, bool& from_client);
  void feed(Conn& c, bool from_client, uint64_t ts, std::span<const uint8_t> data);
  void parse(Conn& c, bool from_client, uint64_t ts);
  void parse_h2(Conn& c, bool from_client, uint64_t ts);
  void parse_h1(Conn& c, bool from_client, uint64_t ts);
  bool h2_header_block(Conn& c, bool from_client, uint64_t ts, uint32_t stream, bool headers_frame);
  void finish_conn(Conn& c);
  void error(const char* reason, uint64_t n = 1);
  void emit(const Exchange& e);

  Limits limits_;
  OnExchange on_exchange_;
  Stats stats_;
  // Keyed by (lower endpoint, higher endpoint) so both directions find it;
  // TLS streams by (pid, SSL*) in tls_.
  std::map<std::pair<Endpoint, Endpoint>, std::unique_ptr<Conn>> conns_;
  std::map<std::pair<uint32_t, uint64_t>, std::unique_ptr<Conn>> tls_;
  uint64_t lru_clock_ = 0;
};

}  // namespace kagami::sbi
