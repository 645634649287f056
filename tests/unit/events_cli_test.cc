// `kagami events` against a stand-in agent: a ControlServer whose handler
// answers the "events" op (and records the arguments it got), and an HTTP
// stand-in for --follow that sends a chunked JSON-lines stream.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent/control_socket.h"
#include "cli/cli.h"
#include "cli/events_cmd.h"
#include "common/fd.h"

namespace kagami {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const json kEvents = {
    {"events",
     {{{"module", "exec"}, {"kind", "exec"}, {"seq", 1}, {"time", "2026-01-01T00:00:00.000000000Z"},
       {"mono_ns", 1}, {"pid", 42}, {"filename", "/bin/true"}},
      {{"module", "exec"}, {"kind", "exec"}, {"seq", 2}, {"time", "2026-01-01T00:00:01.000000000Z"},
       {"mono_ns", 2}, {"pid", 43}, {"filename", "/bin/false"}}}},
    {"last_seq", 2}};

class EventsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kagami-events-cli-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    sock_ = (dir_ / "k.sock").string();
    server_ = std::make_unique<agent::ControlServer>(sock_, [this](const agent::Request& r) -> Result<json> {
      if (r.op == "events") {
        last_args_ = r.args;
        return kEvents;
      }
      if (r.op == "status") return json{{"http", http_}};
      return make_error("unexpected op {}", r.op);
    }, geteuid());
    ASSERT_TRUE(server_->start());
  }
  void TearDown() override {
    if (server_) server_->stop();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  int run(std::vector<std::string> args, std::string& out, std::string& err) {
    args.insert(args.begin(), {"--socket", sock_});
    std::ostringstream o, e;
    int rc = cli::run(args, o, e);
    out = o.str();
    err = e.str();
    return rc;
  }
  fs::path dir_;
  std::string sock_, http_;
  json last_args_;
  std::unique_ptr<agent::ControlServer> server_;
};

TEST_F(EventsCli, HistoryAsJsonLines) {
  std::string out, err;
  ASSERT_EQ(run({"events", "--module", "exec", "--limit", "5", "--json"}, out, err), 0) << err;
  EXPECT_EQ(last_args_["module"], "exec");
  EXPECT_EQ(last_args_["limit"], "5");
  std::istringstream in(out);
  std::string line;
  std::vector<json> lines;
  while (std::getline(in, line)) lines.push_back(json::parse(line));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["filename"], "/bin/false");
}

TEST_F(EventsCli, HistoryAsHumanLines) {
  std::string out, err;
  ASSERT_EQ(run({"events"}, out, err), 0) << err;
  EXPECT_FALSE(last_args_.contains("module"));
  EXPECT_NE(out.find("2026-01-01T00:00:00.000000000Z  exec       exec       filename=/bin/true pid=42\n"),
            std::string::npos)
      << out;
}

TEST_F(EventsCli, FollowReadsTheChunkedHttpStream) {
  // An HTTP stand-in on a free port that answers one GET with two chunks
  // (one split mid-line, plus a keepalive line) and closes.
  Fd lsock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lsock.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(lsock.get(), 1), 0);
  socklen_t len = sizeof(a);
  ::getsockname(lsock.get(), reinterpret_cast<sockaddr*>(&a), &len);
  http_ = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  std::string request;
  std::thread srv([&] {
    Fd c(::accept(lsock.get(), nullptr, nullptr));
    char buf[4096];
    ssize_t n = ::recv(c.get(), buf, sizeof(buf), 0);
    if (n > 0) request.assign(buf, static_cast<size_t>(n));
    const std::string l1 = kEvents["events"][0].dump() + "\n";
    const std::string l2 = kEvents["events"][1].dump() + "\n";
    const std::string part1 = l1 + "\n" + l2.substr(0, 10), part2 = l2.substr(10);
    auto chunk = [](const std::string& s) { return fmt::format("{:x}\r\n{}\r\n", s.size(), s); };
    const std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n" +
                             chunk(part1) + chunk(part2) + "0\r\n\r\n";
    (void)::send(c.get(), resp.data(), resp.size(), MSG_NOSIGNAL);
  });
  std::string out, err;
  const int rc = run({"events", "--follow", "--module", "exec", "--json"}, out, err);
  srv.join();
  ASSERT_EQ(rc, 0) << err;
  EXPECT_NE(request.find("GET /api/v1/events?follow=1&module=exec HTTP/1.1"), std::string::npos) << request;
  EXPECT_EQ(out, kEvents["events"][0].dump() + "\n" + kEvents["events"][1].dump() + "\n");
}

TEST(EventsCliNoAgent, ErrorNamesTheSocket) {
  std::ostringstream o, e;
  EXPECT_EQ(cli::run({"--socket", "/nonexistent/k.sock", "events"}, o, e), 1);
  EXPECT_NE(e.str().find("/nonexistent/k.sock"), std::string::npos) << e.str();
}

TEST(EventLine, SummaryLeavesTheEnvelopeOut) {
  const std::string l = cli::event_line({{"module", "exec"}, {"kind", "exec"}, {"seq", 3}, {"mono_ns", 9},
                                         {"time", "T"}, {"pid", 1}, {"workload", {{"pod_uid", "u"}}}});
  EXPECT_EQ(l, "T  exec       exec       pid=1 workload={pod_uid:u}");
}

}  // namespace
}  // namespace kagami
