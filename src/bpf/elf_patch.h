// Patching a BPF object's bytes before it is loaded: the size of a
// BTF-defined map. An embedded object (built-in modules) has its map sizes
// compiled in, and LoadRequest carries only bytes, so a module that lets the
// operator size a map (exec: ring_kb) rewrites the `max_entries` array bound
// in the object's .BTF section (libbpf reads the map definition from there).
// The result is a different object (a different sha256), so a changed size
// is a replace like any other object change.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace kagami::bpf {

// Sets max_entries of the BTF-defined map `map` (a variable in .maps whose
// definition has __uint(max_entries, N)) to n in a little-endian ELF64 BPF
// object. Errors name what is missing ("map exec_events: no max_entries").
Result<void> patch_map_max_entries(std::vector<uint8_t>& elf, std::string_view map, uint32_t n);

// The max_entries of `map` as compiled in (the same walk, read-only).
Result<uint32_t> map_max_entries_in_elf(const std::vector<uint8_t>& elf, std::string_view map);

}  // namespace kagami::bpf
