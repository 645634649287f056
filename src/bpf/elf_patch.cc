#include "bpf/elf_patch.h"

#include <elf.h>
#include <linux/btf.h>

#include <cstring>
#include <string>

namespace kagami::bpf {
namespace {

template <typename T>
bool read_at(const std::vector<uint8_t>& b, uint64_t off, T& out) {
  if (off > b.size() || b.size() - off < sizeof(T)) return false;
  std::memcpy(&out, b.data() + off, sizeof(T));
  return true;
}

// Byte offset (in the ELF) of the nelems field of the array that encodes
// `max_entries` of `map`.
Result<uint64_t> find_max_entries(const std::vector<uint8_t>& elf, std::string_view map) {
  Elf64_Ehdr eh;
  if (!read_at(elf, 0, eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
    return make_error("not a little-endian ELF64 object");
  Elf64_Shdr strtab;
  if (eh.e_shentsize != sizeof(Elf64_Shdr) ||
      !read_at(elf, eh.e_shoff + uint64_t(eh.e_shstrndx) * sizeof(Elf64_Shdr), strtab))
    return make_error("ELF section headers are unreadable");
  uint64_t btf_off = 0, btf_size = 0;
  for (uint16_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh;
    if (!read_at(elf, eh.e_shoff + uint64_t(i) * sizeof(Elf64_Shdr), sh)) return make_error("ELF section {} is unreadable", i);
    const uint64_t name_off = strtab.sh_offset + sh.sh_name;
    if (name_off >= elf.size()) continue;
    const char* name = reinterpret_cast<const char*>(elf.data() + name_off);
    if (strnlen(name, elf.size() - name_off) == 4 && std::strcmp(name, ".BTF") == 0) {
      btf_off = sh.sh_offset;
      btf_size = sh.sh_size;
    }
  }
  if (btf_size == 0 || btf_off + btf_size > elf.size()) return make_error("the object has no .BTF section");
  btf_header h;
  if (!read_at(elf, btf_off, h) || h.magic != BTF_MAGIC) return make_error(".BTF has no BTF header");
  const uint64_t types = btf_off + h.hdr_len + h.type_off, types_end = types + h.type_len;
  const uint64_t strs = btf_off + h.hdr_len + h.str_off, strs_end = strs + h.str_len;
  if (types_end > btf_off + btf_size || strs_end > btf_off + btf_size) return make_error(".BTF is truncated");
  auto str = [&](uint32_t off) -> std::string_view {
    if (strs + off >= strs_end) return {};
    const char* s = reinterpret_cast<const char*>(elf.data() + strs + off);
    return std::string_view(s, strnlen(s, strs_end - strs - off));
  };

  // Offsets of every type record by id (id 0 is void).
  std::vector<uint64_t> at = {0};
  for (uint64_t off = types; off < types_end;) {
    btf_type t;
    if (!read_at(elf, off, t)) return make_error(".BTF type {} is truncated", at.size());
    at.push_back(off);
    const uint32_t vlen = BTF_INFO_VLEN(t.info);
    uint64_t extra = 0;
    switch (BTF_INFO_KIND(t.info)) {
      case BTF_KIND_INT: extra = 4; break;
      case BTF_KIND_ARRAY: extra = sizeof(btf_array); break;
      case BTF_KIND_STRUCT:
      case BTF_KIND_UNION: extra = uint64_t(vlen) * sizeof(btf_member); break;
      case BTF_KIND_ENUM: extra = uint64_t(vlen) * sizeof(btf_enum); break;
      case BTF_KIND_FUNC_PROTO: extra = uint64_t(vlen) * sizeof(btf_param); break;
      case BTF_KIND_VAR: extra = sizeof(btf_var); break;
      case BTF_KIND_DATASEC: extra = uint64_t(vlen) * sizeof(btf_var_secinfo); break;
      case BTF_KIND_DECL_TAG: extra = 4; break;
      case 19 /* BTF_KIND_ENUM64 */: extra = uint64_t(vlen) * 12; break;
      case BTF_KIND_PTR: case BTF_KIND_FWD: case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE:
      case BTF_KIND_CONST: case BTF_KIND_RESTRICT: case BTF_KIND_FUNC: case BTF_KIND_FLOAT:
      case 18 /* BTF_KIND_TYPE_TAG */: break;
      default: return make_error(".BTF type {} has unknown kind {}", at.size() - 1, BTF_INFO_KIND(t.info));
    }
    off += sizeof(btf_type) + extra;
  }
  auto type = [&](uint32_t id, btf_type& t) { return id < at.size() && id > 0 && read_at(elf, at[id], t); };

  for (size_t id = 1; id < at.size(); ++id) {
    btf_type v;
    read_at(elf, at[id], v);
    if (BTF_INFO_KIND(v.info) != BTF_KIND_VAR || str(v.name_off) != map) continue;
    btf_type s;
    if (!type(v.type, s) || BTF_INFO_KIND(s.info) != BTF_KIND_STRUCT)
      return make_error("map {}: not a BTF-defined map", map);
    for (uint32_t i = 0; i < BTF_INFO_VLEN(s.info); ++i) {
      btf_member m;
      read_at(elf, at[v.type] + sizeof(btf_type) + i * sizeof(btf_member), m);
      if (str(m.name_off) != "max_entries") continue;
      btf_type p, a;
      if (!type(m.type, p) || BTF_INFO_KIND(p.info) != BTF_KIND_PTR || !type(p.type, a) ||
          BTF_INFO_KIND(a.info) != BTF_KIND_ARRAY)
        return make_error("map {}: max_entries is not __uint()", map);
      return at[p.type] + sizeof(btf_type) + offsetof(btf_array, nelems);
    }
    return make_error("map {}: no max_entries in its definition", map);
  }
  return make_error("map {}: not in the object's BTF", map);
}

}  // namespace

Result<void> patch_map_max_entries(std::vector<uint8_t>& elf, std::string_view map, uint32_t n) {
  auto off = find_max_entries(elf, map);
  if (!off) return off.error();
  std::memcpy(elf.data() + *off, &n, sizeof(n));
  return ok();
}

Result<uint32_t> map_max_entries_in_elf(const std::vector<uint8_t>& elf, std::string_view map) {
  auto off = find_max_entries(elf, map);
  if (!off) return off.error();
  uint32_t n = 0;
  std::memcpy(&n, elf.data() + *off, sizeof(n));
  return n;
}

}  // namespace kagami::bpf
