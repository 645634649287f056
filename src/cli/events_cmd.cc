#include "cli/events_cmd.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <set>

#include <fmt/format.h>

#include "agent/config.h"
#include "agent/events.h"
#include "common/fd.h"

namespace kagami::cli {
namespace {

using nlohmann::json;

std::string scalar(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A minimal HTTP/1.1 client for one GET whose body is read as it arrives
// (chunked or not); `line` gets every complete body line.
class LineStream {
 public:
  explicit LineStream(std::function<void(std::string_view)> line) : line_(std::move(line)) {}
  // Feeds raw body bytes (already de-chunked).
  void body(std::string_view b) {
    buf_.append(b);
    size_t pos;
    while ((pos = buf_.find('\n')) != std::string::npos) {
      line_(std::string_view(buf_).substr(0, pos));
      buf_.erase(0, pos + 1);
    }
  }

 private:
  std::function<void(std::string_view)> line_;
  std::string buf_;
};

}  // namespace

std::string event_line(const json& e) {
  static const std::set<std::string> envelope = {"module", "kind", "time", "seq", "mono_ns"};
  std::string summary;
  if (e.is_object()) {
    for (auto it = e.begin(); it != e.end(); ++it) {
      if (envelope.count(it.key())) continue;
      std::string v = it->is_object() ? std::string() : scalar(*it);
      if (it->is_object()) {
        for (auto w = it->begin(); w != it->end(); ++w) v += (v.empty() ? "" : ",") + w.key() + ":" + scalar(*w);
        v = "{" + v + "}";
      }
      summary += (summary.empty() ? "" : " ") + it.key() + "=" + v;
    }
  }
  if (summary.size() > 200) summary = summary.substr(0, 197) + "...";
  return fmt::format("{}  {:<10} {:<10} {}", e.value("time", std::string("-")), e.value("module", std::string("-")),
                     e.value("kind", std::string("-")), summary);
}

void print_events(const json& reply, EventFormat format, std::ostream& out, const std::string& hostname) {
  for (const auto& e : reply.value("events", json::array())) {
    if (format == EventFormat::Json) out << e.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    // In-band notices (no seq) stay in the agent's shape, as on the stream.
    else if (format == EventFormat::Falco)
      out << (e.contains("seq") ? agent::to_falco(e, hostname) : e).dump(-1, ' ', false, json::error_handler_t::replace)
          << "\n";
    else out << event_line(e) << "\n";
  }
  out << std::flush;
}

std::string local_hostname() {
  char host[256] = {};
  return ::gethostname(host, sizeof(host) - 1) == 0 ? std::string(host) : std::string();
}

Result<void> follow_events(const std::string& http_addr, const std::string& module, EventFormat format,
                           std::ostream& out) {
  const bool as_json = format != EventFormat::Text;
  auto hp = agent::parse_host_port(http_addr);
  if (!hp) return hp.error().with_context("agent http address");
  std::string host = hp->first;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  const std::string port = std::to_string(hp->second);
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return make_error("{}: {}", http_addr, gai_strerror(rc));
  Fd sock;
  int err = ECONNREFUSED;
  for (addrinfo* a = res; a; a = a->ai_next) {
    Fd s(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (s.valid() && ::connect(s.get(), a->ai_addr, a->ai_addrlen) == 0) {
      sock = std::move(s);
      break;
    }
    err = errno;
  }
  ::freeaddrinfo(res);
  if (!sock.valid()) return errno_error(err, "connecting to the agent's HTTP endpoint {}", http_addr);

  std::string path = "/api/v1/events?follow=1";
  if (format == EventFormat::Falco) path += "&format=falco";
  if (!module.empty()) {
    path += "&module=";
    for (unsigned char c : module) {  // percent-encode all but unreserved characters
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') path += static_cast<char>(c);
      else path += fmt::format("%{:02X}", c);
    }
  }
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + http_addr +
                          "\r\nAccept: application/x-ndjson\r\nConnection: close\r\n\r\n";
  if (::send(sock.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    return errno_error(errno, "sending to {}", http_addr);

  LineStream lines([&](std::string_view l) {
    if (l.empty()) return;  // keepalive
    if (as_json) {
      out << l << "\n" << std::flush;
      return;
    }
    json e = json::parse(l, nullptr, false);
    out << (e.is_discarded() ? std::string(l) : event_line(e)) << "\n" << std::flush;
  });
  std::string in;
  bool headers_done = false, chunked = false;
  size_t chunk_left = 0;  // bytes of the current chunk still to come
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(sock.get(), buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(errno, "reading from {}", http_addr);
    if (n == 0) return ok();  // the agent ended the stream (it stopped)
    in.append(buf, static_cast<size_t>(n));
    if (!headers_done) {
      auto end = in.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (in.size() > 65536) return make_error("{}: HTTP headers too long", http_addr);
        continue;
      }
      const std::string head = in.substr(0, end);
      in.erase(0, end + 4);
      headers_done = true;
      if (head.rfind("HTTP/1.1 200", 0) != 0 && head.rfind("HTTP/1.0 200", 0) != 0)
        return make_error("{}: {}", http_addr, head.substr(0, head.find("\r\n")));
      std::string lower = head;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      chunked = lower.find("transfer-encoding: chunked") != std::string::npos;
    }
    if (!chunked) {
      lines.body(in);
      in.clear();
      continue;
    }
    // Chunked: "<hex size>\r\n<data>\r\n" ... "0\r\n\r\n".
    for (;;) {
      if (chunk_left > 0) {
        const size_t take = std::min(chunk_left, in.size());
        lines.body(std::string_view(in).substr(0, take));
        in.erase(0, take);
        chunk_left -= take;
        if (chunk_left > 0) break;
        chunk_left = 0;
        // the CRLF after the data is consumed with the next size line
      }
      auto eol = in.find("\r\n");
      if (eol == std::string::npos) break;
      if (eol == 0) {  // CRLF ending the previous chunk's data
        in.erase(0, 2);
        continue;
      }
      const size_t size = std::strtoull(in.substr(0, eol).c_str(), nullptr, 16);
      in.erase(0, eol + 2);
      if (size == 0) return ok();
      chunk_left = size;
    }
  }
}

}  // namespace kagami::cli
