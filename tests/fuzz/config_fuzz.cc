// libFuzzer target for the agent's YAML config parser (the one parser that
// reads operator-written files as root). Built with KAGAMI_FUZZ=ON and clang:
//   build/tests/fuzz/config_fuzz tests/fuzz/corpus/config
// The same entry point runs under g++ in CI over the seed corpus plus
// deterministic mutations (tests/unit/agent_config_fuzz_test.cc).
//
// Properties checked on every input, beyond "no crash, no hang, no leak":
//   - a rejected config always comes with a non-empty message;
//   - an accepted config satisfies the invariants the agent relies on
//     (valid unique program names, absolute object paths, parseable http
//     address, pin root under /sys/fs/bpf/, attach points that round-trip).
#include <cstddef>
#include <cstdint>
#include <set>
#include <string_view>

#include "agent/config.h"
#include "common/names.h"

namespace {

[[noreturn]] void violated() { __builtin_trap(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kagami::agent;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ParseOptions opts;
  opts.base_dir = "/nonexistent-kagami-fuzz";
  opts.check_objects = false;  // no file system dependence: same input, same result
  opts.known_modules = std::vector<std::string>{"obs"};
  auto r = parse_config(text, opts);
  if (!r) {
    if (r.error().message.empty()) violated();
    return 0;
  }
  std::set<std::string> names;
  for (const auto& p : r->programs) {
    if (!kagami::names::valid_program_name(p.name) || !names.insert(p.name).second) violated();
    if (p.object.empty() || p.object[0] != '/') violated();
    for (const auto& a : p.attach) {
      auto again = kagami::core::AttachPoint::parse(a.to_string());
      if (!again || !(*again == a)) violated();
    }
  }
  if (!parse_host_port(r->agent.http)) violated();
  if (r->agent.pin_root.rfind("/sys/fs/bpf/", 0) != 0) violated();
  for (const auto& [name, m] : r->modules)
    if (name != "obs" || !m.section.is_object() || m.section.contains("enabled")) violated();
  return 0;
}
