#include "replay/table.h"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace kagami::replay {

using nlohmann::json;

namespace {

std::string scalar(const json& v) {
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d)) return fmt::format("{}", d);
    return fmt::format("{:.3f}", d);
  }
  if (v.is_string()) return v.get<std::string>();
  // replace: a string from a damaged map key must not throw mid-report.
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string clip(std::string s, size_t n) {
  if (s.size() > n) s = s.substr(0, n) + "...";
  return s;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Counters measured per unit of time: the columns and lines that get a rate.
bool is_count_name(std::string_view k) {
  for (std::string_view s : {"packets", "count", "messages", "frames", "chunks"})
    if (ends_with(k, s)) return true;
  return false;
}
bool is_bytes_name(std::string_view k) { return ends_with(k, "bytes"); }

// Generic counter nouns lead a table's numeric columns, in this order; the
// rest follow in document order.
int column_rank(std::string_view k) {
  static constexpr std::string_view kLead[] = {"packets", "count", "messages", "frames", "bytes"};
  for (size_t i = 0; i < std::size(kLead); i++)
    if (k == kLead[i]) return static_cast<int>(i);
  return static_cast<int>(std::size(kLead));
}

bool is_zero(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>() == 0;
  if (v.is_number_integer()) return v.get<int64_t>() == 0;
  if (v.is_number_float()) return v.get<double>() == 0.0;
  return false;
}

double number(const json& v) { return v.is_number() ? v.get<double>() : 0.0; }

const json* child(const json* p, const std::string& key) {
  if (!p || !p->is_object()) return nullptr;
  auto it = p->find(key);
  return it == p->end() ? nullptr : &*it;
}
const json* child(const json* p, size_t i) {
  if (!p || !p->is_array() || i >= p->size()) return nullptr;
  return &(*p)[i];
}

class Renderer {
 public:
  explicit Renderer(const TableStyle& s) : s_(s) {}

  void section(const json& v, const json* prev, const std::string& indent, int depth, std::string& out) {
    if (depth >= kMaxTableDepth && v.is_structured()) {
      out += indent + clip(scalar(v), 200) + "\n";
      return;
    }
    if (tabular(v)) {
      table(v, prev, "", indent, out);
      return;
    }
    if (v.is_structured()) {
      block(v, prev, indent, depth, out);
      return;
    }
    if (s_.omit_zero && is_zero(v)) return;
    out += indent + scalar(v) + "\n";
  }

 private:
  double rate(const json& cur, const json* prev) const {
    double r = number(cur) - (s_.previous && prev ? number(*prev) : 0.0);
    return std::max(0.0, r) / s_.seconds;
  }

  // An object (or array) of objects that share numeric fields.
  struct Column {
    std::string name;
    enum Kind { Text, Number, Nested } kind;
    bool rate = false;
  };

  static bool entries(const json& v, std::vector<std::pair<std::string, const json*>>& rows) {
    if (v.is_object()) {
      bool decimal = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        rows.emplace_back(it.key(), &*it);
        const std::string& k = it.key();
        decimal = decimal && !k.empty() && k.size() <= 18 &&
                  std::all_of(k.begin(), k.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
      }
      // Keys that are numbers (message types, QFIs, ports) in numeric
      // order: 5, 6, 50 rather than the map's 5, 50, 6.
      if (decimal)
        std::stable_sort(rows.begin(), rows.end(),
                         [](const auto& a, const auto& b) { return std::stoll(a.first) < std::stoll(b.first); });
    } else if (v.is_array()) {
      for (size_t i = 0; i < v.size(); i++) rows.emplace_back(std::to_string(i), &v[i]);
    }
    return !rows.empty();
  }

  static bool columns(const json& v, std::vector<Column>& cols) {
    std::vector<std::pair<std::string, const json*>> rows;
    if (!v.is_structured() || !entries(v, rows)) return false;
    bool numeric = false;
    for (const auto& [k, c] : rows) {
      if (!c->is_object()) return false;
      for (auto it = c->begin(); it != c->end(); ++it) {
        if (it->is_null()) continue;
        auto found = std::find_if(cols.begin(), cols.end(), [&](const Column& col) { return col.name == it.key(); });
        if (found != cols.end()) continue;
        if (cols.size() >= kMaxTableColumns) return false;
        Column::Kind kind = it->is_number() ? Column::Number : it->is_structured() ? Column::Nested : Column::Text;
        numeric |= kind == Column::Number;
        cols.push_back({it.key(), kind});
      }
    }
    if (!numeric) return false;
    // "name" first, then text, numbers (counter nouns first), nested summaries.
    std::stable_sort(cols.begin(), cols.end(), [](const Column& a, const Column& b) {
      auto key = [](const Column& c) {
        int group = c.kind == Column::Text ? (c.name == "name" ? 0 : 1) : c.kind == Column::Number ? 2 : 3;
        return std::pair(group, c.kind == Column::Number ? column_rank(c.name) : 0);
      };
      return key(a) < key(b);
    });
    return true;
  }

  static bool tabular(const json& v) {
    std::vector<Column> cols;
    return columns(v, cols);
  }

  // A nested value in a table cell, summarized: "T-PDU=46 End Marker=1".
  std::string compact(const json& v, int depth) const {
    if (!v.is_structured()) return scalar(v);
    if (depth >= 2) return "{...}";
    std::vector<std::pair<std::string, const json*>> items;
    entries(v, items);
    std::string out;
    size_t shown = 0, more = 0;
    for (const auto& [k, c] : items) {
      std::string label = k, value;
      if (c->is_object()) {
        auto n = c->find("name");
        if (n != c->end() && n->is_string()) label = n->get<std::string>();
        const json* num = nullptr;
        for (const char* f : {"count", "packets", "messages"})
          if (c->contains(f) && (*c)[f].is_number()) {
            num = &(*c)[f];
            break;
          }
        if (num) {
          if (s_.omit_zero && is_zero(*num)) continue;
          value = scalar(*num);
        } else {
          value = "{" + compact(*c, depth + 1) + "}";
        }
      } else {
        if (s_.omit_zero && is_zero(*c)) continue;
        value = compact(*c, depth + 1);
      }
      if (shown == 4) {
        more++;
        continue;
      }
      out += (out.empty() ? "" : " ") + clip(label, 40) + "=" + clip(value, 40);
      shown++;
    }
    if (more) out += fmt::format(" (+{} more)", more);
    return out;
  }

  void table(const json& v, const json* prev, const std::string& title, const std::string& indent,
             std::string& out) {
    std::vector<Column> cols;
    columns(v, cols);
    if (s_.seconds > 0) {
      bool count_done = false, bytes_done = false;
      for (auto& c : cols) {
        if (c.kind != Column::Number) continue;
        if (!count_done && is_count_name(c.name)) c.rate = count_done = true;
        else if (!bytes_done && is_bytes_name(c.name)) c.rate = bytes_done = true;
      }
    }
    TextTable t;
    t.header.push_back(title);
    t.right.push_back(false);
    for (const auto& c : cols) {
      t.header.push_back(c.name);
      t.right.push_back(c.kind == Column::Number);
      if (c.rate) {
        t.header.push_back(c.name + "/s");
        t.right.push_back(true);
      }
    }
    std::vector<std::pair<std::string, const json*>> rows;
    entries(v, rows);
    size_t i = 0;
    for (const auto& [k, c] : rows) {
      const json* p = v.is_array() ? child(prev, i++) : child(prev, k);
      std::vector<std::string> row{clip(k, 64)};
      bool nonzero = false;
      for (const auto& col : cols) {
        auto it = c->find(col.name);
        if (it == c->end() || it->is_null()) {
          row.emplace_back();
          if (col.rate) row.emplace_back();
          continue;
        }
        if (col.kind == Column::Nested || it->is_structured()) {
          row.push_back(compact(*it, 0));
          nonzero |= !row.back().empty();
        } else {
          row.push_back(clip(scalar(*it), 64));
          if (it->is_number()) nonzero |= !is_zero(*it);
        }
        if (col.rate) row.push_back(it->is_number() ? format_rate(rate(*it, child(p, col.name))) : "");
      }
      if (s_.omit_zero && !nonzero) continue;
      t.rows.push_back(std::move(row));
    }
    if (t.rows.empty()) return;
    out += t.render(indent);
  }

  void block(const json& v, const json* prev, const std::string& indent, int depth, std::string& out) {
    std::vector<std::pair<std::string, const json*>> items;
    entries(v, items);
    if (v.is_array()) {
      // Arrays of scalars read best on one line.
      bool scalars = std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_primitive(); });
      if (scalars) {
        std::string s;
        for (const auto& e : v) s += (s.empty() ? "" : ", ") + scalar(e);
        out += indent + "[" + clip(s, 400) + "]\n";
        return;
      }
      for (auto& it : items) it.first = "[" + it.first + "]";
    }
    // Scalars first, as aligned "key  value" lines, then nested blocks and tables.
    // Numbers right-aligned in one column; strings and lists left-aligned in
    // another, so one long string does not push every number to the right.
    TextTable lines, text;
    lines.right = {false, true, false};
    text.right = {false, false};
    std::string nested;
    size_t i = 0;
    for (const auto& [k, c] : items) {
      const json* p = v.is_array() ? child(prev, i++) : child(prev, k);
      const std::string key = clip(k, 64);
      if (c->is_array() && std::all_of(c->begin(), c->end(), [](const json& e) { return e.is_primitive(); })) {
        if (c->empty() && s_.omit_zero) continue;
        std::string s;
        for (const auto& e : *c) s += (s.empty() ? "" : ", ") + scalar(e);
        text.rows.push_back({key, "[" + clip(s, 400) + "]"});
        continue;
      }
      if (!c->is_structured()) {
        if (s_.omit_zero && is_zero(*c)) continue;
        std::string r;
        if (s_.seconds > 0 && c->is_number() && (is_count_name(k) || is_bytes_name(k)))
          r = "(" + format_rate(rate(*c, p)) + "/s)";
        if (c->is_number()) lines.rows.push_back({key, scalar(*c), r});
        else text.rows.push_back({key, clip(scalar(*c), 200)});
        continue;
      }
      // Brief: the tables of this level only, not nested blocks.
      if (s_.brief && !tabular(*c)) continue;
      std::string sub;
      if (depth + 1 < kMaxTableDepth && tabular(*c)) {
        table(*c, p, key, indent, sub);
        if (!sub.empty()) nested += "\n" + sub;
        continue;
      }
      section(*c, p, indent + "  ", depth + 1, sub);
      if (!sub.empty()) nested += "\n" + indent + key + ":\n" + sub;
    }
    if (!lines.rows.empty()) out += lines.render(indent);
    if (!text.rows.empty()) out += text.render(indent);
    // A leading blank line only separates; drop it when nothing precedes.
    if (out.empty() && !nested.empty()) nested.erase(0, 1);
    out += nested;
  }

  const TableStyle& s_;
};

}  // namespace

std::string format_rate(double r) {
  if (!std::isfinite(r) || r < 0) return "-";
  if (r < 10) return fmt::format("{:.1f}", r);
  if (r < 1e3) return fmt::format("{:.0f}", r);
  if (r < 1e6) return fmt::format("{:.1f}k", r / 1e3);
  if (r < 1e9) return fmt::format("{:.1f}M", r / 1e6);
  return fmt::format("{:.1f}G", r / 1e9);
}

std::string TextTable::render(const std::string& indent) const {
  size_t ncol = header.size();
  for (const auto& r : rows) ncol = std::max(ncol, r.size());
  std::vector<size_t> w(ncol, 0);
  auto measure = [&](const std::vector<std::string>& r) {
    for (size_t i = 0; i < r.size(); i++) w[i] = std::max(w[i], r[i].size());
  };
  if (!header.empty()) measure(header);
  for (const auto& r : rows) measure(r);
  auto line = [&](const std::vector<std::string>& r) {
    std::string s = indent;
    for (size_t i = 0; i < ncol; i++) {
      const std::string cell = i < r.size() ? r[i] : std::string();
      const bool last = i + 1 == ncol;
      const bool right_aligned = i < right.size() && right[i];
      if (i) s += "  ";
      if (right_aligned) s += fmt::format("{:>{}}", cell, w[i]);
      else if (last) s += cell;
      else s += fmt::format("{:<{}}", cell, w[i]);
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  std::string out;
  if (!header.empty()) out += line(header);
  for (const auto& r : rows) out += line(r);
  return out;
}

std::string render_section(const json& section, const TableStyle& style) {
  std::string out;
  Renderer r(style);
  r.section(section, style.previous, style.indent, 0, out);
  return out;
}

}  // namespace kagami::replay
