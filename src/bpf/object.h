// bpf::Object: an RAII owner of one libbpf bpf_object, opened from a file or
// from bytes, checked before libbpf sees it, and loaded with the verifier's
// log captured so a rejection reads as an error an operator can act on.
//
// Life cycle: open() -> (adjust: reuse maps, set slots, expected attach
// types) -> load() -> use prog_fd()/map_fd(). Not thread-safe; the program
// manager serialises every use under its own mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

struct bpf_object;
struct bpf_program;

namespace kagami::bpf {

// Checks that bytes are an ELF relocatable BPF object with a "license"
// section. `what` names the object in the error ("count.bpf.o: not an ELF file").
Result<void> check_elf(std::span<const uint8_t> bytes, const std::string& what);

// Reads a whole regular file (for digests and open-from-path); a directory,
// device, FIFO or symlink loop is refused by name, and a FIFO never blocks.
Result<std::vector<uint8_t>> read_file(const std::string& path);

struct ProgDesc {
  std::string name;
  std::string section;
  uint32_t prog_type = 0;            // enum bpf_prog_type
  std::string type;                  // "xdp", "sched_cls", ...
  uint32_t expected_attach_type = 0; // enum bpf_attach_type
};

struct MapDesc {
  std::string name;
  uint32_t map_type = 0;  // enum bpf_map_type
  std::string type;       // "hash", "prog_array", ...
  uint32_t key_size = 0, value_size = 0, max_entries = 0, flags = 0;
  bool internal = false;  // .rodata/.data/.bss/.kconfig: never carried over
};

class Object {
 public:
  // `label` names the object in every message.
  static Result<Object> open(std::vector<uint8_t> bytes, const std::string& label);

  Object(Object&&) noexcept;
  Object& operator=(Object&&) noexcept;
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;
  ~Object();

  const std::string& label() const { return label_; }
  std::vector<ProgDesc> programs() const;
  std::vector<MapDesc> maps() const;

  // Before load.
  Result<void> reuse_map(const std::string& map, int fd);
  Result<void> set_map_initial_value(const std::string& map, const void* data, size_t size);
  Result<void> set_expected_attach_type(const std::string& prog, uint32_t attach_type);
  Result<void> set_attach_target(const std::string& prog, const std::string& func);

  // Verifies and loads every program. On rejection the error carries the
  // last `log_lines` lines of the verifier log of the failing program.
  Result<void> load(int log_lines = 20);

  // After load: fds owned by the object (dup them to keep them longer).
  // An error names the program/map that is missing or not loaded.
  Result<int> prog_fd(const std::string& prog) const;
  Result<int> map_fd(const std::string& map) const;
  bpf_program* program(const std::string& prog) const;

 private:
  Object() = default;
  struct bpf_object* obj_ = nullptr;
  std::string label_;
  std::vector<uint8_t> bytes_;
  std::unique_ptr<std::string> log_;  // stable address handed to libbpf
};

}  // namespace kagami::bpf
