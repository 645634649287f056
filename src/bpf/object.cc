#include "bpf/object.h"

#include "common/fs.h"
#include "bpf/kernel.h"

#include <elf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace kagami::bpf {
namespace {

// Verifier logs for large programs reach megabytes; 4 MiB holds the tail we
// need (the kernel keeps the latest output when the buffer fills, 6.4+).
constexpr size_t kLogSize = 4u << 20;

std::string tail_lines(const std::string& log, int n) {
  std::vector<std::string> lines;
  std::istringstream in(log);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) lines.push_back(l);
  const size_t start = lines.size() > static_cast<size_t>(n) ? lines.size() - n : 0;
  std::string out;
  for (size_t i = start; i < lines.size(); i++) out += "\n  " + lines[i];
  return out;
}

template <typename T>
bool read_at(std::span<const uint8_t> b, size_t off, T* out) {
  if (off > b.size() || b.size() - off < sizeof(T)) return false;
  std::memcpy(out, b.data() + off, sizeof(T));
  return true;
}

}  // namespace

Result<std::vector<uint8_t>> read_file(const std::string& path) {
  auto s = fs::read_regular_file(path, "object");
  if (!s) return s.error();
  return std::vector<uint8_t>(s->begin(), s->end());
}

Result<void> check_elf(std::span<const uint8_t> b, const std::string& what) {
  Elf64_Ehdr eh;
  if (!read_at(b, 0, &eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
    return make_error("{}: not an ELF file (bad magic)", what);
  if (eh.e_ident[EI_CLASS] != ELFCLASS64) return make_error("{}: not a 64-bit ELF object", what);
  // BPF objects are little-endian on x86/arm64 hosts; we only read fields in
  // host order, so a foreign-endian object is refused here rather than misread.
  const bool host_le = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
  if ((eh.e_ident[EI_DATA] == ELFDATA2LSB) != host_le)
    return make_error("{}: ELF byte order does not match this host", what);
  if (eh.e_machine != EM_BPF)
    return make_error("{}: ELF machine is {} not BPF ({}): compile with clang -target bpf", what,
                      eh.e_machine, EM_BPF);
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shstrndx >= eh.e_shnum)
    return make_error("{}: malformed ELF section table", what);
  Elf64_Shdr strtab;
  if (!read_at(b, eh.e_shoff + size_t{eh.e_shstrndx} * sizeof(Elf64_Shdr), &strtab) ||
      strtab.sh_offset > b.size() || b.size() - strtab.sh_offset < strtab.sh_size)
    return make_error("{}: malformed ELF section table", what);
  for (size_t i = 0; i < eh.e_shnum; i++) {
    Elf64_Shdr sh;
    if (!read_at(b, eh.e_shoff + i * sizeof(Elf64_Shdr), &sh))
      return make_error("{}: truncated ELF section table", what);
    if (sh.sh_name >= strtab.sh_size) continue;
    const char* name = reinterpret_cast<const char*>(b.data() + strtab.sh_offset + sh.sh_name);
    const size_t maxlen = strtab.sh_size - sh.sh_name;
    if (strnlen(name, maxlen) == 7 && std::strncmp(name, "license", 7) == 0) return ok();
  }
  return make_error(
      "{}: no \"license\" section (add: char LICENSE[] SEC(\"license\") = \"Dual BSD/GPL\";)", what);
}

Result<Object> Object::open(std::vector<uint8_t> bytes, const std::string& label) {
  KAGAMI_TRY(check_elf(bytes, label));
  Object o;
  o.label_ = label;
  o.bytes_ = std::move(bytes);
  // libbpf derives internal map names (<obj>.rodata) from the object name;
  // keep it short and neutral so map names are stable across versions.
  LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "kagami");
  o.obj_ = bpf_object__open_mem(o.bytes_.data(), o.bytes_.size(), &opts);
  if (!o.obj_) {
    int err = errno;
    o.obj_ = nullptr;
    return errno_error(err, "{}: libbpf cannot parse the object", label);
  }
  return o;
}

Object::Object(Object&& o) noexcept
    : obj_(std::exchange(o.obj_, nullptr)),
      label_(std::move(o.label_)),
      bytes_(std::move(o.bytes_)),
      log_(std::move(o.log_)) {}

Object& Object::operator=(Object&& o) noexcept {
  if (this != &o) {
    if (obj_) bpf_object__close(obj_);
    obj_ = std::exchange(o.obj_, nullptr);
    label_ = std::move(o.label_);
    bytes_ = std::move(o.bytes_);
    log_ = std::move(o.log_);
  }
  return *this;
}

Object::~Object() {
  if (obj_) bpf_object__close(obj_);
}

std::vector<ProgDesc> Object::programs() const {
  std::vector<ProgDesc> out;
  bpf_program* p;
  bpf_object__for_each_program(p, obj_) {
    ProgDesc d;
    d.name = bpf_program__name(p);
    d.section = bpf_program__section_name(p);
    d.prog_type = bpf_program__type(p);
    d.type = prog_type_name(bpf_program__type(p));
    d.expected_attach_type = bpf_program__expected_attach_type(p);
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<MapDesc> Object::maps() const {
  std::vector<MapDesc> out;
  bpf_map* m;
  bpf_object__for_each_map(m, obj_) {
    MapDesc d;
    d.name = bpf_map__name(m);
    d.map_type = bpf_map__type(m);
    d.type = map_type_name(bpf_map__type(m));
    d.key_size = bpf_map__key_size(m);
    d.value_size = bpf_map__value_size(m);
    d.max_entries = bpf_map__max_entries(m);
    d.flags = bpf_map__map_flags(m);
    d.internal = bpf_map__is_internal(m);
    out.push_back(std::move(d));
  }
  return out;
}

Result<void> Object::reuse_map(const std::string& map, int fd) {
  bpf_map* m = bpf_object__find_map_by_name(obj_, map.c_str());
  if (!m) return make_error("{}: no map {}", label_, map);
  int err = bpf_map__reuse_fd(m, fd);
  if (err) return errno_error(err, "{}: reusing map {}", label_, map);
  return ok();
}

Result<void> Object::set_map_initial_value(const std::string& map, const void* data, size_t size) {
  bpf_map* m = bpf_object__find_map_by_name(obj_, map.c_str());
  if (!m) return make_error("{}: no map {}", label_, map);
  int err = bpf_map__set_initial_value(m, data, size);
  if (err) return errno_error(err, "{}: setting initial value of {}", label_, map);
  return ok();
}

Result<void> Object::set_expected_attach_type(const std::string& prog, uint32_t attach_type) {
  bpf_program* p = program(prog);
  if (!p) return make_error("{}: no program {}", label_, prog);
  int err = bpf_program__set_expected_attach_type(p, static_cast<bpf_attach_type>(attach_type));
  if (err) return errno_error(err, "{}: setting attach type of {}", label_, prog);
  return ok();
}

Result<void> Object::set_attach_target(const std::string& prog, const std::string& func) {
  bpf_program* p = program(prog);
  if (!p) return make_error("{}: no program {}", label_, prog);
  int err = bpf_program__set_attach_target(p, 0, func.c_str());
  if (err) return errno_error(err, "{}: setting attach target {} of {}", label_, func, prog);
  return ok();
}

Result<void> Object::load(int log_lines) {
  // One buffer handed to every program: programs load one after another and
  // loading stops at the first rejection, so the buffer then holds exactly
  // the failing program's log. With log_level 0 libbpf asks the kernel for a
  // log only when a load fails (it retries at level 1), so a successful load
  // pays nothing for this.
  log_ = std::make_unique<std::string>(kLogSize, '\0');
  bpf_program* p;
  bpf_object__for_each_program(p, obj_) bpf_program__set_log_buf(p, log_->data(), log_->size());
  int err = bpf_object__load(obj_);
  if (!err) return ok();
  // Maps are created before any program loads: a map without an fd is
  // the one that failed (the programs never reached the verifier).
  bpf_map* m;
  bpf_object__for_each_map(m, obj_) {
    if (!bpf_map__autocreate(m) || bpf_map__fd(m) >= 0) continue;
    const uint64_t bytes = static_cast<uint64_t>(bpf_map__max_entries(m)) *
                           (static_cast<uint64_t>(bpf_map__key_size(m)) + bpf_map__value_size(m));
    std::string why;
    if (-err == E2BIG || -err == ENOMEM)
      why = fmt::format(" (max_entries {} x (key {} + value {}) = {} bytes is more than the kernel will "
                        "allocate for one map; lower max_entries)",
                        bpf_map__max_entries(m), bpf_map__key_size(m), bpf_map__value_size(m), bytes);
    return errno_error(err, "{}: creating map {} ({}) failed{}", label_, bpf_map__name(m),
                       map_type_name(bpf_map__type(m)), why);
  }
  std::string failing;
  bpf_object__for_each_program(p, obj_) {
    if (bpf_program__autoload(p) && bpf_program__fd(p) < 0) {
      failing = bpf_program__name(p);
      break;
    }
  }
  std::string log(log_->c_str());
  if (-err == EPERM)
    return errno_error(err, "{}: loading program {}: needs root or CAP_BPF+CAP_NET_ADMIN", label_,
                       failing);
  if (log.empty())
    return errno_error(err, "{}: loading {}{} failed", label_, failing.empty() ? "maps" : "program ",
                       failing);
  return Error{fmt::format("{}: verifier rejected program {} ({}); last lines of the verifier log:{}",
                           label_, failing, std::strerror(-err), tail_lines(log, log_lines)),
               -err};
}

bpf_program* Object::program(const std::string& prog) const {
  return bpf_object__find_program_by_name(obj_, prog.c_str());
}

Result<int> Object::prog_fd(const std::string& prog) const {
  bpf_program* p = program(prog);
  if (!p) return make_error("{} has no program named {}", label_, prog);
  const int fd = bpf_program__fd(p);
  if (fd < 0) return make_error("{}: program {} is not loaded", label_, prog);
  return fd;
}

Result<int> Object::map_fd(const std::string& map) const {
  bpf_map* m = bpf_object__find_map_by_name(obj_, map.c_str());
  if (!m) return make_error("{} has no map named {}", label_, map);
  const int fd = bpf_map__fd(m);
  if (fd < 0) return make_error("{}: map {} is not created", label_, map);
  return fd;
}

}  // namespace kagami::bpf
