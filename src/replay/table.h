// Counter JSON as text tables, in the manner of `tshark -z`: used by
// `kagami replay` (a report's module sections) and `kagami modules` (the
// agent's live module snapshots, which the demo prints).
//
// The renderer is generic: it knows JSON shapes, not modules. An object
// whose values are objects sharing numeric fields (gtpu.by_teid,
// pfcp.by_msg_type, ...) and an array of such objects becomes a table, one
// row per key or element, the numeric fields as right-aligned columns, the
// string fields ("name" first) as left-aligned ones. Scalars become aligned
// "key  value" lines, other nested objects titled blocks. Zero counters are
// left out (the JSON keeps them).
//
// Hostile input is fine (fuzzed through render_text): recursion stops at
// kMaxTableDepth, tables are capped at kMaxTableColumns columns, strings are
// printed with invalid UTF-8 replaced.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace kagami::replay {

inline constexpr int kMaxTableDepth = 16;
inline constexpr size_t kMaxTableColumns = 16;

struct TableStyle {
  // > 0: counters get a rate, value / seconds, or (value - previous) /
  // seconds when `previous` (the same document, `seconds` earlier) is given.
  // Tables get a "<column>/s" column for their first numeric column and
  // their first column named like "*bytes"; scalar lines whose key ends in
  // packets, bytes, messages, frames or chunks get "(N/s)".
  double seconds = 0;
  const nlohmann::json* previous = nullptr;
  bool omit_zero = true;
  // Only the section's scalars and the tables directly in it; nested
  // blocks (objects that are not tables) are left out.
  bool brief = false;
  std::string indent = "  ";
};

// Plain aligned table: a header row and rows of cells; `right` marks the
// columns aligned right (numbers). Missing cells print empty.
struct TextTable {
  std::vector<std::string> header;
  std::vector<bool> right;
  std::vector<std::vector<std::string>> rows;
  std::string render(const std::string& indent = "  ") const;
};

// One counter section (any JSON value) as text, every line prefixed with
// style.indent. An empty string when omit_zero leaves nothing.
std::string render_section(const nlohmann::json& section, const TableStyle& style = {});

// "12", "1.5k", "3.2M": compact rate figure.
std::string format_rate(double per_second);

}  // namespace kagami::replay
