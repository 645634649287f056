// The built-in modules, by name. One line per module: the agent enables them
// from the config's modules.<name> sections.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/module.h"
#include "modules/exec/exec.h"
#include "modules/obs/obs_module.h"
#include "modules/transport/transport.h"

namespace kagami::core {
namespace {

struct Entry {
  const char* name;
  std::unique_ptr<Module> (*make)();
};

const Entry kModules[] = {
    {"obs", [] { return std::unique_ptr<Module>(new obs::ObsModule()); }},
    {"transport", [] { return std::unique_ptr<Module>(new modules::TransportModule()); }},
    {"exec", [] { return std::unique_ptr<Module>(new modules::ExecModule()); }},
};

}  // namespace

std::unique_ptr<Module> make_module(const std::string& name) {
  for (const auto& e : kModules)
    if (name == e.name) return e.make();
  return nullptr;
}

std::vector<std::string> builtin_module_names() {
  std::vector<std::string> out;
  for (const auto& e : kModules) out.push_back(e.name);
  return out;
}

}  // namespace kagami::core
