// The agent's control socket (unix stream, protocol in agent/protocol.h).
//
// Security model: the socket is the agent's only write interface, so only
// root may use it. Three layers, each enough on its own:
//   - the parent directory is created 0700 (if missing),
//   - the socket file is chmod 0600 and chown root:root,
//   - every accepted connection's SO_PEERCRED uid must equal allowed_uid (0);
//     others get one error line naming their uid, then the connection closes.
// A stale socket file from a killed agent is replaced; a live one (something
// accepts connections on it) is an error, so two agents never share a path.
//
// Clients are served concurrently, one thread each, at most kMaxClients at a
// time (the next one gets an error line and is closed); the handler
// serializes what changes the kernel. Each request line must arrive whole
// within kRequestTimeoutMs of the moment the server starts waiting for it, and
// its response must be taken by the client within the same time: a client
// trickling one byte at a time is cut off, not waited for per read.
#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/protocol.h"
#include "common/fd.h"
#include "common/result.h"

namespace kagami::agent {

using RequestHandler = std::function<Result<nlohmann::json>(const Request&)>;

inline constexpr int kMaxClients = 8;
inline constexpr int kRequestTimeoutMs = 30000;

class ControlServer {
 public:
  ControlServer(std::string path, RequestHandler handler, uid_t allowed_uid = 0);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  Result<void> start();
  void stop();  // idempotent; removes the socket file
  // Before start(): the per-request deadline (default kRequestTimeoutMs); tests shorten it.
  void set_request_timeout_ms(int ms) { request_timeout_ms_ = ms; }
  const std::string& path() const { return path_; }

 private:
  struct Client {
    Fd fd;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void serve();
  void serve_connection(int fd);
  void reap_clients(bool all);

  std::string path_;
  RequestHandler handler_;
  uid_t allowed_uid_;
  int request_timeout_ms_ = kRequestTimeoutMs;
  Fd listen_fd_;
  Fd wake_fd_;  // eventfd: wakes the poll loop on stop()
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex clients_mu_;
  std::list<std::unique_ptr<Client>> clients_;  // guarded by clients_mu_
};

// Client: sends one request and waits for its response (timeout_ms in all).
// "agent not running (no socket at PATH)" when nobody listens there.
Result<nlohmann::json> call_agent(const std::string& socket_path, const std::string& op,
                                  const nlohmann::json& args, int timeout_ms = 120000);

}  // namespace kagami::agent
