#include "agent/protocol.h"

#include <fmt/format.h>

namespace kagami::agent {

size_t json_nesting_depth(std::string_view text, size_t limit) {
  size_t depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > max_depth) {
          max_depth = depth;
          if (max_depth > limit) return max_depth;
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return max_depth;
}

Result<Request> parse_request(std::string_view line) {
  if (line.size() > kMaxLine) return make_error("request too long ({} bytes, max {})", line.size(), kMaxLine);
  if (json_nesting_depth(line) > kMaxJsonDepth)
    return make_error("request nested too deep (more than {} levels of [ and {{)", kMaxJsonDepth);
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error("request is not valid JSON");
  if (!j.is_object()) return make_error("request must be a JSON object");
  Request r;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "op" && it.key() != "args")
      return make_error("request: unknown key '{}' (known: op, args)", it.key());
  }
  auto op = j.find("op");
  if (op == j.end() || !op->is_string() || op->get_ref<const std::string&>().empty())
    return make_error("request: 'op' must be a non-empty string");
  r.op = op->get<std::string>();
  auto args = j.find("args");
  if (args != j.end() && !args->is_null()) {
    if (!args->is_object()) return make_error("request {}: 'args' must be an object", r.op);
    r.args = *args;
  }
  return r;
}

std::string encode_request(const Request& r) {
  return nlohmann::json{{"op", r.op}, {"args", r.args}}.dump() + "\n";
}

std::string encode_ok(const nlohmann::json& result) {
  // error_handler::replace: a non-UTF-8 byte in, say, a kernel-provided name
  // must not turn a good answer into an exception.
  return nlohmann::json{{"ok", true}, {"result", result}}.dump(-1, ' ', false,
                                                             nlohmann::json::error_handler_t::replace) +
         "\n";
}

std::string encode_error(const std::string& message) {
  return nlohmann::json{{"ok", false}, {"error", message}}.dump(-1, ' ', false,
                                                               nlohmann::json::error_handler_t::replace) +
         "\n";
}

Result<nlohmann::json> parse_response(std::string_view line) {
  // Responses echo module sections (config depth <= 64) inside a few levels.
  constexpr size_t kMaxResponseDepth = 4 * kMaxJsonDepth;
  if (json_nesting_depth(line, kMaxResponseDepth) > kMaxResponseDepth)
    return make_error("malformed response from agent (nested more than {} levels)", kMaxResponseDepth);
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error("malformed response from agent");
  auto okv = j.find("ok");
  if (okv == j.end() || !okv->is_boolean()) return make_error("malformed response from agent (no 'ok')");
  if (okv->get<bool>()) {
    auto res = j.find("result");
    return res == j.end() ? nlohmann::json(nullptr) : *res;
  }
  auto err = j.find("error");
  if (err == j.end() || !err->is_string()) return make_error("agent reported an error without a message");
  return Error{err->get<std::string>(), 0};
}

Result<std::string> arg_string(const Request& r, const char* key, bool required) {
  auto it = r.args.find(key);
  if (it == r.args.end() || it->is_null()) {
    if (required) return make_error("{}: missing argument '{}'", r.op, key);
    return std::string();
  }
  if (!it->is_string()) return make_error("{}: argument '{}' must be a string", r.op, key);
  return it->get<std::string>();
}

Result<std::vector<std::string>> arg_string_list(const Request& r, const char* key) {
  std::vector<std::string> out;
  auto it = r.args.find(key);
  if (it == r.args.end() || it->is_null()) return out;
  if (!it->is_array()) return make_error("{}: argument '{}' must be a list of strings", r.op, key);
  for (const auto& v : *it) {
    if (!v.is_string()) return make_error("{}: argument '{}' must be a list of strings", r.op, key);
    out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace kagami::agent
