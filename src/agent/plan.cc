#include "agent/plan.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace kagami::agent {

const char* action_name(Action a) {
  switch (a) {
    case Action::Add: return "add";
    case Action::Replace: return "replace";
    case Action::Remove: return "remove";
    case Action::Keep: return "keep";
  }
  return "keep";
}

size_t ApplyPlan::count(Action a) const {
  return static_cast<size_t>(
      std::count_if(steps.begin(), steps.end(), [a](const PlannedStep& s) { return s.action == a; }));
}

std::vector<std::string> canonical_attach(const std::vector<core::AttachPoint>& points) {
  std::vector<std::string> out;
  out.reserve(points.size());
  for (const auto& p : points) out.push_back(p.to_string());
  std::sort(out.begin(), out.end());
  return out;
}

ApplyPlan plan_apply(const std::vector<DesiredProgram>& desired,
                     const std::vector<CurrentProgram>& current) {
  std::map<std::string, const CurrentProgram*> running;
  for (const auto& c : current) running[c.name] = &c;

  std::vector<PlannedStep> adds, replaces, removes, keeps;
  std::map<std::string, bool> wanted;
  for (size_t i = 0; i < desired.size(); ++i) {
    const auto& d = desired[i];
    wanted[d.request.name] = true;
    PlannedStep s;
    s.name = d.request.name;
    s.origin = d.origin;
    s.desired = static_cast<int>(i);
    auto it = running.find(d.request.name);
    if (it == running.end()) {
      s.action = Action::Add;
      s.reason = "new";
      adds.push_back(std::move(s));
      continue;
    }
    const CurrentProgram& c = *it->second;
    std::vector<std::string> want_attach = canonical_attach(d.request.attach);
    std::vector<std::string> have_attach = c.attach;
    std::sort(have_attach.begin(), have_attach.end());
    std::vector<std::string> why;
    if (c.sha256 != d.sha256)
      why.push_back(fmt::format("object changed (sha256 {} -> {})", c.sha256.substr(0, 12),
                                d.sha256.substr(0, 12)));
    if (have_attach != want_attach)
      why.push_back(fmt::format("attach changed ([{}] -> [{}])", fmt::join(have_attach, ", "),
                                fmt::join(want_attach, ", ")));
    if (c.origin != d.origin) why.push_back(fmt::format("taken over from origin '{}'", c.origin));
    s.reason = why.empty() ? "unchanged" : fmt::format("{}", fmt::join(why, "; "));
    const bool differs = c.sha256 != d.sha256 || have_attach != want_attach;
    s.action = differs ? Action::Replace : Action::Keep;
    s.attach_changed = have_attach != want_attach;
    (differs ? replaces : keeps).push_back(std::move(s));
  }
  for (const auto& c : current) {
    if (wanted.count(c.name) || c.origin == kOriginCli) continue;
    PlannedStep s;
    s.action = Action::Remove;
    s.name = c.name;
    s.origin = c.origin;
    s.reason = c.origin == kOriginConfig ? "no longer in the config"
                                         : "no longer planned by " + c.origin;
    removes.push_back(std::move(s));
  }
  ApplyPlan plan;
  for (auto* v : {&adds, &replaces, &removes, &keeps})
    for (auto& s : *v) plan.steps.push_back(std::move(s));
  return plan;
}

}  // namespace kagami::agent
