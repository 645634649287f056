#include "support/btf_layout.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <fmt/format.h>

namespace kagami::test {

Result<BtfStruct> btf_struct_layout(const std::string& bpf_object, const std::string& name) {
  struct btf* btf = btf__parse_elf(bpf_object.c_str(), nullptr);
  if (!btf) return errno_error(errno, "{}: read BTF", bpf_object);
  BtfStruct out;
  out.name = name;
  int id = btf__find_by_name_kind(btf, name.c_str(), BTF_KIND_STRUCT);
  if (id < 0) {
    btf__free(btf);
    return make_error("{}: no struct {} in BTF", bpf_object, name);
  }
  const struct btf_type* t = btf__type_by_id(btf, id);
  out.size = t->size;
  const struct btf_member* m = btf_members(t);
  for (int i = 0; i < btf_vlen(t); i++, m++) {
    BtfMember bm;
    bm.name = btf__name_by_offset(btf, m->name_off);
    bm.offset = btf_member_bit_offset(t, i) / 8;
    long sz = btf__resolve_size(btf, m->type);
    bm.size = sz > 0 ? static_cast<uint32_t>(sz) : 0;
    out.members.push_back(bm);
  }
  btf__free(btf);
  return out;
}

std::string compare_layout(const BtfStruct& btf, size_t cxx_size,
                           const std::vector<BtfMember>& expected) {
  std::string err;
  if (btf.size != cxx_size)
    err += fmt::format("struct {}: BTF size {} != C++ sizeof {}\n", btf.name, btf.size, cxx_size);
  if (btf.members.size() != expected.size())
    err += fmt::format("struct {}: BTF has {} members, C++ list has {}\n", btf.name,
                       btf.members.size(), expected.size());
  for (size_t i = 0; i < std::min(btf.members.size(), expected.size()); i++) {
    const auto& b = btf.members[i];
    const auto& e = expected[i];
    if (b.name != e.name || b.offset != e.offset || b.size != e.size)
      err += fmt::format("struct {} member {}: BTF {}@{}+{}, C++ {}@{}+{}\n", btf.name, i, b.name,
                         b.offset, b.size, e.name, e.offset, e.size);
  }
  return err;
}

}  // namespace kagami::test
