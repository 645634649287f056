// libFuzzer target for the policy parsers (modules/policy/model.cc) and
// the compiler behind them: policy files come from operators and, with the
// Kubernetes feed, from anyone who may create a NetworkPolicy. Beyond "no
// crash": an accepted policy compiles against sample workloads within the
// datapath's limits or fails with a message, every rule entry's port
// prefix is at most 16 bits, every error names the file, and CIDR text
// round-trips.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "modules/policy/compile.h"
#include "modules/policy/model.h"

using namespace kagami::policy;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto ps = parse_policies(in, "fuzz.yaml");
  if (!ps) {
    if (ps.error().message.rfind("fuzz.yaml", 0) != 0) __builtin_trap();
  } else {
    std::vector<Workload> wl(2);
    wl[0].name = "a";
    wl[0].labels = {{"app", "a"}, {"role", "db"}};
    wl[0].addresses = {*parse_cidr("10.0.0.1"), *parse_cidr("fd00::1")};
    wl[1].name = "b";
    wl[1].ns = "other";
    wl[1].labels = {{"app", "b"}};
    wl[1].addresses = {*parse_cidr("172.17.1.9")};
    RuleIds ids;
    CompileLimits lim;
    lim.max_prefixes = 4096;
    lim.max_rules = 65536;
    auto c = compile(wl, *ps, {{"other", {{"project", "p"}}}}, ids, lim);
    if (c) {
      for (const auto& r : c->rules) {
        if (r.port_bits > 16 || r.rule == 0) __builtin_trap();
        if (r.proto == 0 && r.port_bits != 0) __builtin_trap();
      }
      if (c->rules.size() > 2 * lim.max_rules) __builtin_trap();
      // GTP-U entries and Modify actions: within the datapath's arrays, and
      // every entry names a rule and a sound inner port range.
      if (c->gtp.size() > lim.max_gtp || c->mods.size() > lim.max_mods) __builtin_trap();
      for (const auto& g : c->gtp) {
        if (g.rule == 0 || g.port_lo > g.port_hi || g.mod > c->mods.size()) __builtin_trap();
        if (g.qfi && *g.qfi > 63) __builtin_trap();
      }
      for (const auto& m : c->mods) {
        if (m.modify.dscp && *m.modify.dscp > 63) __builtin_trap();
        if (m.modify.ttl && *m.modify.ttl == 0) __builtin_trap();
        for (auto [q, d] : m.modify.qfi_dscp)
          if (q > 63 || d > 63) __builtin_trap();
      }
    }
  }
  // One line as a CIDR: accepted text prints back to an equal prefix.
  const std::string line(in.substr(0, std::min<size_t>(in.size(), 64)));
  if (auto cidr = parse_cidr(line)) {
    auto again = parse_cidr(cidr->str());
    if (!again || !(*again == *cidr)) __builtin_trap();
  }
  return 0;
}
