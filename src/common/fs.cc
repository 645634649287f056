#include "common/fs.h"

#include "common/file.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstring>
#include <string_view>

namespace kagami::fs {
namespace {

// kernfs' file handle type for cgroup directories (FILEID_KERNFS in
// include/linux/exportfs.h): the handle is the 64-bit node id, i.e. exactly
// the cgroup id BPF reports.
constexpr int kFileIdKernfs = 0xfe;

}  // namespace

bool is_cgroup2(const std::string& path) {
  struct statfs sf{};
  return ::statfs(path.c_str(), &sf) == 0 && static_cast<unsigned long>(sf.f_type) == CGROUP2_SUPER_MAGIC;
}

Result<Fd> open_cgroup_by_id(int root_fd, uint64_t cgroup_id) {
  struct {
    struct file_handle fh;
    uint64_t id;
  } h{};
  h.fh.handle_bytes = sizeof(uint64_t);
  h.fh.handle_type = kFileIdKernfs;
  std::memcpy(h.fh.f_handle, &cgroup_id, sizeof(cgroup_id));
  Fd dir(::open_by_handle_at(root_fd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return errno_error(errno, "cgroup id {}", cgroup_id);
  return dir;
}

int cgroup_alive(int root_fd, uint64_t cgroup_id) {
  auto dir = open_cgroup_by_id(root_fd, cgroup_id);
  if (dir) return 1;
  return dir.error().code == ESTALE || dir.error().code == ENOENT ? 0 : -1;
}

Result<void> check_regular_file(const std::string& path, const char* what) {
  auto fd = open_regular_file(path, what);
  if (!fd) return fd.error();
  return ok();
}

Result<std::string> read_regular_file(const std::string& path, const char* what) {
  // BPF objects and the agent's own records: far below this bound, which
  // only keeps a hostile path (a huge sparse file) from exhausting memory.
  constexpr size_t kMaxBytes = size_t{256} << 20;
  return kagami::read_regular_file(path, kMaxBytes, what);
}

Result<std::string> cgroup_v2_path_of_pid(int pid) {
  const std::string proc = "/proc/" + (pid == 0 ? std::string("self") : std::to_string(pid)) + "/cgroup";
  auto text = read_regular_file(proc, "cgroup list");
  if (!text) return text.error();
  size_t pos = 0;
  while (pos < text->size()) {
    size_t end = text->find('\n', pos);
    if (end == std::string::npos) end = text->size();
    std::string_view line(text->data() + pos, end - pos);
    if (line.substr(0, 3) == "0::") return std::string(line.substr(3));
    pos = end + 1;
  }
  return make_error("{}: no cgroup v2 (\"0::\") line", proc);
}

Result<uint64_t> cgroup_v2_id_of_pid(int pid, const std::string& v2_root) {
  auto rel = cgroup_v2_path_of_pid(pid);
  if (!rel) return rel.error();
  const std::string dir = v2_root + *rel;
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    return make_error("/proc/{}/cgroup: {}: {}", pid, dir, std::strerror(errno));
  return static_cast<uint64_t>(st.st_ino);
}

}  // namespace kagami::fs
