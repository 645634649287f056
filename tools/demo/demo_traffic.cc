// kagami-demo-traffic: generates N3 (GTP-U) and N4 (PFCP) traffic over real
// UDP sockets, so the demo and live tests show Kagami counting traffic that
// crossed a real interface.
//
//   kagami-demo-traffic upf --bind 10.201.0.2
//       answers every PFCP request on :8805 with the matching response type
//       (msg type + 1, same sequence number, Cause "Request accepted") and
//       sinks GTP-U on :2152.
//   kagami-demo-traffic smf --upf 10.201.0.2 [--sessions 4] [--rate 200] [--seconds 0]
//       plays an SMF + gNB: PFCP Association Setup, then per session a
//       Session Establishment, a stream of GTP-U G-PDUs (uplink with a PDU
//       Session Container, QFI 1..9), periodic Heartbeats, and finally a
//       Session Deletion. --seconds 0 runs until killed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/fd.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

using Bytes = std::vector<uint8_t>;

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void put32(Bytes& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v));
}
void put64(Bytes& b, uint64_t v) {
  put32(b, static_cast<uint32_t>(v >> 32));
  put32(b, static_cast<uint32_t>(v));
}

// PFCP header (TS 29.244 7.2.2). Node messages carry no SEID; session
// messages (type >= 50) set S=1 and carry one.
Bytes pfcp_message(uint8_t type, uint32_t seq, bool with_seid, uint64_t seid, const Bytes& ies) {
  Bytes b;
  b.push_back(with_seid ? 0x21 : 0x20);  // version 1, S flag
  b.push_back(type);
  uint16_t len = static_cast<uint16_t>(ies.size() + 4 + (with_seid ? 8 : 0));
  put16(b, len);
  if (with_seid) put64(b, seid);
  b.push_back(static_cast<uint8_t>(seq >> 16));
  b.push_back(static_cast<uint8_t>(seq >> 8));
  b.push_back(static_cast<uint8_t>(seq));
  b.push_back(0);  // spare / message priority
  b.insert(b.end(), ies.begin(), ies.end());
  return b;
}

Bytes ie(uint16_t type, const Bytes& value) {
  Bytes b;
  put16(b, type);
  put16(b, static_cast<uint16_t>(value.size()));
  b.insert(b.end(), value.begin(), value.end());
  return b;
}

Bytes node_id_ie(uint32_t ipv4) {
  Bytes v{0};  // Node ID type IPv4
  put32(v, ipv4);
  return ie(60, v);
}

Bytes recovery_ts_ie() { Bytes v; put32(v, 0xe5f0a000u); return ie(96, v); }

// GTP-U G-PDU (TS 29.281) with a PDU Session Container extension header
// (TS 38.415) carrying the QFI, wrapping a minimal inner IPv4/UDP packet.
Bytes gtpu_gpdu(uint32_t teid, uint8_t qfi, uint16_t seq, size_t payload) {
  Bytes inner;
  const uint16_t ip_len = static_cast<uint16_t>(20 + 8 + payload);
  inner = {0x45, 0, static_cast<uint8_t>(ip_len >> 8), static_cast<uint8_t>(ip_len), 0, 1, 0x40, 0, 64, 17, 0, 0,
           10, 45, 0, 2, 10, 46, 0, 1};
  put16(inner, 40000);
  put16(inner, 443);
  put16(inner, static_cast<uint16_t>(8 + payload));
  put16(inner, 0);
  inner.resize(inner.size() + payload, 0xab);

  Bytes ext = {0x01, 0x10, static_cast<uint8_t>(qfi & 0x3f), 0x00};  // len 1 (x4), UL PDU type 1, QFI; next=0
  Bytes b;
  b.push_back(0x36);  // version 1, PT=1, E=1, S=1
  b.push_back(0xff);  // G-PDU
  put16(b, static_cast<uint16_t>(4 + ext.size() + inner.size()));
  put32(b, teid);
  put16(b, seq);
  b.push_back(0);     // N-PDU number
  b.push_back(0x85);  // next extension header: PDU Session Container
  b.insert(b.end(), ext.begin(), ext.end());
  b.insert(b.end(), inner.begin(), inner.end());
  return b;
}

kagami::Fd udp_socket(const std::string& bind_ip, uint16_t port) {
  kagami::Fd s(::socket(AF_INET, SOCK_DGRAM, 0));
  if (!s.valid()) return s;
  int one = 1;
  setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, bind_ip.c_str(), &a.sin_addr);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    std::perror(("bind " + bind_ip + ":" + std::to_string(port)).c_str());
    return kagami::Fd();
  }
  return s;
}

int run_upf(const std::string& bind_ip) {
  auto pfcp = udp_socket(bind_ip, 8805);
  auto gtpu = udp_socket(bind_ip, 2152);
  if (!pfcp.valid() || !gtpu.valid()) return 1;
  uint64_t gtpu_rx = 0, pfcp_rx = 0;
  uint8_t buf[65536];
  while (!g_stop) {
    pollfd p[2] = {{pfcp.get(), POLLIN, 0}, {gtpu.get(), POLLIN, 0}};
    if (::poll(p, 2, 200) <= 0) continue;
    if (p[1].revents & POLLIN) {
      if (::recv(gtpu.get(), buf, sizeof(buf), 0) > 0) gtpu_rx++;
    }
    if (p[0].revents & POLLIN) {
      sockaddr_in peer{};
      socklen_t pl = sizeof(peer);
      ssize_t n = ::recvfrom(pfcp.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&peer), &pl);
      if (n < 8 || (buf[0] >> 5) != 1) continue;  // not PFCP v1: ignore
      pfcp_rx++;
      const uint8_t type = buf[1];
      const bool s = buf[0] & 0x01;
      const size_t seq_off = s ? 12 : 4;
      // Requests: node messages (type < 50) are odd, session messages even
      // (TS 29.244 table 7.3-1); the response is always type + 1.
      const bool is_request = type < 50 ? (type % 2) == 1 : (type % 2) == 0;
      if (static_cast<size_t>(n) < seq_off + 3 || !is_request) continue;
      const uint32_t seq = (buf[seq_off] << 16) | (buf[seq_off + 1] << 8) | buf[seq_off + 2];
      uint64_t seid = 0;
      if (s)
        for (int i = 0; i < 8; i++) seid = (seid << 8) | buf[4 + i];
      // Heartbeat Response carries a Recovery Time Stamp; every other
      // response carries Node ID + Cause "Request accepted" (1).
      Bytes ies = type == 1 ? recovery_ts_ie() : node_id_ie(0x0ac90002);
      if (type != 1) {
        const Bytes cause = ie(19, Bytes{1});
        ies.insert(ies.end(), cause.begin(), cause.end());
      }
      Bytes resp = pfcp_message(static_cast<uint8_t>(type + 1), seq, s, seid ? seid : 0x1000 + seq, ies);
      ::sendto(pfcp.get(), resp.data(), resp.size(), 0, reinterpret_cast<sockaddr*>(&peer), pl);
    }
  }
  std::printf("upf: received %llu PFCP and %llu GTP-U datagrams\n", static_cast<unsigned long long>(pfcp_rx),
              static_cast<unsigned long long>(gtpu_rx));
  return 0;
}

int run_smf(const std::string& upf_ip, int sessions, int rate, int seconds) {
  kagami::Fd pfcp(::socket(AF_INET, SOCK_DGRAM, 0));
  kagami::Fd gtpu(::socket(AF_INET, SOCK_DGRAM, 0));
  if (!pfcp.valid() || !gtpu.valid()) return 1;
  sockaddr_in up{};
  up.sin_family = AF_INET;
  inet_pton(AF_INET, upf_ip.c_str(), &up.sin_addr);
  sockaddr_in pfcp_dst = up, gtpu_dst = up;
  pfcp_dst.sin_port = htons(8805);
  gtpu_dst.sin_port = htons(2152);
  uint32_t seq = 1;
  auto send_pfcp = [&](const Bytes& m) {
    ::sendto(pfcp.get(), m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&pfcp_dst), sizeof(pfcp_dst));
    pollfd p{pfcp.get(), POLLIN, 0};
    uint8_t buf[2048];
    if (::poll(&p, 1, 500) > 0) (void)::recv(pfcp.get(), buf, sizeof(buf), 0);
  };
  Bytes assoc = node_id_ie(0x0ac90001);
  auto ts = recovery_ts_ie();
  assoc.insert(assoc.end(), ts.begin(), ts.end());
  send_pfcp(pfcp_message(5, seq++, false, 0, assoc));  // Association Setup Request
  for (int s = 0; s < sessions; s++)                    // Session Establishment Requests
    send_pfcp(pfcp_message(50, seq++, true, 0, node_id_ie(0x0ac90001)));

  const auto start = std::chrono::steady_clock::now();
  const auto gap = std::chrono::microseconds(rate > 0 ? 1000000 / rate : 5000);
  uint64_t sent = 0;
  uint16_t gseq = 0;
  auto next_hb = start;
  while (!g_stop) {
    const auto now = std::chrono::steady_clock::now();
    if (seconds > 0 && now - start >= std::chrono::seconds(seconds)) break;
    const int s = static_cast<int>(sent % static_cast<uint64_t>(sessions > 0 ? sessions : 1));
    Bytes g = gtpu_gpdu(0x1000 + static_cast<uint32_t>(s), static_cast<uint8_t>(1 + s % 9), gseq++, 64 + 32 * s);
    ::sendto(gtpu.get(), g.data(), g.size(), 0, reinterpret_cast<sockaddr*>(&gtpu_dst), sizeof(gtpu_dst));
    sent++;
    if (now >= next_hb) {
      send_pfcp(pfcp_message(1, seq++, false, 0, recovery_ts_ie()));  // Heartbeat Request
      next_hb = now + std::chrono::seconds(1);
    }
    std::this_thread::sleep_for(gap);
  }
  for (int s = 0; s < sessions; s++)  // Session Deletion Requests
    send_pfcp(pfcp_message(54, seq++, true, 0x1000 + static_cast<uint64_t>(s), {}));
  std::printf("smf: sent %llu GTP-U G-PDUs and %u PFCP requests\n", static_cast<unsigned long long>(sent), seq - 1);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kagami-demo-traffic: N3/N4 traffic for the Kagami demo"};
  app.require_subcommand(1);
  std::string bind_ip = "0.0.0.0", upf_ip;
  int sessions = 4, rate = 200, seconds = 0;
  auto* upf = app.add_subcommand("upf", "answer PFCP, sink GTP-U");
  upf->add_option("--bind", bind_ip, "address to bind");
  auto* smf = app.add_subcommand("smf", "send PFCP requests and GTP-U");
  smf->add_option("--upf", upf_ip, "UPF address")->required();
  smf->add_option("--sessions", sessions, "PDU sessions (TEIDs)")->check(CLI::Range(1, 1000));
  smf->add_option("--rate", rate, "G-PDUs per second")->check(CLI::Range(1, 100000));
  smf->add_option("--seconds", seconds, "run time, 0 = until killed")->check(CLI::Range(0, 86400));
  CLI11_PARSE(app, argc, argv);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  if (*upf) return run_upf(bind_ip);
  return run_smf(upf_ip, sessions, rate, seconds);
}
