// HTTP/1.1 L7 policy on real sockets: a real server (python3 asyncio, an
// epoll server like every production HTTP server) runs in a test cgroup,
// the module is planned, loaded and configured through its own
// plan()/configure() and a ProgramManager (unique pin root), and clients
// on loopback addresses that are declared workloads talk to it.
// Proves: allowed GET -> 200; denied path / method / source -> a real 403
// on the client's own connection and the server's access log never saw
// the request; pipelined requests each judged; a request line split over
// 3 segments judged whole; oversized headers denied and counted; a port
// without L7 policy untouched; counters by rule and reason; flow events.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "bpf/kernel.h"
#include "bpf/map_view.h"
#include "bpf/ringbuf.h"
#include "common/fd.h"
#include "core/program_manager.h"
#include "modules/policy/l7/abi.h"
#include "modules/policy/l7/l7_module.h"
#include "support/cgroup.h"

namespace kagami::policy::l7 {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Logs every request line it reads (the access log), answers 200 with the
// path as the body, reads Content-Length bodies, keeps connections alive.
constexpr const char* kServer = R"PY(
import asyncio, sys
log = open(sys.argv[1], "a", buffering=1)
async def h(r, w):
    try:
        while True:
            head = await r.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            log.write(lines[0].decode(errors="replace") + "\n")
            n = 0
            for l in lines[1:]:
                if l.lower().startswith(b"content-length:"):
                    n = int(l.split(b":", 1)[1])
            if n:
                await r.readexactly(n)
            path = lines[0].split(b" ")[1]
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(path), path))
            await w.drain()
    except Exception:
        pass
    w.close()
async def main():
    ss = [await asyncio.start_server(h, "127.0.0.1", int(p)) for p in sys.argv[2:]]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in ss))
asyncio.run(main())
)PY";

constexpr uint16_t kPort = 18080;       // L7-policed
constexpr uint16_t kOpenPort = 18081;   // no L7 policy

std::string policy_yaml() {
  return R"(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts:
        - ports: [{port: "18080", protocol: TCP}]
          rules:
            http:
              - {method: GET, path: "/public/.*"}
              - {method: "POST|PUT", path: "/api/items"}
)";
}

class L7Live : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_BPF, CAP_NET_ADMIN: sockops, sk_skb, netns): run the test as root";
    ASSERT_FALSE(cg_.path().empty()) << cg_.error();
    dir_ = fs::temp_directory_path() / ("kagami-test-l7-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "server.py") << kServer;
    std::ofstream(dir_ / "web.yaml") << policy_yaml();
    log_ = dir_ / "access.log";
    std::ofstream(log_).close();

    // The server joins the cgroup before it creates its sockets.
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    server_ = fork();
    ASSERT_GE(server_, 0);
    if (server_ == 0) {
      std::ofstream(cg_.path() + "/cgroup.procs") << getpid() << std::flush;
      dup2(ready[1], 1);
      execlp("python3", "python3", (dir_ / "server.py").c_str(), log_.c_str(), std::to_string(kPort).c_str(),
             std::to_string(kOpenPort).c_str(), nullptr);
      _exit(127);
    }
    close(ready[1]);
    pollfd p{ready[0], POLLIN, 0};
    char buf[16] = {};
    const bool up = ::poll(&p, 1, 20000) == 1 && read(ready[0], buf, sizeof buf) > 0;
    close(ready[0]);
    ASSERT_TRUE(up) << "the python3 test server did not start";

    static std::atomic<int> seq{0};
    pin_root_ = "/sys/fs/bpf/kagami-test-l7-" + std::to_string(getpid()) + "-" + std::to_string(seq++);
    core::ManagerOptions o;
    o.pin_root = pin_root_;
    auto m = core::ProgramManager::create(o);
    ASSERT_TRUE(m) << m.error().message;
    pm_ = std::move(*m);
    section_ = {{"files", {(dir_ / "web.yaml").string()}},
                {"sample_rate", 100000},
                {"sample_burst", 100000},
                {"workloads",
                 {{{"name", "server"}, {"labels", {{"app", "server"}}}, {"cgroup", cg_.path()}, {"ips", {"127.0.0.1"}}},
                  {{"name", "client"}, {"labels", {{"app", "client"}}}, {"cgroup", "/x"}, {"ips", {"127.0.0.2"}}}}}};
    ctx_.name = kProgramName;
    ctx_.node = "test";
    auto reqs = module_.plan(section_, ctx_);
    ASSERT_TRUE(reqs) << reqs.error().message;
    ASSERT_EQ(reqs->size(), 1u);
    auto l = pm_->load((*reqs)[0]);
    ASSERT_TRUE(l) << l.error().message;
    auto c = module_.configure(*pm_);
    ASSERT_TRUE(c) << c.error().message;
  }

  void TearDown() override {
    if (server_ > 0) {
      kill(server_, SIGKILL);
      waitpid(server_, nullptr, 0);
    }
    if (pm_) {
      for (const auto& p : pm_->list()) (void)pm_->unload(p.name);
      pm_.reset();
    }
    std::error_code ec;
    if (!pin_root_.empty()) fs::remove_all(pin_root_, ec);
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  // A connection from `src` (a loopback address) to the server.
  Fd connect_from(const char* src, uint16_t port) {
    Fd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, src, &a.sin_addr);
    EXPECT_EQ(bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    a.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    EXPECT_EQ(connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
    return s;
  }

  // Reads until `responses` complete responses (head + Content-Length body)
  // arrived, the peer closed, or 3 s passed.
  static std::string read_responses(int fd, int responses) {
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    while (std::chrono::steady_clock::now() < deadline) {
      int complete = 0;
      size_t pos = 0;
      while (true) {
        size_t end = got.find("\r\n\r\n", pos);
        if (end == std::string::npos) break;
        size_t cl = got.find("Content-Length:", pos);
        size_t n = 0;
        if (cl != std::string::npos && cl < end) n = std::stoul(got.substr(cl + 15, end - cl - 15));
        if (got.size() < end + 4 + n) break;
        ++complete;
        pos = end + 4 + n;
      }
      if (complete >= responses) break;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      char buf[16384];
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0) break;
      got.append(buf, r);
    }
    return got;
  }

  std::string exchange(const char* src, const std::string& req, int responses = 1, uint16_t port = kPort) {
    Fd s = connect_from(src, port);
    EXPECT_EQ(write(s.get(), req.data(), req.size()), ssize_t(req.size()));
    return read_responses(s.get(), responses);
  }

  std::string access_log() {
    std::this_thread::sleep_for(100ms);  // the server writes after it read
    std::ifstream f(log_);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  uint64_t count(uint8_t reason, uint8_t verdict) {
    auto fd = pm_->map_fd(kProgramName, L7_MAP_STATS);
    EXPECT_TRUE(fd);
    auto v = bpf::MapView<l7_stat_key, l7_stat_val>::open(fd->get(), L7_MAP_STATS);
    EXPECT_TRUE(v);
    uint64_t n = 0;
    (void)v->for_each_summed([&](const l7_stat_key& k, const l7_stat_val& s) {
      if (k.reason == reason && k.verdict == verdict) n += s.requests;
    });
    return n;
  }

  test::TestCgroup cg_{"l7srv"};
  fs::path dir_, log_;
  pid_t server_ = -1;
  std::string pin_root_;
  std::unique_ptr<core::ProgramManager> pm_;
  nlohmann::json section_;
  core::ModuleContext ctx_;
  L7Module module_;
};

std::string get(const std::string& path, const std::string& method = "GET") {
  return method + " " + path + " HTTP/1.1\r\nHost: server.default\r\nUser-Agent: kagami-test\r\nAccept: */*\r\n\r\n";
}

TEST_F(L7Live, AllowedGetReachesTheServerDeniedGetsA403ItNeverSees) {
  const std::string ok = exchange("127.0.0.2", get("/public/index.html"));
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("/public/index.html"), std::string::npos);

  const std::string path = exchange("127.0.0.2", get("/admin/secret"));
  EXPECT_EQ(path.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u) << path;
  EXPECT_NE(path.find("Connection: close\r\n"), std::string::npos);
  const std::string method = exchange("127.0.0.2", get("/public/index.html", "DELETE"));
  EXPECT_EQ(method.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u) << method;
  // Allowed method and path, but from a source that is not `client`.
  const std::string src = exchange("127.0.0.3", get("/public/index.html"));
  EXPECT_EQ(src.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u) << src;
  // A POST with a body to an allowed path: the body reaches the server.
  const std::string post = exchange(
      "127.0.0.2", "POST /api/items HTTP/1.1\r\nHost: s\r\nContent-Length: 11\r\n\r\nhello world");
  EXPECT_EQ(post.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << post;

  const std::string log = access_log();
  EXPECT_NE(log.find("GET /public/index.html HTTP/1.1"), std::string::npos) << log;
  EXPECT_NE(log.find("POST /api/items HTTP/1.1"), std::string::npos) << log;
  EXPECT_EQ(log.find("/admin/secret"), std::string::npos) << log;
  EXPECT_EQ(log.find("DELETE"), std::string::npos) << log;
  // One allowed GET from client; the one from 127.0.0.3 never arrived.
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 2) << log;
  EXPECT_EQ(count(L7_R_RULE, L7_V_ALLOW), 2u);
  EXPECT_EQ(count(L7_R_NO_RULE, L7_V_DENY), 3u);
}

TEST_F(L7Live, PipelinedRequestsAreEachJudged) {
  const std::string three = get("/public/a") + get("/public/b") + get("/public/c");
  const std::string all = exchange("127.0.0.2", three, 3);
  auto occurrences = [](const std::string& h, const std::string& n) {
    size_t k = 0;
    for (size_t p = h.find(n); p != std::string::npos; p = h.find(n, p + 1)) ++k;
    return k;
  };
  EXPECT_EQ(occurrences(all, "HTTP/1.1 200 OK"), 3u) << all;
  EXPECT_NE(all.find("/public/c"), std::string::npos) << all;

  // A denied request between two allowed ones, in one segment: the server
  // sees the first one only; the client gets its 200 and a 403 with
  // Connection: close, and the request pipelined after the deny is dropped
  // (as after any server's "Connection: close": the client retries it on a
  // new connection, where it is judged again).
  const std::string mixed = get("/public/d") + get("/private/e") + get("/public/f");
  const std::string got = exchange("127.0.0.2", mixed, 2);
  EXPECT_EQ(occurrences(got, "HTTP/1.1 403 Forbidden"), 1u) << got;
  EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;
  EXPECT_EQ(occurrences(got, "HTTP/1.1 200 OK"), 1u) << got;
  EXPECT_NE(got.find("/public/d"), std::string::npos) << got;
  const std::string log = access_log();
  EXPECT_NE(log.find("GET /public/d"), std::string::npos) << log;
  EXPECT_EQ(log.find("/private/e"), std::string::npos) << log;
  EXPECT_EQ(log.find("/public/f"), std::string::npos) << log;
  EXPECT_GE(count(L7_R_POISONED, L7_V_DENY), 1u);
  for (const char* p : {"/public/a", "/public/b", "/public/c"}) EXPECT_NE(log.find(p), std::string::npos) << p;
}

TEST_F(L7Live, RequestLineSplitAcrossThreeSegmentsIsJudgedWhole) {
  for (const auto& [path, allowed] : {std::pair<std::string, bool>{"/private/split", false}, {"/public/split", true}}) {
    const std::string req = get(path);
    Fd s = connect_from("127.0.0.2", kPort);
    // "GE" | "T /pri" | the rest, with pauses: three TCP segments.
    const size_t cuts[] = {2, 8, req.size()};
    size_t at = 0;
    for (size_t c : cuts) {
      ASSERT_EQ(write(s.get(), req.data() + at, c - at), ssize_t(c - at));
      at = c;
      std::this_thread::sleep_for(150ms);
    }
    const std::string got = read_responses(s.get(), 1);
    if (allowed) EXPECT_EQ(got.rfind("HTTP/1.1 200 OK", 0), 0u) << got;
    else EXPECT_EQ(got.rfind("HTTP/1.1 403 Forbidden", 0), 0u) << got;
  }
  const std::string log = access_log();
  EXPECT_EQ(log.find("/private/split"), std::string::npos) << log;
  EXPECT_NE(log.find("/public/split"), std::string::npos) << log;
}

TEST_F(L7Live, OversizedHeadersAreDeniedAndCounted) {
  std::string big = "GET /public/x HTTP/1.1\r\nHost: s\r\nX-Big: " + std::string(L7_MAX_HEAD + 100, 'a') + "\r\n\r\n";
  const std::string got = exchange("127.0.0.2", big);
  EXPECT_EQ(got.rfind("HTTP/1.1 403 Forbidden", 0), 0u) << got.substr(0, 100);
  EXPECT_EQ(access_log().find("/public/x"), std::string::npos);
  EXPECT_GE(count(L7_R_OVERSIZED, L7_V_DENY), 1u);
  // Chunked bodies cannot be followed: denied by default and counted.
  const std::string ch = exchange("127.0.0.2",
                                  "POST /api/items HTTP/1.1\r\nHost: s\r\nUser-Agent: kagami-test\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(ch.rfind("HTTP/1.1 403 Forbidden", 0), 0u) << ch;
  EXPECT_EQ(count(L7_R_CHUNKED, L7_V_DENY), 1u);
}

TEST_F(L7Live, H2cPrefaceIsRefusedWithGoaway) {
  Fd s = connect_from("127.0.0.2", kPort);
  const std::string preface = std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string("\0\0\0\4\0\0\0\0\0", 9);
  ASSERT_EQ(write(s.get(), preface.data(), preface.size()), ssize_t(preface.size()));
  std::string got;
  pollfd p{s.get(), POLLIN, 0};
  while (got.size() < 24 && ::poll(&p, 1, 3000) == 1) {
    char buf[64];
    ssize_t r = read(s.get(), buf, sizeof buf);
    if (r <= 0) break;
    got.append(buf, r);
  }
  ASSERT_EQ(got.size(), 24u);
  EXPECT_EQ(uint8_t(got[2]), 15);  // length
  EXPECT_EQ(uint8_t(got[3]), 7);   // GOAWAY
  EXPECT_EQ(uint8_t(got[16]), 0x0d);  // HTTP_1_1_REQUIRED
  EXPECT_EQ(count(L7_R_H2C, L7_V_DENY), 1u);
  EXPECT_EQ(access_log().find("PRI"), std::string::npos);
}

TEST_F(L7Live, PortsWithoutL7PolicyAreUntouched) {
  const std::string got = exchange("127.0.0.3", get("/private/anything", "DELETE"), 1, kOpenPort);
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK", 0), 0u) << got;
  EXPECT_NE(access_log().find("DELETE /private/anything"), std::string::npos);
  EXPECT_EQ(count(L7_R_NO_RULE, L7_V_DENY), 0u);
}

TEST_F(L7Live, VerdictsAreFlowEventsAndMetrics) {
  (void)exchange("127.0.0.2", get("/public/ev"));
  (void)exchange("127.0.0.2", get("/private/ev"));
  auto srcs = module_.event_sources();
  ASSERT_EQ(srcs.size(), 1u);
  auto ev = pm_->map_fd(kProgramName, L7_MAP_EVENTS);
  ASSERT_TRUE(ev);
  std::vector<nlohmann::json> events;
  auto ring = bpf::RingBuffer::open({ev->get()}, [&](size_t, std::span<const uint8_t> rec) {
    auto j = srcs[0].decode(rec);
    EXPECT_TRUE(j) << j.error().message;
    if (j) events.push_back(*j);
  });
  ASSERT_TRUE(ring);
  (void)ring->consume();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["verdict"], "allow");
  EXPECT_EQ(events[0]["method"], "GET");
  EXPECT_EQ(events[0]["path"], "/public/ev");
  EXPECT_EQ(events[0]["rule"], "default/web:ingress[0].toPorts[0].http[0]");
  EXPECT_EQ(events[0]["source"]["workload"], "default/client");
  EXPECT_EQ(events[0]["destination"]["workload"], "default/server");
  EXPECT_EQ(events[0]["destination"]["port"], kPort);
  EXPECT_EQ(events[1]["verdict"], "deny");
  EXPECT_EQ(events[1]["reason"], "no_rule");
  EXPECT_EQ(events[1]["path"], "/private/ev");

  auto fams = module_.collect(*pm_);
  ASSERT_TRUE(fams) << fams.error().message;
  bool seen = false;
  for (const auto& f : *fams)
    if (f.name == "kagami_policy_l7_requests_total")
      for (const auto& s : f.samples)
        if (s.labels.at("reason") == "no_rule" && s.labels.at("verdict") == "deny" && s.value == 1) seen = true;
  EXPECT_TRUE(seen);
  auto snap = module_.snapshot(*pm_);
  ASSERT_TRUE(snap);
  EXPECT_EQ((*snap)["generation"], 1);
}

TEST_F(L7Live, PolicyUpdateSwitchesAtomicallyAndBadPolicyKeepsTheOld) {
  EXPECT_EQ(exchange("127.0.0.2", get("/private/x")).rfind("HTTP/1.1 403", 0), 0u);
  std::string p = policy_yaml();
  p.replace(p.find("/public/.*"), 10, "/private/.*");
  std::ofstream(dir_ / "web.yaml") << p;
  auto reqs = module_.plan(section_, ctx_);
  ASSERT_TRUE(reqs) << reqs.error().message;
  ASSERT_TRUE(module_.configure(*pm_));
  EXPECT_EQ(exchange("127.0.0.2", get("/private/x")).rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(exchange("127.0.0.2", get("/public/x")).rfind("HTTP/1.1 403", 0), 0u);
  // An invalid file fails plan() with file:line:col; the rules in force stay.
  p.replace(p.find("/private/.*"), 11, "/(a|b)");
  std::ofstream(dir_ / "web.yaml") << p;
  auto bad = module_.plan(section_, ctx_);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("web.yaml:12:"), std::string::npos) << bad.error().message;
  EXPECT_EQ(exchange("127.0.0.2", get("/private/y")).rfind("HTTP/1.1 200", 0), 0u);
}

}  // namespace
}  // namespace kagami::policy::l7
