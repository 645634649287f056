#include "common/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace kagami {

const char* file_type_name(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "regular file";
    case S_IFDIR: return "directory";
    case S_IFIFO: return "FIFO";
    case S_IFCHR: return "character device";
    case S_IFBLK: return "block device";
    case S_IFSOCK: return "socket";
    case S_IFLNK: return "symbolic link";
    default: return "unknown file type";
  }
}

Result<Fd> open_regular_file(const std::string& path, const std::string& what) {
  const std::string ctx = what.empty() ? path : what + " " + path;
  if (path.empty()) return make_error("{}: empty path", what.empty() ? "file" : what);
  Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) {
    const int err = errno;
    if (err == ELOOP) return errno_error(err, "{}: cannot open (symbolic link loop)", ctx);
    return errno_error(err, "{}", ctx);
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return errno_error(errno, "{}: fstat", ctx);
  if (!S_ISREG(st.st_mode))
    return Error{fmt::format("{} is a {}, not a regular file", ctx, file_type_name(st.st_mode)),
                 S_ISDIR(st.st_mode) ? EISDIR : EINVAL};
  // Regular files never block; clear O_NONBLOCK so callers see ordinary reads.
  const int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl >= 0) (void)::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK);
  return fd;
}

Result<std::string> read_regular_file(const std::string& path, size_t max_bytes, const std::string& what) {
  const std::string ctx = what.empty() ? path : what + " " + path;
  auto fd = open_regular_file(path, what);
  if (!fd) return fd.error();
  struct stat st{};
  if (::fstat(fd->get(), &st) != 0) return errno_error(errno, "{}: fstat", ctx);
  if (st.st_size < 0 || static_cast<unsigned long long>(st.st_size) > max_bytes)
    return make_error("{}: too large ({} bytes, max {})", ctx, static_cast<long long>(st.st_size), max_bytes);
  // The size may change under us: read at most max_bytes + 1 and judge by what came.
  std::string out;
  out.resize(static_cast<size_t>(st.st_size) + 1 > max_bytes + 1 ? max_bytes + 1
                                                                  : static_cast<size_t>(st.st_size) + 1);
  size_t got = 0;
  for (;;) {
    if (got == out.size()) {
      if (out.size() > max_bytes) break;
      out.resize(std::min(max_bytes + 1, out.size() * 2 + 4096));
    }
    const ssize_t n = ::read(fd->get(), out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(errno, "{}: read", ctx);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > max_bytes) return make_error("{}: too large (more than {} bytes)", ctx, max_bytes);
  out.resize(got);
  return out;
}

}  // namespace kagami
