#include "common/names.h"

#include <openssl/evp.h>

#include <algorithm>

namespace kagami::names {

bool valid_program_name(std::string_view name) {
  return !name.empty() && name.size() <= 32 && name[0] != '_' &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
         });
}

Result<void> check_program_name(std::string_view name) {
  if (valid_program_name(name)) return ok();
  return make_error("invalid name '{}': use {}", name, kProgramNameRule);
}

std::string to_hex(std::span<const uint8_t> bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::string sha256_hex(std::span<const uint8_t> bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  return to_hex(std::span<const uint8_t>(md, len));
}

}  // namespace kagami::names
