// The one definition of program names and object digests, shared by the
// manager, the agent, the config and the CLI (and the modules).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"

namespace kagami::names {

// A program name: 1-32 of [a-z0-9_-], not starting with '_' (a leading '_'
// is reserved for the manager's own pins, e.g. _xdp_chain).
bool valid_program_name(std::string_view name);
// The same check as an error that says what is allowed.
Result<void> check_program_name(std::string_view name);
inline constexpr const char* kProgramNameRule = "1-32 of [a-z0-9_-], not starting with '_'";

// Lower-case hex of bytes.
std::string to_hex(std::span<const uint8_t> bytes);
// Lower-case hex SHA-256 of bytes (OpenSSL EVP).
std::string sha256_hex(std::span<const uint8_t> bytes);

}  // namespace kagami::names
