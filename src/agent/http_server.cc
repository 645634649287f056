#include "agent/http_server.h"

#include <cerrno>
#include <thread>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/events.h"  // [events]

namespace kagami::agent {

struct HttpServer::Impl {
  explicit Impl(Agent& a) : agent(a) {}
  Agent& agent;
  httplib::Server server;
  std::thread thread;
  std::string address;
};

namespace {

void reply_json(httplib::Response& res, const nlohmann::json& j, int status = 200) {
  res.status = status;
  res.set_content(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                  "application/json");
}

// ---- [events] GET /api/v1/events (history), ?follow=1 and /api/v1/events/stream
// (chunked JSON lines or SSE), /api/v1/events/stats. The stream itself is
// agent::stream_events(bus, query, writer): only this glue knows httplib.
void add_event_routes(httplib::Server& svr, Agent& agent) {
  auto query_of = [](const httplib::Request& req) {
    std::map<std::string, std::string> q;
    for (const auto& [k, v] : req.params) q[k] = v;
    return q;
  };
  auto stream = [&agent](const std::map<std::string, std::string>& q, httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(stream_content_type(q), [&agent, q](size_t, httplib::DataSink& sink) {
      stream_events(agent.event_bus(), q, [&sink](std::string_view chunk) {
        return sink.is_writable() && sink.write(chunk.data(), chunk.size());
      });
      sink.done();
      return true;
    });
  };
  svr.Get("/api/v1/events", [&agent, query_of, stream](const httplib::Request& req, httplib::Response& res) {
    auto q = query_of(req);
    if (auto f = q.find("follow"); f != q.end() && f->second != "0" && f->second != "false") return stream(q, res);
    auto j = events_history_json(agent.event_bus(), q);
    if (j) reply_json(res, *j);
    else reply_json(res, {{"error", j.error().message}}, 400);
  });
  svr.Get("/api/v1/events/stream", [query_of, stream](const httplib::Request& req, httplib::Response& res) {
    stream(query_of(req), res);
  });
  svr.Get("/api/v1/events/stats", [&agent](const httplib::Request&, httplib::Response& res) {
    reply_json(res, agent.events_stats_json());
  });
}

}  // namespace

HttpServer::HttpServer(Agent& agent) : impl_(std::make_unique<Impl>(agent)) {}

HttpServer::~HttpServer() { stop(); }

Result<void> HttpServer::start(const std::string& addr) {
  auto hp = parse_host_port(addr);
  if (!hp) return hp.error().with_context("agent.http");
  auto& svr = impl_->server;
  Agent& agent = impl_->agent;
  // Two workers: scrapes and API calls are short, and an idle agent should not
  // keep httplib's default pool of max(8, cores) threads around.
  // [events] +2 for event followers, which hold a worker for as long as they follow.
  svr.new_task_queue = [] { return new httplib::ThreadPool(4); };

  svr.Get("/metrics", [&agent](const httplib::Request&, httplib::Response& res) {
    res.set_content(agent.metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
  });
  svr.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  svr.Get("/api/v1/programs", [&agent](const httplib::Request&, httplib::Response& res) {
    reply_json(res, agent.programs_json());
  });
  svr.Get(R"(/api/v1/programs/([^/]+))", [&agent](const httplib::Request& req, httplib::Response& res) {
    auto p = agent.program_json(req.matches[1]);
    if (p) reply_json(res, *p);
    else reply_json(res, {{"error", p.error().message}}, 404);
  });
  svr.Get("/api/v1/attachments", [&agent](const httplib::Request&, httplib::Response& res) {
    reply_json(res, agent.attachments_json());
  });
  svr.Get("/api/v1/maps", [&agent](const httplib::Request&, httplib::Response& res) {
    reply_json(res, agent.maps_json());
  });
  svr.Get("/api/v1/stats", [&agent](const httplib::Request&, httplib::Response& res) {
    reply_json(res, agent.stats_json());
  });
  svr.Get("/api/v1/modules", [&agent](const httplib::Request&, httplib::Response& res) {
    reply_json(res, agent.modules_json());
  });
  add_event_routes(svr, agent);  // [events]
  svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404 && res.body.empty())
      reply_json(res, {{"error", "no such endpoint: " + req.path}}, 404);
  });

  const auto& [host, port] = *hp;
  int bound = port;
  errno = 0;
  if (port == 0) {
    bound = svr.bind_to_any_port(host);
    if (bound <= 0) return errno_error(errno ? errno : EADDRNOTAVAIL, "agent.http: cannot bind {}", addr);
  } else if (!svr.bind_to_port(host, port)) {
    return errno_error(errno ? errno : EADDRINUSE, "agent.http: cannot bind {}", addr);
  }
  impl_->address = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                   std::to_string(bound);
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  spdlog::info("http: serving /metrics, /healthz and /api/v1 on {}", impl_->address);
  return ok();
}

void HttpServer::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->server.stop();
  impl_->thread.join();
}

std::string HttpServer::address() const { return impl_->address; }

}  // namespace kagami::agent
