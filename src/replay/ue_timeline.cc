#include "replay/ue_timeline.h"

#include <algorithm>
#include <ctime>

#include <fmt/format.h>

namespace kagami::replay {
namespace {

using nlohmann::json;

std::string rfc3339(uint64_t ns) {
  const time_t secs = static_cast<time_t>(ns / 1000000000ULL);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06}Z", buf, (ns % 1000000000ULL) / 1000);
}

}  // namespace

Result<std::vector<json>> ue_timeline(const json& report) {
  if (!report.contains("n2") || !report["n2"].contains("ue_records"))
    return make_error("--ue-timeline: the report has no n2 UE records (run the n2 module)");
  std::vector<json> out;
  for (const auto& u : report["n2"]["ue_records"]) {
    json ue = json::object();
    for (const char* k : {"association", "ran_ue_ngap_id", "amf_ue_ngap_id", "subscriber"})
      if (u.contains(k)) ue[k] = u[k];
    if (!u.contains("timeline")) continue;
    for (const auto& t : u["timeline"]) {
      const uint64_t ts = t.value("ts_ns", uint64_t{0});
      json l = {{"time", rfc3339(ts)}, {"ts_ns", ts}, {"ue", ue}};
      // "ue" names the UE as its record knows it (an AMF UE NGAP ID learnt
      // later included); "ids" are the IDs this message itself carried.
      if (t.contains("ue")) l["ids"] = t["ue"];
      l["procedure"] = t["ngap"]["procedure"];
      l["pdu_type"] = t["ngap"]["pdu_type"];
      if (t["ngap"].contains("cause")) l["cause"] = t["ngap"]["cause"];
      const json& nas = t.value("nas", json::array());
      for (const auto& n : nas) {
        if (!l.contains("message")) {
          if (n.contains("mm")) l["message"] = n["mm"];
          else if (n.contains("sm")) l["message"] = n["sm"];
          else if (n.value("ciphered", false)) l["message"] = "ciphered";
        }
        if (n.contains("outcome") && !l.contains("outcome")) {
          l["outcome"] = n["outcome"];
          if (n.contains("duration_ms")) l["duration_ms"] = n["duration_ms"];
        }
      }
      if (!l.contains("outcome") && t["ngap"]["pdu_type"] == "unsuccessfulOutcome") l["outcome"] = "ngap_failure";
      if (!nas.empty()) l["nas"] = nas;
      for (const char* k : {"ul_tunnels", "dl_tunnels"})
        if (t.contains(k)) l[k] = t[k];
      out.push_back(std::move(l));
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const json& a, const json& b) {
    return a["ts_ns"].get<uint64_t>() < b["ts_ns"].get<uint64_t>();
  });
  return out;
}

}  // namespace kagami::replay
