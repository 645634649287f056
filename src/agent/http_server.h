// The agent's HTTP endpoint: /metrics (Prometheus text), /healthz and the
// read-only JSON API under /api/v1 (docs/agent.md). cpp-httplib stays inside
// http_server.cc (pimpl) so its large header is compiled exactly once.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"

namespace kagami::agent {

class Agent;

class HttpServer {
 public:
  explicit HttpServer(Agent& agent);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port (port 0 = any free port) and serves on a background thread.
  Result<void> start(const std::string& addr);
  void stop();
  std::string address() const;  // "host:port" as bound

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kagami::agent
