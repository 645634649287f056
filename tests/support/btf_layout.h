// BTF layout checks: the size and member offsets of a struct as a compiled
// BPF object's BTF records them, so a GTest can compare them with sizeof /
// offsetof on the C++ side (the shared ABI headers, docs/abi.md). Works on
// any .bpf.o; needs no privileges.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace kagami::test {

struct BtfMember {
  std::string name;
  uint32_t offset = 0;  // bytes
  uint32_t size = 0;    // bytes (resolved through typedefs/arrays)
};

struct BtfStruct {
  std::string name;
  uint32_t size = 0;
  std::vector<BtfMember> members;
};

// The layout of `struct <name>` in the object's BTF; an Error if the object
// has no BTF or no such struct (a type only reaches the BTF when the object
// uses it, e.g. as a map key or value).
Result<BtfStruct> btf_struct_layout(const std::string& bpf_object, const std::string& name);

// Compares a BTF layout with the C++ view: `expected` lists every member
// (name, offsetof, sizeof) in declaration order. Returns "" when equal, else
// a message naming each difference.
std::string compare_layout(const BtfStruct& btf, size_t cxx_size,
                           const std::vector<BtfMember>& expected);

}  // namespace kagami::test

// Builds one expected member from a C++ struct: BTF_MEMBER(obs_teid_key, teid).
#define KAGAMI_BTF_MEMBER(type, member)                                          \
  ::kagami::test::BtfMember {                                                    \
    #member, static_cast<uint32_t>(offsetof(type, member)),                      \
        static_cast<uint32_t>(sizeof(((type*)nullptr)->member))                  \
  }
