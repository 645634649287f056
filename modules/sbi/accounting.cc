#include "modules/sbi/accounting.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace kagami::sbi {

using nlohmann::json;

void Histogram::add(double seconds) {
  count++;
  sum += seconds;
  for (size_t i = 0; i < kLatencyBuckets.size(); i++) {
    if (seconds <= kLatencyBuckets[i]) {
      buckets[i]++;
      return;
    }
  }
  // Above the last bound: only in count (+Inf).
}

void Accounting::add(const Exchange& e) {
  total_++;
  std::string service = e.service.empty() ? "/" : e.service;
  auto rkey = std::make_tuple(service, e.method, e.status);
  if (!requests_.count(rkey) && requests_.size() >= kMaxSeries) {
    overflow_++;
    service = "other";
    rkey = std::make_tuple(service, std::string("other"), 0);
  }
  requests_[rkey]++;
  auto lkey = std::make_pair(std::get<0>(rkey), std::get<1>(rkey));
  if (e.response_ns >= e.request_ns && e.status)
    latency_[lkey].add(static_cast<double>(e.response_ns - e.request_ns) / 1e9);
  auto tkey = std::make_tuple(std::get<0>(rkey), std::get<1>(rkey), e.path_template);
  if (!templates_.count(tkey) && templates_.size() >= kMaxTemplates) {
    overflow_++;
    std::get<2>(tkey) = "other";
  }
  templates_[tkey]++;
}

std::vector<core::MetricFamily> Accounting::metrics(const std::string& node) const {
  core::MetricFamily req{"kagami_sbi_requests_total",
                         "SBI requests answered, by NF service (first path segment), method and status",
                         "counter",
                         {}};
  for (const auto& [k, v] : requests_) {
    const auto& [svc, method, status] = k;
    req.samples.push_back(
        {{{"node", node}, {"service", svc}, {"method", method}, {"status", std::to_string(status)}}, double(v), ""});
  }
  core::MetricFamily tpl{"kagami_sbi_requests_by_path_total",
                         "SBI requests answered, by NF service, method and path template (ids as {id})",
                         "counter",
                         {}};
  for (const auto& [k, v] : templates_) {
    const auto& [svc, method, t] = k;
    tpl.samples.push_back({{{"node", node}, {"service", svc}, {"method", method}, {"path", t}}, double(v), ""});
  }
  core::MetricFamily lat{"kagami_sbi_request_duration_seconds",
                         "SBI request-to-response time (first request byte to response headers), by service and method",
                         "histogram",
                         {}};
  for (const auto& [k, h] : latency_) {
    std::map<std::string, std::string> base{{"node", node}, {"service", k.first}, {"method", k.second}};
    uint64_t cum = 0;
    for (size_t i = 0; i < kLatencyBuckets.size(); i++) {
      cum += h.buckets[i];
      auto l = base;
      l["le"] = fmt::format("{}", kLatencyBuckets[i]);
      lat.samples.push_back({l, double(cum), "_bucket"});
    }
    auto l = base;
    l["le"] = "+Inf";
    lat.samples.push_back({l, double(h.count), "_bucket"});
    lat.samples.push_back({base, h.sum, "_sum"});
    lat.samples.push_back({base, double(h.count), "_count"});
  }
  return {req, tpl, lat};
}

json Accounting::to_json() const {
  json by = json::array();
  for (const auto& [k, v] : requests_) {
    const auto& [svc, method, status] = k;
    by.push_back({{"service", svc}, {"method", method}, {"status", status}, {"count", v}});
  }
  json lat = json::array();
  for (const auto& [k, h] : latency_) {
    json b = json::object();
    uint64_t cum = 0;
    for (size_t i = 0; i < kLatencyBuckets.size(); i++) {
      cum += h.buckets[i];
      b[fmt::format("le_{}", kLatencyBuckets[i])] = cum;
    }
    lat.push_back({{"service", k.first}, {"method", k.second}, {"count", h.count}, {"sum_seconds", h.sum},
                   {"cumulative_buckets", b}});
  }
  json tpl = json::array();
  for (const auto& [k, v] : templates_) {
    const auto& [svc, method, t] = k;
    tpl.push_back({{"service", svc}, {"method", method}, {"path", t}, {"count", v}});
  }
  return {{"exchanges", total_}, {"overflow", overflow_}, {"by_service", by}, {"by_path", tpl}, {"latency", lat}};
}

}  // namespace kagami::sbi
