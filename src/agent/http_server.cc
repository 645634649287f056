#include "agent/http_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "common/fd.h"
#include "agent/events.h"  // [events]

namespace kagami::agent {
namespace {

using Clock = std::chrono::steady_clock;

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

std::string render(const HttpResponse& r) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n"
      "Connection: close\r\n{}\r\n",
      r.status, reason_phrase(r.status), r.content_type, r.body.size(),
      r.status == 405 ? "Allow: GET\r\n" : "");
  out += r.body;
  return out;
}

HttpResponse json_response(const nlohmann::json& j, int status = 200) {
  return HttpResponse{status, "application/json",
                      j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
}

HttpResponse error_response(int status, const std::string& message) {
  return json_response({{"error", message}}, status);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi << 4 | lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    const std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    out[percent_decode(part.substr(0, eq), true)] =
        eq == std::string_view::npos ? std::string() : percent_decode(part.substr(eq + 1), true);
  }
  return out;
}

std::string peer_address(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, buf, sizeof(buf));
  else if (ss.ss_family == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, buf, sizeof(buf));
  return buf[0] ? buf : "unknown";
}

// Blocking send bounded by the socket's SO_SNDTIMEO (stream threads only).
bool send_all_blocking(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

struct HttpServer::Impl {
  enum class State { kReading, kQueued, kWriting, kDraining };
  struct Conn {
    Fd fd;
    std::string peer;
    State state = State::kReading;
    Clock::time_point deadline;
    std::string in;
    std::string out;
    size_t out_off = 0;
    size_t drained = 0;
  };
  struct Route {
    HttpHandler handler;
    bool run_inline = false;
  };
  struct StreamRoute {
    StreamHandler handler;
    std::string content_type;
  };
  struct Job {
    uint64_t conn;
    const HttpHandler* handler;
    HttpRequest req;
  };
  struct Stream {
    Fd fd;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  explicit Impl(HttpLimits l) : limits(l) {}

  HttpLimits limits;
  std::map<std::string, Route> routes;
  std::vector<std::pair<std::string, HttpHandler>> prefix_routes;
  std::map<std::string, StreamRoute> stream_routes;

  Fd listen_fd;
  Fd wake_fd;
  std::thread loop_thread;
  std::vector<std::thread> workers;
  std::atomic<bool> stopping{false};
  std::string address;

  // Poll thread only.
  std::map<uint64_t, Conn> conns;  // id order = accept order: oldest first
  std::unordered_map<std::string, size_t> per_client;
  uint64_t next_id = 1;

  // Worker queue and their answers.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> jobs;                                 // guarded by mu
  std::vector<std::pair<uint64_t, std::string>> done;   // guarded by mu

  std::mutex streams_mu;
  std::list<std::unique_ptr<Stream>> streams;  // guarded by streams_mu

  void wake() {
    uint64_t one = 1;
    (void)!::write(wake_fd.get(), &one, sizeof(one));
  }

  // ---- connections (poll thread) ----

  void close_conn(uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    auto pc = per_client.find(it->second.peer);
    if (pc != per_client.end() && --pc->second == 0) per_client.erase(pc);
    conns.erase(it);
  }

  // Makes room for a new connection: closes the oldest connection (of `peer`,
  // or of anyone) that has finished (draining), else one still sending its
  // request, else one slow to take its response. Queued ones are never
  // evicted: a worker is answering them. False if nothing can go.
  bool evict_one(const std::string* peer) {
    for (State want : {State::kDraining, State::kReading, State::kWriting}) {
      for (auto& [id, c] : conns) {
        if (c.state != want || (peer && c.peer != *peer)) continue;
        spdlog::debug("http: closing a connection of {} to make room", c.peer);
        close_conn(id);
        return true;
      }
    }
    return false;
  }

  void accept_all() {
    for (int i = 0; i < 64; ++i) {
      sockaddr_storage ss{};
      socklen_t sl = sizeof(ss);
      Fd fd(::accept4(listen_fd.get(), reinterpret_cast<sockaddr*>(&ss), &sl, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!fd.valid()) return;
      std::string peer = peer_address(ss);
      auto pc = per_client.find(peer);
      if (pc != per_client.end() && pc->second >= limits.max_connections_per_client && !evict_one(&peer)) {
        spdlog::debug("http: refusing a connection of {}: {} open", peer, limits.max_connections_per_client);
        continue;
      }
      if (conns.size() >= limits.max_connections && !evict_one(nullptr)) continue;
      const uint64_t id = next_id++;
      Conn& c = conns[id];
      c.fd = std::move(fd);
      c.peer = peer;
      c.deadline = Clock::now() + std::chrono::milliseconds(limits.request_timeout_ms);
      ++per_client[peer];
      on_readable(id);  // the request is usually there already
    }
  }

  void respond(uint64_t id, const HttpResponse& r) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn& c = it->second;
    c.out = render(r);
    c.out_off = 0;
    c.in.clear();
    c.in.shrink_to_fit();
    c.state = State::kWriting;
    c.deadline = Clock::now() + std::chrono::milliseconds(limits.response_timeout_ms);
    on_writable(id);
  }

  void on_writable(uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn& c = it->second;
    if (c.state != State::kWriting) return;
    while (c.out_off < c.out.size()) {
      const ssize_t n =
          ::send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        close_conn(id);
        return;
      }
      c.out_off += static_cast<size_t>(n);
    }
    // Sent. Half-close, then read and discard what the client still sends
    // for a moment: closing with unread input would reset the connection and
    // could destroy the response before the client reads it (a 414).
    ::shutdown(c.fd.get(), SHUT_WR);
    c.out.clear();
    c.out.shrink_to_fit();
    c.state = State::kDraining;
    c.deadline = Clock::now() + std::chrono::milliseconds(1000);
  }

  void on_readable(uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn& c = it->second;
    char tmp[16384];
    if (c.state == State::kDraining) {
      for (;;) {
        const ssize_t n = ::recv(c.fd.get(), tmp, sizeof(tmp), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0 || (c.drained += static_cast<size_t>(n)) > (1u << 20)) {
          close_conn(id);
          return;
        }
      }
    }
    if (c.state != State::kReading) return;
    for (;;) {
      // Never buffer more than the limit + 1 byte.
      const size_t room = limits.max_request_bytes + 1 - c.in.size();
      const ssize_t n = ::recv(c.fd.get(), tmp, std::min(sizeof(tmp), room), MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) {
        close_conn(id);
        return;
      }
      const size_t scan_from = c.in.size() >= 3 ? c.in.size() - 3 : 0;
      c.in.append(tmp, static_cast<size_t>(n));
      size_t end = c.in.find("\r\n\r\n", scan_from);
      if (end == std::string::npos) end = c.in.find("\n\n", scan_from);
      if (end != std::string::npos && end < limits.max_request_bytes) {
        dispatch(id);
        return;
      }
      if (c.in.size() > limits.max_request_bytes) {
        const bool line_done = c.in.find('\n') != std::string::npos;
        respond(id, error_response(line_done ? 431 : 414,
                                   fmt::format("request {} longer than {} bytes",
                                               line_done ? "headers" : "line", limits.max_request_bytes)));
        return;
      }
    }
  }

  void dispatch(uint64_t id) {
    Conn& c = conns.at(id);
    const size_t eol = c.in.find('\n');
    std::string_view line(c.in.data(), eol);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    HttpRequest req;
    req.peer = c.peer;
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0)
      return respond(id, error_response(400, "malformed request line"));
    req.method = std::string(line.substr(0, sp1));
    req.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
    if (req.target.empty() || req.target[0] != '/') return respond(id, error_response(400, "malformed request target"));
    const size_t q = req.target.find('?');
    req.path = percent_decode(std::string_view(req.target).substr(0, q), false);
    if (q != std::string::npos) req.query = parse_query(std::string_view(req.target).substr(q + 1));
    if (req.method != "GET") return respond(id, error_response(405, "only GET is served"));

    if (auto r = routes.find(req.path); r != routes.end()) {
      if (r->second.run_inline) return respond(id, run(r->second.handler, req));
      return enqueue(id, &r->second.handler, std::move(req));
    }
    if (auto s = stream_routes.find(req.path); s != stream_routes.end()) return start_stream(id, s->second, req);
    for (const auto& [prefix, h] : prefix_routes) {
      if (req.path.size() > prefix.size() && req.path.compare(0, prefix.size(), prefix) == 0 &&
          req.path.find('/', prefix.size()) == std::string::npos) {
        req.route_rest = req.path.substr(prefix.size());
        return enqueue(id, &h, std::move(req));
      }
    }
    respond(id, error_response(404, "no such endpoint: " + req.path));
  }

  static HttpResponse run(const HttpHandler& h, const HttpRequest& req) {
    try {
      return h(req);
    } catch (const std::exception& e) {
      spdlog::error("http: {}: {}", req.path, e.what());
      return error_response(500, fmt::format("internal error: {}", e.what()));
    }
  }

  void enqueue(uint64_t id, const HttpHandler* h, HttpRequest req) {
    {
      std::lock_guard lk(mu);
      if (jobs.size() < limits.max_queued) {
        conns.at(id).state = State::kQueued;
        jobs.push_back(Job{id, h, std::move(req)});
        cv.notify_one();
        return;
      }
    }
    respond(id, error_response(503, "busy: too many requests waiting"));
  }

  void worker() {
    for (;;) {
      Job job;
      {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return stopping || !jobs.empty(); });
        if (stopping) return;
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      std::string out = render(run(*job.handler, job.req));
      {
        std::lock_guard lk(mu);
        done.emplace_back(job.conn, std::move(out));
      }
      wake();
    }
  }

  void collect_done() {
    std::vector<std::pair<uint64_t, std::string>> ready;
    {
      std::lock_guard lk(mu);
      ready.swap(done);
    }
    for (auto& [id, out] : ready) {
      auto it = conns.find(id);
      if (it == conns.end() || it->second.state != State::kQueued) continue;
      Conn& c = it->second;
      c.out = std::move(out);
      c.out_off = 0;
      c.in.clear();
      c.state = State::kWriting;
      c.deadline = Clock::now() + std::chrono::milliseconds(limits.response_timeout_ms);
      on_writable(id);
    }
  }

  // ---- streams ----

  void reap_streams(bool all) {
    std::list<std::unique_ptr<Stream>> finished;
    {
      std::lock_guard lk(streams_mu);
      for (auto it = streams.begin(); it != streams.end();) {
        if (all) ::shutdown((*it)->fd.get(), SHUT_RDWR);
        if (all || (*it)->done) {
          finished.push_back(std::move(*it));
          it = streams.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& s : finished) s->thread.join();
  }

  void start_stream(uint64_t id, const StreamRoute& route, const HttpRequest& req) {
    std::lock_guard lk(streams_mu);
    size_t active = 0;
    for (const auto& s : streams) active += s->done ? 0 : 1;
    if (active >= limits.max_streams) {
      return respond(id, error_response(503, fmt::format("busy: {} streams open (the maximum)", limits.max_streams)));
    }
    auto s = std::make_unique<Stream>();
    s->fd = std::move(conns.at(id).fd);
    close_conn(id);  // the stream thread owns the socket now; it leaves the connection caps
    Stream* raw = s.get();
    s->thread = std::thread([this, raw, &route, query = req.query] {
      stream_main(*raw, route, query);
      raw->done = true;
    });
    streams.push_back(std::move(s));
  }

  void stream_main(Stream& s, const StreamRoute& route, const std::map<std::string, std::string>& query) {
    const int fd = s.fd.get();
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl >= 0) (void)::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    const timeval tv{limits.stream_write_timeout_ms / 1000, (limits.stream_write_timeout_ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    bool alive = send_all_blocking(
        fd, fmt::format("HTTP/1.1 200 OK\r\nContent-Type: {}\r\nTransfer-Encoding: chunked\r\n"
                        "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                        route.content_type));
    const StreamWriter writer = [&](std::string_view chunk) -> bool {
      if (!alive || stopping) return false;
      if (chunk.empty()) {
        pollfd p{fd, POLLRDHUP, 0};
        if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) alive = false;
        return alive;
      }
      alive = send_all_blocking(fd, fmt::format("{:x}\r\n", chunk.size())) && send_all_blocking(fd, chunk) &&
              send_all_blocking(fd, "\r\n");
      return alive;
    };
    if (alive) {
      try {
        route.handler(query, writer);
      } catch (const std::exception& e) {
        spdlog::error("http: stream handler: {}", e.what());
      }
    }
    if (alive && !stopping) send_all_blocking(fd, "0\r\n\r\n");
    ::shutdown(fd, SHUT_RDWR);
  }

  // ---- the poll loop ----

  void loop() {
    std::vector<pollfd> pfds;
    std::vector<uint64_t> ids;
    while (!stopping) {
      pfds.clear();
      ids.clear();
      pfds.push_back({listen_fd.get(), POLLIN, 0});
      pfds.push_back({wake_fd.get(), POLLIN, 0});
      auto next = Clock::now() + std::chrono::milliseconds(1000);
      for (auto& [id, c] : conns) {
        if (c.state == State::kQueued) continue;
        pfds.push_back({c.fd.get(), static_cast<short>(c.state == State::kWriting ? POLLOUT : POLLIN), 0});
        ids.push_back(id);
        next = std::min(next, c.deadline);
      }
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count();
      const int n = ::poll(pfds.data(), pfds.size(), static_cast<int>(std::clamp<long long>(wait + 1, 0, 1000)));
      if (n < 0 && errno != EINTR) {
        spdlog::error("http: poll: {}", std::strerror(errno));
        return;
      }
      if (stopping) return;
      if (n > 0) {
        if (pfds[1].revents) {
          uint64_t v;
          (void)!::read(wake_fd.get(), &v, sizeof(v));
          collect_done();
        }
        for (size_t i = 0; i < ids.size(); ++i) {
          const short ev = pfds[i + 2].revents;
          if (!ev) continue;
          auto it = conns.find(ids[i]);
          if (it == conns.end()) continue;
          if (it->second.state == State::kWriting) {
            if (ev & (POLLERR | POLLHUP) && !(ev & POLLOUT)) close_conn(ids[i]);
            else on_writable(ids[i]);
          } else {
            on_readable(ids[i]);
          }
        }
        if (pfds[0].revents & POLLIN) accept_all();
      }
      expire();
      reap_streams(false);
    }
  }

  void expire() {
    const auto now = Clock::now();
    std::vector<uint64_t> late;
    for (auto& [id, c] : conns)
      if (c.state != State::kQueued && c.deadline <= now) late.push_back(id);
    for (uint64_t id : late) {
      Conn& c = conns.at(id);
      if (c.state == State::kReading)
        respond(id, error_response(408, fmt::format("request not complete within {} ms", limits.request_timeout_ms)));
      else
        close_conn(id);  // response not taken in time, or done draining
    }
  }
};

HttpServer::HttpServer(HttpLimits limits) : impl_(std::make_unique<Impl>(limits)) {}

HttpServer::HttpServer(Agent& agent, HttpLimits limits) : HttpServer(limits) {
  add_route("/metrics", [&agent](const HttpRequest&) {
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", agent.metrics_text()};
  });
  // Inline: answered by the poll thread, never behind a slow scrape.
  add_route("/healthz", [](const HttpRequest&) { return HttpResponse{200, "text/plain", "ok\n"}; },
            /*run_inline=*/true);
  add_route("/api/v1/programs", [&agent](const HttpRequest&) { return json_response(agent.programs_json()); });
  add_prefix_route("/api/v1/programs/", [&agent](const HttpRequest& req) {
    auto p = agent.program_json(req.route_rest);
    return p ? json_response(*p) : error_response(404, p.error().message);
  });
  add_route("/api/v1/attachments", [&agent](const HttpRequest&) { return json_response(agent.attachments_json()); });
  add_route("/api/v1/maps", [&agent](const HttpRequest&) { return json_response(agent.maps_json()); });
  // ?window_ms=N: the kernel's run-time stats sampled over a window (the
  // agent turns them on only for its length, docs/agent.md).
  add_route("/api/v1/stats", [&agent](const HttpRequest& req) {
    auto w = req.query.find("window_ms");
    if (w == req.query.end()) return json_response(agent.stats_json());
    int64_t ms = 0;
    try {
      ms = std::stoll(w->second);
    } catch (const std::exception&) {
      return json_response({{"error", "window_ms must be an integer (10 to 10000)"}}, 400);
    }
    auto r = agent.sample_stats_json(std::chrono::milliseconds(ms));
    return r ? json_response(*r) : json_response({{"error", r.error().message}}, 400);
  });
  add_route("/api/v1/modules", [&agent](const HttpRequest&) { return json_response(agent.modules_json()); });
  // Events (docs/events.md): history as one JSON document, or, with
  // follow=1, a stream of JSON lines; /stream always streams, /sse streams
  // server-sent events. All three are stream routes, so a follower holds a
  // stream slot (capped) and never an HTTP worker.
  add_stream_route("/api/v1/events", [&agent](const std::map<std::string, std::string>& q, const StreamWriter& w) {
    if (auto f = q.find("follow"); f != q.end() && f->second != "0" && f->second != "false") {
      auto plain = q;
      // This route's content type is JSON lines: no SSE framing; the
      // Falco shape is JSON lines too (kagami events --follow --falco).
      if (plain.count("format") && plain["format"] != "falco") plain.erase("format");
      return stream_events(agent.event_bus(), plain, w);
    }
    auto j = events_history_json(agent.event_bus(), q);
    w((j ? *j : nlohmann::json{{"error", j.error().message}}).dump() + "\n");
  });
  add_stream_route("/api/v1/events/stream", [&agent](const std::map<std::string, std::string>& q, const StreamWriter& w) {
    auto plain = q;
    if (plain.count("format") && plain["format"] != "falco") plain.erase("format");  // JSON lines; Falco's are too
    stream_events(agent.event_bus(), plain, w);
  });
  add_stream_route(
      "/api/v1/events/sse",
      [&agent](const std::map<std::string, std::string>& q, const StreamWriter& w) {
        auto sse = q;
        sse["format"] = "sse";
        stream_events(agent.event_bus(), sse, w);
      },
      "text/event-stream");
  add_route("/api/v1/events/stats", [&agent](const HttpRequest&) { return json_response(agent.events_stats_json()); });
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::add_route(std::string path, HttpHandler h, bool run_inline) {
  impl_->routes[std::move(path)] = Impl::Route{std::move(h), run_inline};
}

void HttpServer::add_prefix_route(std::string prefix, HttpHandler h) {
  impl_->prefix_routes.emplace_back(std::move(prefix), std::move(h));
}

void HttpServer::add_stream_route(std::string path, StreamHandler h, std::string content_type) {
  impl_->stream_routes[std::move(path)] = Impl::StreamRoute{std::move(h), std::move(content_type)};
}

const HttpLimits& HttpServer::limits() const { return impl_->limits; }

Result<void> HttpServer::start(const std::string& addr) {
  auto hp = parse_host_port(addr);
  if (!hp) return hp.error().with_context("agent.http");
  const auto& [host, port] = *hp;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port_s = std::to_string(port);
  if (int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port_s.c_str(), &hints, &res); rc != 0)
    return make_error("agent.http: cannot resolve {}: {}", addr, ::gai_strerror(rc));
  int last_errno = EADDRNOTAVAIL;
  Fd fd;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    Fd s(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!s.valid()) {
      last_errno = errno;
      continue;
    }
    const int one = 1;
    ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(s.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(s.get(), 128) != 0) {
      last_errno = errno;
      continue;
    }
    fd = std::move(s);
    break;
  }
  ::freeaddrinfo(res);
  if (!fd.valid()) return errno_error(last_errno, "agent.http: cannot bind {}", addr);
  sockaddr_storage ss{};
  socklen_t sl = sizeof(ss);
  int bound = port;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &sl) == 0)
    bound = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(ss).sin6_port
                                           : reinterpret_cast<sockaddr_in&>(ss).sin_port);
  impl_->wake_fd.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!impl_->wake_fd.valid()) return errno_error(errno, "agent.http: eventfd");
  impl_->listen_fd = std::move(fd);
  impl_->address = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(bound);
  impl_->stopping = false;
  for (int i = 0; i < std::max(1, impl_->limits.workers); ++i)
    impl_->workers.emplace_back([this] { impl_->worker(); });
  impl_->loop_thread = std::thread([this] { impl_->loop(); });
  spdlog::info("http: serving on {}", impl_->address);
  return ok();
}

void HttpServer::stop() {
  if (!impl_ || !impl_->loop_thread.joinable()) return;
  impl_->stopping = true;
  impl_->wake();
  impl_->loop_thread.join();
  {
    std::lock_guard lk(impl_->mu);
    impl_->cv.notify_all();
  }
  for (auto& w : impl_->workers) w.join();
  impl_->workers.clear();
  impl_->reap_streams(/*all=*/true);
  impl_->conns.clear();
  impl_->per_client.clear();
  impl_->jobs.clear();
  impl_->done.clear();
  impl_->listen_fd.reset();
}

std::string HttpServer::address() const { return impl_->address; }

}  // namespace kagami::agent
