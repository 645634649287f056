// ConfigSection: the one reader of a module's config section (modules.<name>
// in the agent YAML, turned JSON), shared by every module so that all of
// them reject the same mistakes with the same words.
//
//   ConfigSection s("obs", section);
//   KAGAMI_TRY(s.allow({"interfaces", "direction", "xdp", "top_n_teids"}));
//   KAGAMI_TRY(s.strings("interfaces", cfg.interfaces, Need::Required));
//   KAGAMI_TRY(s.integer("top_n_teids", cfg.top_n_teids, 0, 10000));
//
// Every reader leaves the target at its default when the key is absent and
// returns an Error naming "<module>.<key>", the expected form and what was
// given ("obs.top_n_teids: must be an integer in 0..10000 (got -1)"). The
// agent's own "enabled" key is accepted everywhere. A null section (a module
// enabled with no settings) reads as empty.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace kagami::core {

enum class Need { Optional, Required };

class ConfigSection {
 public:
  ConfigSection(std::string module, const nlohmann::json& section);

  // Errors on the first key not in `known` (nor "enabled"), listing the
  // known ones; and on a section that is neither a mapping nor null.
  Result<void> allow(std::initializer_list<std::string_view> known) const;

  bool has(std::string_view key) const;
  const std::string& module() const { return module_; }

  Result<void> boolean(std::string_view key, bool& out, Need need = Need::Optional) const;
  Result<void> integer(std::string_view key, int64_t& out, int64_t min, int64_t max,
                       Need need = Need::Optional) const;
  // Any unsigned target (uint32_t, size_t, ...), range-checked.
  template <typename U>
  Result<void> integer(std::string_view key, U& out, int64_t min, int64_t max, Need need = Need::Optional) const {
    int64_t v = static_cast<int64_t>(out);
    KAGAMI_TRY(integer(key, v, min, max, need));
    out = static_cast<U>(v);
    return ok();
  }
  Result<void> number(std::string_view key, double& out, double min, double max, Need need = Need::Optional) const;
  // A string; non-empty unless allow_empty.
  Result<void> string(std::string_view key, std::string& out, Need need = Need::Optional,
                      bool allow_empty = false) const;
  // One of `choices`.
  Result<void> choice(std::string_view key, std::string& out, std::initializer_list<std::string_view> choices,
                      Need need = Need::Optional) const;
  // A list of non-empty strings without repeats, at most max_items.
  Result<void> strings(std::string_view key, std::vector<std::string>& out, Need need = Need::Optional,
                       size_t max_items = std::numeric_limits<size_t>::max()) const;
  // An absolute path.
  Result<void> path(std::string_view key, std::string& out, Need need = Need::Optional) const;

  // The raw value (null when absent), for shapes the readers above do not cover.
  const nlohmann::json& raw(std::string_view key) const;
  // An Error naming this section's key, for checks a module adds itself.
  Error error(std::string_view key, const std::string& message) const;

 private:
  Result<const nlohmann::json*> get(std::string_view key, Need need) const;
  std::string module_;
  nlohmann::json section_;  // a copy: a section is small, and a temporary must not dangle
  bool bad_shape_ = false;
};

}  // namespace kagami::core
