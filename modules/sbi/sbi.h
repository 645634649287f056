// sbi module: SBI (5G core network functions talking HTTP/2 or HTTP/1.1)
// seen as SBI: requests per NF service, method, path template and status,
// with request-to-response latency (README.md, docs/sbi.md).
//
// Kernel: TC programs copy the TCP payload of watched connections (ports
// and/or CIDRs) up one ring buffer (bpf/sbi.bpf.c). Userspace: a thread of
// the module drains the ring into the Decoder (decoder.h: reassembly,
// HTTP/2 framing + HPACK through nghttp2, HTTP/1.1) and the Accounting
// (accounting.h); exchanges go out as events through the event pipeline.
// Replay: sbi_replay over replay batches, drained after every batch.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/module.h"
#include "modules/sbi/accounting.h"
#include "modules/sbi/decoder.h"

namespace kagami::modules {

struct SbiConfig {
  std::vector<std::string> interfaces;  // TC ingress + egress on each
  std::vector<std::pair<uint16_t, uint16_t>> ports;  // inclusive ranges; empty: any port
  std::vector<std::string> cidrs;                     // "10.0.0.0/8", "fd00::/8"; empty: any address
  uint32_t ring_kb = 4096;
  std::string events = "errors";  // none | errors (status >= 400) | all
  std::string libssl;             // TLS plaintext: uprobes on this libssl ("" = off)
  std::string tls_side = "server";  // which end's view of a TLS exchange counts: server | client | both
};

Result<SbiConfig> parse_sbi_config(const nlohmann::json& section);

// "10.1.0.0/16" -> (prefix length over the mapped 128-bit address, address).
Result<std::pair<uint32_t, std::array<uint8_t, 16>>> parse_cidr(const std::string& s);

// One ring record (struct sbi_seg) into a decoder. An Error for a record
// that is not one (short, wrong kind, lengths that disagree).
Result<void> feed_record(sbi::Decoder& d, std::span<const uint8_t> rec);

// An exchange as an event ("kind": "sbi_request").
nlohmann::json exchange_event(const sbi::Exchange& e);

class SbiModule : public core::Module {
 public:
  ~SbiModule() override;
  std::string name() const override { return "sbi"; }
  std::vector<core::FeatureNeed> needs() const override;
  Result<std::vector<core::LoadRequest>> plan(const nlohmann::json& config, const core::ModuleContext& ctx) override;
  Result<void> configure(const core::ProgramManager& pm) override;
  Result<void> start(const core::ProgramManager& pm) override;
  void stop() override;
  Result<std::vector<core::MetricFamily>> collect(const core::ProgramManager& pm) override;
  Result<nlohmann::json> snapshot(const core::ProgramManager& pm) override;
  bool has_replay() const override { return true; }
  Result<std::unique_ptr<core::ReplayRun>> open_replay() override;

 private:
  void drain_loop(int ring_fd);
  core::ModuleContext ctx_;
  SbiConfig config_;
  bool tls_on_ = false;  // libssl uprobes attached (config and the kernel allow)
  std::mutex mu_;  // decoder_ and accounting_: the drain thread vs scrapes
  std::unique_ptr<sbi::Decoder> decoder_;
  sbi::Accounting accounting_;
  uint64_t bad_records_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

}  // namespace kagami::modules
