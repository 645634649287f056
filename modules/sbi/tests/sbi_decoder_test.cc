// The SBI decoder without a kernel: TCP reassembly, HTTP/2 framing + HPACK
// (header blocks made by nghttp2's own deflater, the encoder real servers
// use), HTTP/1.1, and bad input counted by reason.
#include <nghttp2/nghttp2.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "modules/sbi/accounting.h"
#include "modules/sbi/decoder.h"

namespace kagami::sbi {
namespace {

using Hdrs = std::vector<std::pair<std::string, std::string>>;

Endpoint ep(uint8_t last, uint16_t port) {
  Endpoint e;
  e.addr[10] = e.addr[11] = 0xff;
  e.addr[12] = 10;
  e.addr[15] = last;
  e.port = port;
  return e;
}

// HPACK encoder state of one direction, as a peer keeps it.
struct Deflater {
  nghttp2_hd_deflater* d = nullptr;
  Deflater() { nghttp2_hd_deflate_new(&d, 4096); }
  ~Deflater() { nghttp2_hd_deflate_del(d); }
  std::string block(const Hdrs& h) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [n, v] : h)
      nv.push_back({(uint8_t*)n.data(), (uint8_t*)v.data(), n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    std::string out(nghttp2_hd_deflate_bound(d, nv.data(), nv.size()), '\0');
    auto n = nghttp2_hd_deflate_hd(d, (uint8_t*)out.data(), out.size(), nv.data(), nv.size());
    EXPECT_GE(n, 0);
    out.resize(n);
    return out;
  }
};

std::string frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
  std::string f;
  const uint32_t len = payload.size();
  f += char(len >> 16);
  f += char(len >> 8);
  f += char(len);
  f += char(type);
  f += char(flags);
  f += char(stream >> 24);
  f += char(stream >> 16);
  f += char(stream >> 8);
  f += char(stream);
  return f + payload;
}

const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// A connection between client 10.0.0.1:40000 and server 10.0.0.2:7777,
// with the handshake, sending byte strings in chunks as the ring would.
struct Conn {
  Decoder& d;
  Endpoint c = ep(1, 40000), s = ep(2, 7777);
  uint32_t cseq = 1000, sseq = 5000;
  uint64_t ts = 1'000'000'000;
  explicit Conn(Decoder& dec, bool handshake = true) : d(dec) {
    if (!handshake) return;
    Segment syn{c, s, cseq - 1, true, false, false, false, ts, {}};
    d.segment(syn);
    Segment synack{s, c, sseq - 1, true, false, false, true, ts, {}};
    d.segment(synack);
  }
  void send(bool from_client, const std::string& bytes, size_t chunk = 100000) {
    for (size_t i = 0; i < bytes.size(); i += chunk) {
      std::string part = bytes.substr(i, chunk);
      Segment g{from_client ? c : s, from_client ? s : c, from_client ? cseq : sseq, false, false, false, true, ts,
                std::span<const uint8_t>((const uint8_t*)part.data(), part.size())};
      d.segment(g);
      (from_client ? cseq : sseq) += part.size();
    }
    ts += 2'000'000;  // 2 ms between sends: the latency the test expects
  }
};

TEST(SbiPath, KeysAndTemplates) {
  auto k = path_keys("/nudm-sdm/v2/imsi-001010000000001/am-data?plmn-id=1");
  EXPECT_EQ(k.service, "nudm-sdm");
  EXPECT_EQ(k.service_key, "/nudm-sdm");
  EXPECT_EQ(k.service_version, "/nudm-sdm/v2");
  EXPECT_EQ(k.path_template, "/nudm-sdm/v2/{id}/am-data");
  EXPECT_EQ(path_keys("/nnrf-nfm/v1/nf-instances/5a1b2c3d-0000-4000-8000-00000000abcd").path_template,
            "/nnrf-nfm/v1/nf-instances/{id}");
  EXPECT_EQ(path_keys("/nausf-auth/v1/ue-authentications/12/5g-aka-confirmation").path_template,
            "/nausf-auth/v1/ue-authentications/{id}/5g-aka-confirmation");
  EXPECT_EQ(path_keys("/nsmf-pdusession/v1/sm-contexts/1/modify").path_template,
            "/nsmf-pdusession/v1/sm-contexts/{id}/modify");
  EXPECT_EQ(path_keys("/").service_key, "/");
  EXPECT_EQ(path_keys("").service_version, "/");
  EXPECT_EQ(path_keys("/nnrf-disc").service_version, "/nnrf-disc");
  EXPECT_EQ(path_keys("//nnrf-disc//v1").service_version, "/nnrf-disc/v1");
  EXPECT_FALSE(is_id_segment("sdm-subscriptions"));
  EXPECT_FALSE(is_id_segment("smf-select-data"));
  EXPECT_TRUE(is_id_segment("suci-0-001-01-0000-0-0-0000000001"));
  EXPECT_TRUE(is_id_segment("deadbeef01"));
  EXPECT_FALSE(is_id_segment("deadbeef"));  // no digit: a word as far as the rule goes
}

TEST(SbiH2, RequestAndResponseByteByByteWithDynamicTable) {
  std::vector<Exchange> got;
  Decoder d({}, [&](const Exchange& e) { got.push_back(e); });
  Conn c(d);
  Deflater req, rsp;
  c.send(true, kPreface + frame(4, 0, 0, ""), 1);
  c.send(false, frame(4, 0, 0, "") + frame(4, 1, 0, ""), 1);
  const Hdrs rh = {{":method", "POST"}, {":scheme", "http"}, {":authority", "amf"},
                   {":path", "/namf-comm/v1/ue-contexts/imsi-001010000000001/n1-n2-messages"},
                   {"content-type", "application/json"}};
  // Twice on streams 1 and 3: the second block is mostly dynamic-table
  // indexes, decodable only with the first one's state.
  for (uint32_t stream : {1u, 3u}) {
    c.send(true, frame(1, 0x4, stream, req.block(rh)) + frame(0, 1, stream, "{}"), 1);
    c.send(false, frame(1, 0x4, stream, rsp.block({{":status", "201"}, {"content-type", "application/json"}})), 1);
  }
  const auto& st = d.stats();
  EXPECT_EQ(st.h2.headers_frames, 4u);
  EXPECT_EQ(st.h2.requests, 2u);
  EXPECT_EQ(st.h2.responses, 2u);
  EXPECT_EQ(st.h2.undecoded, 0u);
  EXPECT_EQ(st.h2.method_service.at("POST /namf-comm"), 2u);
  EXPECT_EQ(st.h2.method_service_version.at("POST /namf-comm/v1"), 2u);
  EXPECT_EQ(st.h2.status.at("201"), 2u);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].service, "namf-comm");
  EXPECT_EQ(got[0].path_template, "/namf-comm/v1/ue-contexts/{id}/n1-n2-messages");
  EXPECT_EQ(got[0].status, 201);
  EXPECT_EQ(got[0].transport, "h2c");
  EXPECT_EQ(got[0].response_ns - got[0].request_ns, 2'000'000u);
  EXPECT_EQ(got[1].stream_id, 3u);
  EXPECT_TRUE(st.errors.empty()) << st.to_json().dump();

  Accounting a;
  for (auto& e : got) a.add(e);
  EXPECT_EQ(a.requests().at({"namf-comm", "POST", 201}), 2u);
  const auto& h = a.latency().at({"namf-comm", "POST"});
  EXPECT_EQ(h.count, 2u);
  EXPECT_EQ(h.buckets[2], 2u);  // 2 ms <= 2.5 ms
}

TEST(SbiH2, ContinuationPaddingPriorityAndOutOfOrder) {
  std::vector<Exchange> got;
  Decoder d({}, [&](const Exchange& e) { got.push_back(e); });
  Conn c(d);
  Deflater req, rsp;
  std::string block = req.block({{":method", "GET"}, {":scheme", "http"}, {":path", "/nnrf-disc/v1/nf-instances?target-nf-type=AUSF"},
                                 {"x-long", std::string(300, 'a')}});
  // HEADERS (padded, priority) with the first 10 bytes, CONTINUATION with the rest.
  std::string head = std::string(1, char(4)) + std::string(5, '\0') + block.substr(0, 10) + std::string(4, '\0');
  std::string bytes = kPreface + frame(1, 0x8 | 0x20, 1, head) + frame(9, 0x4, 1, block.substr(10));
  // Delivered out of order: second half first.
  const size_t half = bytes.size() / 2;
  std::string a = bytes.substr(0, half), b = bytes.substr(half);
  Segment s2{c.c, c.s, c.cseq + uint32_t(half), false, false, false, true, c.ts,
             std::span<const uint8_t>((const uint8_t*)b.data(), b.size())};
  d.segment(s2);
  EXPECT_EQ(d.stats().h2.headers_frames, 0u);
  Segment s1{c.c, c.s, c.cseq, false, false, false, true, c.ts,
             std::span<const uint8_t>((const uint8_t*)a.data(), a.size())};
  d.segment(s1);
  d.segment(s1);  // a retransmission changes nothing
  c.cseq += bytes.size();
  c.send(false, frame(1, 0x4 | 0x1, 1, rsp.block({{":status", "200"}})));
  EXPECT_EQ(d.stats().tcp.out_of_order, 1u);
  EXPECT_EQ(d.stats().tcp.retransmitted, 1u);
  EXPECT_EQ(d.stats().h2.headers_frames, 2u);
  EXPECT_EQ(d.stats().h2.method_service.at("GET /nnrf-disc"), 1u);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].path_template, "/nnrf-disc/v1/nf-instances");
}

TEST(SbiH2, LargerTableAnnouncedBySettings) {
  Decoder d;
  Conn c(d);
  nghttp2_hd_deflater* big = nullptr;
  nghttp2_hd_deflate_new(&big, 65536);
  // Client announces a 64 KiB table for the server's blocks.
  std::string settings = std::string("\x00\x01\x00\x01\x00\x00", 6);
  c.send(true, kPreface + frame(4, 0, 0, settings));
  Deflater req;
  c.send(true, frame(1, 0x4, 1, req.block({{":method", "GET"}, {":path", "/nudr-dr/v1/x"}})));
  // The server's encoder switches to 64 KiB (a size update in the block).
  nghttp2_hd_deflate_change_table_size(big, 65536);
  std::string v(5000, 'z');
  nghttp2_nv nv[] = {{(uint8_t*)":status", (uint8_t*)"200", 7, 3, 0}, {(uint8_t*)"x-big", (uint8_t*)v.data(), 5, v.size(), 0}};
  std::string out(nghttp2_hd_deflate_bound(big, nv, 2), '\0');
  out.resize(nghttp2_hd_deflate_hd(big, (uint8_t*)out.data(), out.size(), nv, 2));
  nghttp2_hd_deflate_del(big);
  c.send(false, frame(1, 0x4, 1, out));
  EXPECT_EQ(d.stats().h2.responses, 1u);
  EXPECT_TRUE(d.stats().errors.empty()) << d.stats().to_json().dump();
}

TEST(SbiBad, MidStreamConnectionIsNotDecodedNeverGuessed) {
  Decoder d;
  Deflater req;
  const Hdrs h = {{":method", "GET"}, {":path", "/nudm-sdm/v2/imsi-1/am-data"}, {"x-a", "1"}, {"x-b", "2"}};
  (void)req.block(h);  // an earlier request we never saw filled the encoder's table
  {
    // First seen: a HEADERS frame at a frame boundary whose block refers to
    // those entries. Decoding from an empty table fails loudly instead of
    // producing wrong headers.
    Conn c(d, /*handshake=*/false);
    c.send(true, frame(1, 0x4, 3, req.block(h)));
  }
  EXPECT_EQ(d.stats().h2.headers_frames, 1u);
  EXPECT_EQ(d.stats().h2.undecoded, 1u);
  EXPECT_EQ(d.stats().h2.requests, 0u);
  EXPECT_EQ(d.stats().errors.at("mid_stream_table_unknown"), 1u);
  // First seen: the middle of a frame (JSON body bytes): not decodable.
  Conn c2(d, /*handshake=*/false);
  c2.c.port = 40002;
  c2.send(true, std::string("{\"nfInstanceId\":\"5a1b\"}") + frame(1, 0x4, 5, req.block(h)));
  EXPECT_EQ(d.stats().errors.at("mid_stream"), 1u);
  EXPECT_EQ(d.stats().h2.headers_frames, 1u);
}

TEST(SbiH2, PrefaceWithoutSynIsTheStartOfTheConnection) {
  Decoder d;
  Conn c(d, /*handshake=*/false);
  Deflater req;
  c.send(true, kPreface + frame(1, 0x4, 1, req.block({{":method", "GET"}, {":path", "/nudm-sdm/v2/x"}})));
  c.send(true, frame(1, 0x4, 3, req.block({{":method", "GET"}, {":path", "/nudm-sdm/v2/x"}})));
  EXPECT_EQ(d.stats().h2.requests, 2u);
  EXPECT_EQ(d.stats().anchored, 1u);
  EXPECT_TRUE(d.stats().errors.empty());
}

TEST(SbiH2, NineByteHoleIsAnEmptyFrame) {
  Decoder d;
  Conn c(d);
  Deflater req;
  c.send(true, kPreface + frame(4, 0, 0, ""));
  c.cseq += 9;  // a lost SETTINGS ACK
  c.send(true, frame(1, 0x4, 1, req.block({{":method", "GET"}, {":path", "/nudr-dr/v1/x"}})));
  EXPECT_EQ(d.stats().tcp.empty_frame_holes, 1u);
  EXPECT_EQ(d.stats().h2.requests, 1u);
}

TEST(SbiBad, MissingTableEntryStopsTheDirection) {
  Decoder d;
  Conn c(d);
  // Indexed header field 70: past the 61 static entries, and the dynamic
  // table is empty.
  c.send(true, kPreface + frame(1, 0x4, 1, std::string(1, char(0x80 | 70))));
  Deflater req;
  c.send(true, frame(1, 0x4, 3, req.block({{":method", "GET"}, {":path", "/a"}})));
  EXPECT_EQ(d.stats().errors.at("hpack_decode_error"), 1u);
  EXPECT_EQ(d.stats().h2.headers_frames, 1u);  // the next one is behind a lost table
  EXPECT_EQ(d.stats().h2.undecoded, 1u);
  EXPECT_EQ(d.stats().h2.requests, 0u);
}

TEST(SbiBad, HugeHeaderListAndOversizedFrames) {
  Limits lim;
  lim.max_header_list = 1024;
  lim.max_frame = 1 << 16;
  Decoder d(lim);
  Conn c(d);
  Deflater req;
  c.send(true, kPreface + frame(1, 0x4, 1, req.block({{":method", "PUT"}, {":path", "/nudr-dr/v1/x"},
                                                        {"x-huge", std::string(4000, 'q')}})));
  EXPECT_EQ(d.stats().errors.at("header_list_too_large"), 1u);
  EXPECT_EQ(d.stats().h2.requests, 1u);  // pseudo-headers come first and were kept
  // A frame header announcing more than the limit.
  std::string hdr = frame(0, 0, 1, "");
  hdr[0] = 0x7f;
  c.send(true, hdr);
  EXPECT_EQ(d.stats().errors.at("oversized_frame"), 1u);
}

TEST(SbiBad, GapStopsTheDirection) {
  Decoder d;
  Conn c(d);
  Deflater req;
  c.send(true, kPreface);
  c.cseq += 10;  // ten bytes lost
  c.send(true, frame(1, 0x4, 1, req.block({{":method", "GET"}, {":path", "/a"}})));
  Segment fin{c.c, c.s, c.cseq, false, true, false, true, c.ts, {}};
  d.segment(fin);
  EXPECT_EQ(d.stats().tcp.gaps, 1u);
  EXPECT_EQ(d.stats().h2.headers_frames, 0u);
}

TEST(SbiH1, PipelinedChunkedAndLengths) {
  std::vector<Exchange> got;
  Decoder d({}, [&](const Exchange& e) { got.push_back(e); });
  Conn c(d);
  c.send(true,
         "POST /nsmf-pdusession/v1/sm-contexts HTTP/1.1\r\nHost: smf\r\nContent-Length: 5\r\n\r\nhello"
         "GET /nudm-sdm/v1/imsi-001010000000001/am-data HTTP/1.1\r\nHost: udm\r\n\r\n"
         "HEAD / HTTP/1.1\r\n\r\n",
         7);
  c.send(false,
         "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n"
         "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nxyz"
         "HTTP/1.1 301 Moved\r\nContent-Length: 100\r\n\r\n",
         5);
  const auto& st = d.stats();
  EXPECT_EQ(st.h1.requests, 3u);
  EXPECT_EQ(st.h1.responses, 3u);
  EXPECT_EQ(st.h1.method_service.at("POST /nsmf-pdusession"), 1u);
  EXPECT_EQ(st.h1.method_service.at("GET /nudm-sdm"), 1u);
  EXPECT_EQ(st.h1.method_service.at("HEAD /"), 1u);
  EXPECT_EQ(st.h1.status.at("301"), 1u);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].path_template, "/nudm-sdm/v1/{id}/am-data");
  EXPECT_EQ(got[1].transport, "http1");
  EXPECT_TRUE(st.errors.empty()) << st.to_json().dump();
  auto j = st.truth_sections();
  EXPECT_FALSE(j.contains("http2"));
  EXPECT_EQ(j["http1"]["responses_by_status"]["201"], 1);
}

TEST(SbiH1, BadStartLineAndNotHttp) {
  Decoder d;
  {
    Conn c(d);
    c.send(true, "GET /x HTTP/1.1\r\n\r\n");
    c.send(false, "SPDY/9 banana\r\n\r\n");
  }
  EXPECT_EQ(d.stats().errors.at("http1_bad_start_line"), 1u);
  Conn c2(d);
  c2.c.port = 40001;
  Segment syn{c2.c, c2.s, c2.cseq - 1, true, false, false, false, 0, {}};
  d.segment(syn);
  c2.send(true, std::string("\x16\x03\x01\x02\x00 TLS hello", 15));
  EXPECT_EQ(d.stats().conns.not_http, 1u);
}

TEST(SbiTls, PlaintextStreamsByProcessAndSsl) {
  std::vector<Exchange> got;
  Decoder d({}, [&](const Exchange& e) { got.push_back(e); });
  Deflater req, rsp;
  std::string client = kPreface + frame(4, 0, 0, "") + frame(1, 0x5, 1, req.block({{":method", "GET"}, {":path", "/nnrf-nfm/v1/nf-instances"}}));
  std::string server = frame(4, 0, 0, "") + frame(1, 0x4, 1, rsp.block({{":status", "200"}}));
  // The server process reads the preface and request, writes the response.
  d.tls_data(42, 0xabc, false, 10, std::span<const uint8_t>((const uint8_t*)client.data(), client.size()));
  d.tls_data(42, 0xabc, true, 20, std::span<const uint8_t>((const uint8_t*)server.data(), server.size()));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].transport, "tls");
  EXPECT_EQ(got[0].service, "nnrf-nfm");
  EXPECT_EQ(got[0].status, 200);
  EXPECT_EQ(got[0].response_ns - got[0].request_ns, 10u);
}

}  // namespace
}  // namespace kagami::sbi

namespace kagami::sbi {
namespace {

// Found by sbi_fuzz: a path with bytes that are not UTF-8 made the JSON
// of the counters throw. Such bytes are percent-encoded; the output always builds.
TEST(SbiBad, NonUtf8HeaderValuesKeepTheJsonValid) {
  Decoder d;
  Conn c(d);
  Deflater req;
  c.send(true, kPreface + frame(1, 0x4, 1, req.block({{":method", "G\xffT"}, {":path", "/nnrf-\xaf/v1"}})));
  c.send(true, "");
  Segment s{c.c, c.s, c.cseq, false, false, false, true, c.ts, {}};
  d.segment(s);
  c.send(false, "");
  std::string out;
  EXPECT_NO_THROW(out = d.stats().truth_sections().dump());
  EXPECT_NE(out.find("G%FFT /nnrf-%AF/v1"), std::string::npos) << out;
}

}  // namespace
}  // namespace kagami::sbi

namespace kagami::sbi {
namespace {

// A TLS server may write its SETTINGS before reading the preface, and
// libssl reuses a freed SSL object's address for the next connection.
TEST(SbiTls, ServerSpeaksFirstAndSslObjectsAreReused) {
  std::vector<Exchange> got;
  Decoder d({}, [&](const Exchange& e) { got.push_back(e); });
  for (int conn = 0; conn < 2; conn++) {
    Deflater req, rsp;  // fresh HPACK state per connection
    std::string settings = frame(4, 0, 0, "");
    std::string client = kPreface + frame(4, 0, 0, "") +
                         frame(1, 0x5, 1, req.block({{":method", "POST"}, {":path", "/nsmf-pdusession/v1/sm-contexts"}}));
    std::string answer = frame(1, 0x4, 1, rsp.block({{":status", "201"}}));
    auto sp = [](const std::string& x) { return std::span<const uint8_t>((const uint8_t*)x.data(), x.size()); };
    d.tls_data(9, 0x77, true, 1, sp(settings));  // the server process writes first
    d.tls_data(9, 0x77, false, 2, sp(client));
    d.tls_data(9, 0x77, true, 3, sp(answer));
  }
  ASSERT_EQ(got.size(), 2u);
  for (const auto& e : got) {
    EXPECT_EQ(e.side, "server");
    EXPECT_EQ(e.status, 201);
    EXPECT_EQ(e.pid, 9u);
  }
  EXPECT_TRUE(d.stats().errors.empty()) << d.stats().to_json().dump();
}

}  // namespace
}  // namespace kagami::sbi
