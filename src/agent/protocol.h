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
