#include "agent/control_socket.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include <spdlog/spdlog.h>

namespace kagami::agent {
namespace {

Result<sockaddr_un> make_addr(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return make_error("socket path '{}' is empty or longer than {} bytes", path, sizeof(addr.sun_path) - 1);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

bool write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads one '\n'-terminated line into `line`, keeping any extra bytes in buf.
// Returns false on EOF/timeout/error or when the line exceeds kMaxLine.
bool read_line(int fd, std::string& buf, std::string& line, bool& too_long) {
  too_long = false;
  for (;;) {
    auto nl = buf.find('\n');
    if (nl != std::string::npos) {
      line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      return true;
    }
    if (buf.size() > kMaxLine) {
      too_long = true;
      return false;
    }
    char tmp[16384];
    ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
  }
}

void set_timeout(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

}  // namespace

ControlServer::ControlServer(std::string path, RequestHandler handler, uid_t allowed_uid)
    : path_(std::move(path)), handler_(std::move(handler)), allowed_uid_(allowed_uid) {}

ControlServer::~ControlServer() { stop(); }

Result<void> ControlServer::start() {
  namespace fs = std::filesystem;
  auto addr = make_addr(path_);
  if (!addr) return addr.error();
  const fs::path dir = fs::path(path_).parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) return make_error("creating socket directory {}: {}", dir.string(), ec.message());
    if (::chmod(dir.c_str(), 0700) != 0) return errno_error(errno, "chmod 0700 {}", dir.string());
  }
  // A socket file already there: live agent (refuse) or leftover of a killed one (replace).
  struct stat st{};
  if (::lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return make_error("{} exists and is not a socket; refusing to replace it", path_);
    Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe.valid() &&
        ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) == 0)
      return make_error("another agent is already listening on {}", path_);
    ::unlink(path_.c_str());
  }
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return errno_error(errno, "socket(AF_UNIX)");
  // Create the file with no permissions at all, then open it up to 0600: there
  // is no window in which another user could connect.
  const mode_t old = ::umask(0177);
  const int brc = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr));
  const int bind_errno = errno;
  ::umask(old);
  if (brc != 0) return errno_error(bind_errno, "bind {}", path_);
  if (::chmod(path_.c_str(), 0600) != 0) return errno_error(errno, "chmod 0600 {}", path_);
  if (::chown(path_.c_str(), 0, 0) != 0 && geteuid() == 0) return errno_error(errno, "chown root {}", path_);
  if (::listen(fd.get(), 16) != 0) return errno_error(errno, "listen {}", path_);
  wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_.valid()) return errno_error(errno, "eventfd");
  listen_fd_ = std::move(fd);
  stopping_ = false;
  thread_ = std::thread([this] { serve(); });
  return ok();
}

void ControlServer::stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof(one));
  thread_.join();
  listen_fd_.reset();
  ::unlink(path_.c_str());
}

void ControlServer::serve() {
  while (!stopping_) {
    pollfd pfd[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    int n = ::poll(pfd, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("control socket: poll: {}", std::strerror(errno));
      return;
    }
    if (pfd[1].revents) return;
    if (!(pfd[0].revents & POLLIN)) continue;
    Fd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) continue;
    serve_connection(conn.get());
  }
}

void ControlServer::serve_connection(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    write_all(fd, encode_error("cannot identify the peer (SO_PEERCRED failed)"));
    return;
  }
  if (cred.uid != allowed_uid_) {
    spdlog::warn("control socket: refused pid {} uid {}", cred.pid, cred.uid);
    write_all(fd, encode_error(fmt::format(
                      "permission denied: the control socket accepts uid {} only (you are uid {})",
                      allowed_uid_, cred.uid)));
    return;
  }
  // A client that connects and says nothing must not block the agent forever.
  set_timeout(fd, 30000);
  std::string buf, line;
  bool too_long = false;
  while (!stopping_ && read_line(fd, buf, line, too_long)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::string resp;
    auto req = parse_request(line);
    if (!req) {
      resp = encode_error(req.error().message);
    } else {
      Result<nlohmann::json> r = [&]() -> Result<nlohmann::json> {
        try {
          return handler_(*req);
        } catch (const std::exception& e) {
          return make_error("{}: internal error: {}", req->op, e.what());
        }
      }();
      resp = r ? encode_ok(*r) : encode_error(r.error().message);
    }
    if (!write_all(fd, resp)) return;
  }
  if (too_long) write_all(fd, encode_error(fmt::format("request line longer than {} bytes", kMaxLine)));
}

Result<nlohmann::json> call_agent(const std::string& socket_path, const std::string& op,
                                  const nlohmann::json& args, int timeout_ms) {
  auto addr = make_addr(socket_path);
  if (!addr) return addr.error();
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return errno_error(errno, "socket(AF_UNIX)");
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    const int e = errno;
    if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR)
      return Error{fmt::format("agent not running (no socket at {})", socket_path), e};
    if (e == EACCES || e == EPERM)
      return Error{fmt::format("permission denied on {} (the control socket is root-only)", socket_path), e};
    return errno_error(e, "connecting to the agent at {}", socket_path);
  }
  set_timeout(fd.get(), timeout_ms);
  std::string buf, line;
  bool too_long = false;
  if (!write_all(fd.get(), encode_request(Request{op, args}))) {
    const int e = errno;
    // The agent may have answered and closed before reading anything (a
    // refused uid): its error line is the better message.
    if (read_line(fd.get(), buf, line, too_long)) return parse_response(line);
    return errno_error(e, "sending to the agent at {}", socket_path);
  }
  if (!read_line(fd.get(), buf, line, too_long)) {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return make_error("no answer from the agent at {} within {} ms", socket_path, timeout_ms);
    return make_error("the agent at {} closed the connection without answering", socket_path);
  }
  return parse_response(line);
}

}  // namespace kagami::agent
