// The event sources of a module loaded in a test's ProgramManager, as the
// agent's event loop takes them (ring and drops maps opened by name), so a
// kernel test drains the module exactly as the agent does. Header-only:
// only tests that already link kagami_agent include it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "agent/event_loop.h"
#include "common/result.h"
#include "core/module.h"
#include "core/program_manager.h"

namespace kagami::test {

inline Result<std::vector<agent::LoopSource>> ring_sources(const core::ProgramManager& pm, const std::string& module,
                                                           std::vector<core::EventSource> sources) {
  std::vector<agent::LoopSource> out;
  for (auto& s : sources) {
    agent::LoopSource ls;
    ls.module = module;
    auto r = pm.map_fd(s.program, s.ring_map);
    if (!r) return r.error();
    ls.ring = std::move(*r);
    if (!s.drops_map.empty()) {
      auto d = pm.map_fd(s.program, s.drops_map);
      if (!d) return d.error();
      ls.drops = std::move(*d);
    }
    ls.source = std::move(s);
    out.push_back(std::move(ls));
  }
  return out;
}

}  // namespace kagami::test
