// The control-socket protocol (docs/agent.md): newline-delimited JSON.
//
//   request  {"op":"prog.load","args":{...}}\n
//   response {"ok":true,"result":...}\n  or  {"ok":false,"error":"..."}\n
//
// One request per line, one response line per request, in order; a client may
// send several requests on one connection. Lines are limited to kMaxLine bytes
// so a broken client cannot make the agent buffer without bound.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace kagami::agent {

inline constexpr size_t kMaxLine = 1 << 20;
// Nesting depth of a request (or response) line: every real request is 3-4
// levels deep. nlohmann::json parses, copies and destroys values
// recursively, so a 1 MiB line of '[' would overflow the stack; lines
// nested deeper than this are refused before any DOM is built.
inline constexpr size_t kMaxJsonDepth = 64;

// The maximum nesting depth of '[' / '{' in JSON text, ignoring brackets inside
// strings (escapes respected). Stops counting at limit + 1. Does not validate.
size_t json_nesting_depth(std::string_view text, size_t limit = kMaxJsonDepth);

struct Request {
  std::string op;
  nlohmann::json args = nlohmann::json::object();
};

// Parses one request line (without the trailing newline).
Result<Request> parse_request(std::string_view line);
std::string encode_request(const Request& r);

// Encodes a response line, newline included.
std::string encode_ok(const nlohmann::json& result);
std::string encode_error(const std::string& message);

// Client side: a response line -> its result, or the agent's error message.
Result<nlohmann::json> parse_response(std::string_view line);

// Typed access to args, with errors that name the op and the field.
Result<std::string> arg_string(const Request& r, const char* key, bool required = true);
Result<std::vector<std::string>> arg_string_list(const Request& r, const char* key);

}  // namespace kagami::agent
