// The agent's HTTP endpoint: /metrics (Prometheus text), /healthz and the
// read-only JSON API under /api/v1 (docs/agent.md), plus long-lived streaming
// routes (add_stream_route).
//
// A small HTTP/1.1 server of our own, GET only, instead of cpp-httplib: 0.11
// has per-read timeouts only (a client sending one header line every 2 s
// holds a worker forever), buffers a request line without limit before its
// 414, and has no per-client connection cap. Here one poll() thread owns
// every socket and does all reading and writing non-blocking, so a slow
// client costs a file descriptor and at most max_request_bytes, never a
// thread:
//   - the request line and headers must fit max_request_bytes (414 / 431)
//     and arrive whole within request_timeout_ms of accept (408);
//   - the response must be taken within response_timeout_ms;
//   - at most max_connections_per_client per peer address and
//     max_connections in all; past either cap, the oldest connection of that
//     client (or of anyone) that is still sending its request is closed to
//     make room, so a flood of slow connections cannot lock out a probe whose
//     request arrives at once;
//   - "inline" routes (/healthz) are answered on the poll thread itself, so
//     they answer while the workers are busy with slow scrapes;
//   - other routes run on `workers` threads (bounded queue, 503 past it);
//   - streaming routes run on a thread each, at most max_streams at once
//     (503 past it), outside every other cap.
// Every response closes the connection (Connection: close).
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace kagami::agent {

class Agent;

struct HttpLimits {
  size_t max_request_bytes = 8192;       // request line + headers
  int request_timeout_ms = 5000;         // accept -> end of headers
  int response_timeout_ms = 30000;       // response handed to the kernel
  size_t max_connections = 256;          // open at once, streams excluded
  size_t max_connections_per_client = 16;  // per peer address
  int workers = 2;                       // threads running non-inline handlers
  size_t max_queued = 64;                // requests waiting for a worker (503 past it)
  size_t max_streams = 4;                // concurrent streaming responses
  int stream_write_timeout_ms = 10000;   // one chunk must be taken within this
};

struct HttpRequest {
  std::string method;
  std::string path;                          // percent-decoded
  std::string target;                        // as sent
  std::map<std::string, std::string> query;  // percent-decoded
  std::string route_rest;                    // prefix routes: the path after the prefix
  std::string peer;                          // client address
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
// Writes one chunk of a streaming response; false once the client has gone
// (or the server stops), after which the handler should return. An empty
// chunk writes nothing and only checks that the client is still there: use
// it as a heartbeat while waiting for data.
using StreamWriter = std::function<bool(std::string_view chunk)>;
using StreamHandler =
    std::function<void(const std::map<std::string, std::string>& query, const StreamWriter& write)>;

class HttpServer {
 public:
  // The agent's routes (/metrics, /healthz, /api/v1/*).
  explicit HttpServer(Agent& agent, HttpLimits limits = {});
  // No routes but the 404: tests and embedders add their own.
  explicit HttpServer(HttpLimits limits);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Register before start(). Exact paths; add_prefix_route matches any
  // non-empty rest after `prefix` (in HttpRequest::route_rest). An inline
  // route runs on the poll thread: only for handlers that never block.
  void add_route(std::string path, HttpHandler h, bool run_inline = false);
  void add_prefix_route(std::string prefix, HttpHandler h);
  // A long-lived response (chunked transfer encoding) produced by `h` on its
  // own thread; stop() makes every writer return false and joins the thread.
  void add_stream_route(std::string path, StreamHandler h,
                        std::string content_type = "application/x-ndjson");

  // Binds host:port (port 0 = any free port) and serves on background threads.
  Result<void> start(const std::string& addr);
  void stop();
  std::string address() const;  // "host:port" as bound
  const HttpLimits& limits() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kagami::agent
