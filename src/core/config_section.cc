#include "core/config_section.h"

#include <set>

#include <fmt/format.h>

namespace kagami::core {
namespace {

const nlohmann::json& null_json() {
  static const nlohmann::json n;
  return n;
}

std::string shown(const nlohmann::json& v) {
  // replace: a hostile string must not throw while we describe it.
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

}  // namespace

ConfigSection::ConfigSection(std::string module, const nlohmann::json& section)
    : module_(std::move(module)), section_(section.is_object() ? section : null_json()),
      bad_shape_(!section.is_object() && !section.is_null()) {}

Error ConfigSection::error(std::string_view key, const std::string& message) const {
  return Error{fmt::format("{}.{}: {}", module_, key, message)};
}

Result<void> ConfigSection::allow(std::initializer_list<std::string_view> known) const {
  if (bad_shape_) return make_error("{}: the section must be a mapping of settings", module_);
  for (const auto& [k, v] : section_.items()) {
    (void)v;
    if (k == "enabled") continue;
    bool found = false;
    for (auto n : known) found = found || n == k;
    if (!found) return error(k, fmt::format("unknown key (known: {})", fmt::join(known, ", ")));
  }
  return ok();
}

bool ConfigSection::has(std::string_view key) const {
  return section_.is_object() && section_.contains(std::string(key));
}

const nlohmann::json& ConfigSection::raw(std::string_view key) const {
  if (!has(key)) return null_json();
  return section_.at(std::string(key));
}

Result<const nlohmann::json*> ConfigSection::get(std::string_view key, Need need) const {
  if (bad_shape_) return make_error("{}: the section must be a mapping of settings", module_);
  if (!has(key)) {
    if (need == Need::Required) return error(key, "is required");
    return static_cast<const nlohmann::json*>(nullptr);
  }
  return &section_.at(std::string(key));
}

Result<void> ConfigSection::boolean(std::string_view key, bool& out, Need need) const {
  auto v = get(key, need);
  if (!v) return v.error();
  if (!*v) return ok();
  if (!(*v)->is_boolean()) return error(key, fmt::format("must be true or false (got {})", shown(**v)));
  out = (*v)->get<bool>();
  return ok();
}

Result<void> ConfigSection::integer(std::string_view key, int64_t& out, int64_t min, int64_t max, Need need) const {
  auto v = get(key, need);
  if (!v) return v.error();
  if (!*v) return ok();
  const auto& j = **v;
  bool fits = j.is_number_integer() && (j.is_number_unsigned() ? j.get<uint64_t>() <= static_cast<uint64_t>(max)
                                                                 : true);
  if (!fits || j.get<int64_t>() < min || j.get<int64_t>() > max)
    return error(key, fmt::format("must be an integer in {}..{} (got {})", min, max, shown(j)));
  out = j.get<int64_t>();
  return ok();
}

Result<void> ConfigSection::number(std::string_view key, double& out, double min, double max, Need need) const {
  auto v = get(key, need);
  if (!v) return v.error();
  if (!*v) return ok();
  const auto& j = **v;
  if (!j.is_number() || !(j.get<double>() >= min && j.get<double>() <= max))  // NaN fails both
    return error(key, fmt::format("must be a number in {}..{} (got {})", min, max, shown(j)));
  out = j.get<double>();
  return ok();
}

Result<void> ConfigSection::string(std::string_view key, std::string& out, Need need, bool allow_empty) const {
  auto v = get(key, need);
  if (!v) return v.error();
  if (!*v) return ok();
  if (!(*v)->is_string()) return error(key, fmt::format("must be a string (got {})", shown(**v)));
  auto s = (*v)->get<std::string>();
  if (s.empty() && !allow_empty) return error(key, "must not be empty");
  out = std::move(s);
  return ok();
}

Result<void> ConfigSection::choice(std::string_view key, std::string& out,
                                   std::initializer_list<std::string_view> choices, Need need) const {
  auto v = get(key, need);
  if (!v) return v.error();
  if (!*v) return ok();
  const auto& j = **v;
  if (j.is_string())
    for (auto c : choices)
      if (j.get<std::string>() == c) {
        out = std::string(c);
        return ok();
      }
  return error(key, fmt::format("must be one of {} (got {})", fmt::join(choices, ", "), shown(j)));
}

Result<void> ConfigSection::strings(std::string_view key, std::vector<std::string>& out, Need need,
                                    size_t max_items) const {
  auto v = get(key, need);
  if (!v) return v.error();
  if (!*v) return ok();
  const auto& j = **v;
  if (!j.is_array()) return error(key, fmt::format("must be a list of strings (got {})", shown(j)));
  if (need == Need::Required && j.empty()) return error(key, "must list at least one entry");
  if (j.size() > max_items) return error(key, fmt::format("at most {} entries (got {})", max_items, j.size()));
  std::vector<std::string> got;
  std::set<std::string> seen;
  for (const auto& e : j) {
    if (!e.is_string() || e.get<std::string>().empty())
      return error(key, fmt::format("every entry must be a non-empty string (got {})", shown(e)));
    if (!seen.insert(e.get<std::string>()).second)
      return error(key, fmt::format("'{}' is listed twice", e.get<std::string>()));
    got.push_back(e.get<std::string>());
  }
  out = std::move(got);
  return ok();
}

Result<void> ConfigSection::path(std::string_view key, std::string& out, Need need) const {
  if (!has(key) && need == Need::Optional) return ok();  // the default stands, whatever it is
  std::string p = out;
  KAGAMI_TRY(string(key, p, need));
  if (p.empty() || p[0] != '/') return error(key, fmt::format("must be an absolute path (got '{}')", p));
  out = std::move(p);
  return ok();
}

}  // namespace kagami::core
