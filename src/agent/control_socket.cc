#include "agent/control_socket.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
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

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 60000));
}

// Waits until fd is ready for `events` or the deadline passes (false, errno
// = EAGAIN). Never blocks longer than the deadline, however the peer trickles.
bool wait_ready(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const int ms = remaining_ms(deadline);
    if (ms == 0) {
      errno = EAGAIN;
      return false;
    }
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n > 0) return true;
  }
}

bool write_all(int fd, const std::string& s, Clock::time_point deadline) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!wait_ready(fd, POLLOUT, deadline)) return false;
        continue;
      }
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

bool write_all(int fd, const std::string& s) {
  return write_all(fd, s, Clock::now() + std::chrono::milliseconds(kRequestTimeoutMs));
}

enum class LineStatus { kOk, kClosed, kTimeout, kTooLong, kError };

// Reads one '\n'-terminated line into `line`, keeping any extra bytes in buf.
// The whole line must arrive before `deadline`; at most kMaxLine + 1 bytes
// are ever buffered.
LineStatus read_line(int fd, std::string& buf, std::string& line, Clock::time_point deadline) {
  size_t scanned = 0;
  for (;;) {
    auto nl = buf.find('\n', scanned);
    if (nl != std::string::npos) {
      if (nl > kMaxLine) return LineStatus::kTooLong;
      line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      return LineStatus::kOk;
    }
    scanned = buf.size();
    if (buf.size() > kMaxLine) return LineStatus::kTooLong;
    if (!wait_ready(fd, POLLIN, deadline)) return errno == EAGAIN ? LineStatus::kTimeout : LineStatus::kError;
    char tmp[16384];
    const size_t want = std::min(sizeof(tmp), kMaxLine + 1 - buf.size());
    ssize_t n = ::recv(fd, tmp, want, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n == 0) return LineStatus::kClosed;
    if (n < 0) return LineStatus::kError;
    buf.append(tmp, static_cast<size_t>(n));
  }
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
  reap_clients(/*all=*/true);
  listen_fd_.reset();
  ::unlink(path_.c_str());
}

void ControlServer::reap_clients(bool all) {
  std::list<std::unique_ptr<Client>> finished;
  {
    std::lock_guard lk(clients_mu_);
    for (auto it = clients_.begin(); it != clients_.end();) {
      if (all) ::shutdown((*it)->fd.get(), SHUT_RDWR);  // their reads and writes fail now
      if (all || (*it)->done) {
        finished.push_back(std::move(*it));
        it = clients_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished) c->thread.join();  // outside the lock: a client may be mid-request
}

void ControlServer::serve() {
  while (!stopping_) {
    pollfd pfd[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    // Wake now and then to join the threads of finished clients.
    int n = ::poll(pfd, 2, 1000);
    reap_clients(/*all=*/false);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("control socket: poll: {}", std::strerror(errno));
      return;
    }
    if (pfd[1].revents) return;
    if (!(pfd[0].revents & POLLIN)) continue;
    Fd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) continue;
    std::lock_guard lk(clients_mu_);
    if (clients_.size() >= static_cast<size_t>(kMaxClients)) {
      // Answer without blocking: a full socket buffer just loses the line.
      const std::string msg = encode_error(fmt::format(
          "the agent is serving {} clients already (the maximum); try again", kMaxClients));
      (void)!::send(conn.get(), msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      continue;
    }
    auto c = std::make_unique<Client>();
    c->fd = std::move(conn);
    Client* raw = c.get();
    c->thread = std::thread([this, raw] {
      serve_connection(raw->fd.get());
      // The peer sees EOF now; the fd itself is closed when the thread is joined.
      ::shutdown(raw->fd.get(), SHUT_RDWR);
      raw->done = true;
    });
    clients_.push_back(std::move(c));
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
  std::string buf, line;
  while (!stopping_) {
    // The whole line within kRequestTimeoutMs, however it trickles in; a
    // client that connects and says nothing is dropped after the same time.
    const auto deadline = Clock::now() + std::chrono::milliseconds(request_timeout_ms_);
    const LineStatus st = read_line(fd, buf, line, deadline);
    if (st == LineStatus::kTooLong) {
      write_all(fd, encode_error(fmt::format("request line longer than {} bytes", kMaxLine)));
      return;
    }
    if (st == LineStatus::kTimeout) {
      if (!buf.empty())
        write_all(fd, encode_error(fmt::format("request not complete within {} ms; closing",
                                               request_timeout_ms_)));
      return;
    }
    if (st != LineStatus::kOk) return;
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
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string buf, line;
  if (!write_all(fd.get(), encode_request(Request{op, args}), deadline)) {
    const int e = errno;
    // The agent may have answered and closed before reading anything (a
    // refused uid): its error line is the better message.
    if (read_line(fd.get(), buf, line, Clock::now() + std::chrono::milliseconds(1000)) == LineStatus::kOk)
      return parse_response(line);
    if (e == EAGAIN) return make_error("the agent at {} took no request within {} ms", socket_path, timeout_ms);
    return errno_error(e, "sending to the agent at {}", socket_path);
  }
  switch (read_line(fd.get(), buf, line, deadline)) {
    case LineStatus::kOk: break;
    case LineStatus::kTimeout:
      return make_error("no answer from the agent at {} within {} ms", socket_path, timeout_ms);
    case LineStatus::kTooLong:
      return make_error("the agent at {} sent a response line longer than {} bytes", socket_path, kMaxLine);
    default:
      return make_error("the agent at {} closed the connection without answering", socket_path);
  }
  return parse_response(line);
}

}  // namespace kagami::agent
