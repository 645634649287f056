#include "common/fs.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstring>

namespace kagami::fs {
namespace {

// kernfs' file handle type for cgroup directories (FILEID_KERNFS in
// include/linux/exportfs.h): the handle is the 64-bit node id, i.e. exactly
// the cgroup id BPF reports.
constexpr int kFileIdKernfs = 0xfe;

const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

Result<Fd> open_checked(const std::string& path, const char* what) {
  // O_NONBLOCK: opening a FIFO for reading would wait for a writer.
  Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) {
    const int err = errno;
    if (err == ELOOP) return errno_error(err, "{} {}: cannot open (symbolic link loop)", what, path);
    return errno_error(err, "{} {}: cannot open", what, path);
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return errno_error(errno, "{} {}: stat", what, path);
  if (!S_ISREG(st.st_mode))
    return Error{fmt::format("{} {} is {}, not a regular file", what, path, file_kind(st.st_mode)),
                 S_ISDIR(st.st_mode) ? EISDIR : EINVAL};
  return fd;
}

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

Result<void> check_regular_file(const std::string& path, const char* what) {
  auto fd = open_checked(path, what);
  if (!fd) return fd.error();
  return ok();
}

Result<std::string> read_regular_file(const std::string& path, const char* what) {
  auto fd = open_checked(path, what);
  if (!fd) return fd.error();
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd->get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(errno, "{} {}: read", what, path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace kagami::fs
