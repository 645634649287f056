#include "identity/workloads.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace kagami::identity {
namespace {

namespace fs = std::filesystem;

bool valid_name(const std::string& s) {
  return !s.empty() && s.size() <= 253 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

// The v2 line of /proc/<pid>/cgroup ("0::/path"), "" when there is none.
std::string v2_cgroup_of(const std::string& file) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return "";
}

// A cgroup directory as a path relative to the v2 root ("/..."): a file
// path under the root loses the root; anything else is taken as relative.
std::string relative_to(const std::string& path, const std::string& root) {
  std::string_view rel(path);
  if (rel.size() >= root.size() && rel.substr(0, root.size()) == root &&
      (rel.size() == root.size() || rel[root.size()] == '/'))
    rel.remove_prefix(root.size());
  while (rel.size() > 1 && rel.back() == '/') rel.remove_suffix(1);
  return rel.empty() ? std::string(1, '/') : std::string(rel);
}

}  // namespace

Result<std::vector<DeclaredWorkload>> parse_declared_workloads(const nlohmann::json& list) {
  std::vector<DeclaredWorkload> out;
  if (list.is_null()) return out;
  if (!list.is_array()) return make_error("workloads: must be a list");
  std::set<std::pair<std::string, std::string>> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string p = fmt::format("workloads[{}]", i);
    const auto& e = list[i];
    if (!e.is_object()) return make_error("{}: must be a mapping (name, namespace, labels, netns or cgroup)", p);
    DeclaredWorkload w;
    for (const auto& [k, v] : e.items()) {
      const std::string f = p + "." + k;
      if (k == "name" || k == "namespace" || k == "netns" || k == "cgroup") {
        if (!v.is_string() || v.get<std::string>().empty()) return make_error("{}: must be a non-empty string", f);
        const std::string s = v.get<std::string>();
        if (k == "name") w.name = s;
        if (k == "namespace") w.ns = s;
        if (k == "netns") w.netns = s;
        if (k == "cgroup") {
          if (s[0] != '/') return make_error("{}: must be an absolute path (got '{}')", f, s);
          w.cgroup = s;
        }
      } else if (k == "labels") {
        if (v.is_null()) continue;
        if (!v.is_object()) return make_error("{}: must be a mapping of label to value", f);
        for (const auto& [lk, lv] : v.items()) {
          if (!lv.is_string()) return make_error("{}.{}: label values are strings (quote numbers and booleans)", f, lk);
          w.labels[lk] = lv.get<std::string>();
        }
      } else if (k == "ips") {
        continue;  // the policy module's (addresses); not needed to find cgroups
      } else {
        return make_error("{}: unknown key '{}' (known: name, namespace, labels, netns, cgroup, ips)", p, k);
      }
    }
    if (w.name.empty()) return make_error("{}: missing 'name'", p);
    if (!valid_name(w.name) || !valid_name(w.ns)) return make_error("{}: name and namespace use [A-Za-z0-9._-]", p);
    if (w.netns.empty() == w.cgroup.empty()) return make_error("{}: give exactly one of netns and cgroup", p);
    if (!w.netns.empty() && w.netns[0] != '/' && !valid_name(w.netns))
      return make_error("{}.netns: '{}' is neither a name under /run/netns nor an absolute path", p, w.netns);
    if (!names.insert({w.ns, w.name}).second) return make_error("{}: workload {}/{} declared twice", p, w.ns, w.name);
    out.push_back(std::move(w));
  }
  return out;
}

Result<LabelRequirement::Op> label_op(const std::string& s) {
  if (s == "In") return LabelRequirement::Op::In;
  if (s == "NotIn") return LabelRequirement::Op::NotIn;
  if (s == "Exists") return LabelRequirement::Op::Exists;
  if (s == "DoesNotExist") return LabelRequirement::Op::DoesNotExist;
  return make_error("operator '{}': one of In, NotIn, Exists, DoesNotExist", s);
}

bool LabelSelector::matches(const Labels& l) const {
  for (const auto& [k, v] : match_labels) {
    auto it = l.find(k);
    if (it == l.end() || it->second != v) return false;
  }
  for (const auto& r : exprs) {
    auto it = l.find(r.key);
    const bool has = it != l.end();
    const bool in = has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    switch (r.op) {
      case LabelRequirement::Op::In: if (!in) return false; break;
      case LabelRequirement::Op::NotIn: if (in) return false; break;  // an absent key: NotIn holds (Kubernetes)
      case LabelRequirement::Op::Exists: if (!has) return false; break;
      case LabelRequirement::Op::DoesNotExist: if (has) return false; break;
    }
  }
  return true;
}

bool WorkloadCgroups::contains(const std::string& rel) const {
  if (exact.count(rel)) return true;
  for (const auto& s : subtree)
    if (rel == s || (rel.rfind(s, 0) == 0 && (s == "/" || rel[s.size()] == '/'))) return true;
  return false;
}

std::vector<WorkloadCgroups> workload_cgroups(const std::vector<DeclaredWorkload>& ws, const std::string& cgroup_root,
                                              const std::string& proc_root) {
  std::vector<WorkloadCgroups> out(ws.size());
  std::string root = cgroup_root;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  // netns workloads: the namespace's (dev, inode), then one pass over /proc.
  std::map<std::pair<dev_t, ino_t>, std::vector<size_t>> by_ns;
  for (size_t i = 0; i < ws.size(); ++i) {
    const auto& w = ws[i];
    if (!w.cgroup.empty()) {
      // A file path under the v2 root, or already relative to it.
      out[i].subtree.insert(relative_to(w.cgroup, root));
      continue;
    }
    const std::string path = w.netns[0] == '/' ? w.netns : "/run/netns/" + w.netns;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) by_ns[{st.st_dev, st.st_ino}].push_back(i);
  }
  if (by_ns.empty()) return out;
  std::error_code ec;
  // Every process once: bounded by the pid count; a process gone mid-scan
  // is skipped (its cgroup is empty or gone with it).
  for (auto it = fs::directory_iterator(proc_root, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string pid = it->path().filename().string();
    if (pid.empty() || !std::all_of(pid.begin(), pid.end(), ::isdigit)) continue;
    struct stat st {};
    if (::stat((it->path() / "ns/net").c_str(), &st) != 0) continue;
    auto hit = by_ns.find({st.st_dev, st.st_ino});
    if (hit == by_ns.end()) continue;
    const std::string cg = v2_cgroup_of(it->path() / "cgroup");
    if (cg.empty()) continue;
    for (size_t i : hit->second) out[i].exact.insert(cg);
  }
  return out;
}

}  // namespace kagami::identity
