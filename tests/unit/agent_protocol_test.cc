// Control-socket protocol parsing and the socket server itself (a real unix
// socket in a temporary directory; the handler is a small echo table).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/control_socket.h"
#include "agent/protocol.h"

namespace kagami::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(Protocol, ParsesRequests) {
  auto r = parse_request(R"({"op":"prog.load","args":{"name":"x","attach":["xdp:eth0"]}})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->op, "prog.load");
  EXPECT_EQ(*arg_string(*r, "name"), "x");
  EXPECT_EQ(*arg_string_list(*r, "attach"), std::vector<std::string>{"xdp:eth0"});
  auto no_args = parse_request(R"({"op":"status"})");
  ASSERT_TRUE(no_args.has_value());
  EXPECT_TRUE(no_args->args.is_object());
}

TEST(Protocol, RejectsMalformedRequests) {
  EXPECT_THAT(parse_request("not json").error().message, HasSubstr("not valid JSON"));
  EXPECT_THAT(parse_request("[1,2]").error().message, HasSubstr("must be a JSON object"));
  EXPECT_THAT(parse_request(R"({"args":{}})").error().message, HasSubstr("'op' must be a non-empty string"));
  EXPECT_THAT(parse_request(R"({"op":7})").error().message, HasSubstr("'op' must be a non-empty string"));
  EXPECT_THAT(parse_request(R"({"op":"x","args":[1]})").error().message, HasSubstr("'args' must be an object"));
  EXPECT_THAT(parse_request(R"({"op":"x","extra":1})").error().message, HasSubstr("unknown key 'extra'"));
  auto r = parse_request(R"({"op":"prog.load","args":{"name":5,"attach":"xdp:eth0"}})");
  ASSERT_TRUE(r.has_value());
  EXPECT_THAT(arg_string(*r, "name").error().message, HasSubstr("prog.load: argument 'name' must be a string"));
  EXPECT_THAT(arg_string(*r, "object").error().message, HasSubstr("prog.load: missing argument 'object'"));
  EXPECT_THAT(arg_string_list(*r, "attach").error().message, HasSubstr("must be a list of strings"));
}

TEST(Protocol, ResponsesRoundTrip) {
  const std::string ok_line = encode_ok({{"a", 1}});
  EXPECT_EQ(ok_line.back(), '\n');
  auto r = parse_response(ok_line.substr(0, ok_line.size() - 1));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ((*r)["a"], 1);
  auto e = parse_response(encode_error("boom: no such device"));
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().message, "boom: no such device");
  EXPECT_FALSE(parse_response("{}").has_value());
  EXPECT_FALSE(parse_response("garbage").has_value());
  // Invalid UTF-8 in a message is replaced, never an exception.
  EXPECT_NO_THROW(encode_error(std::string("bad \xff byte")));
}

class SocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kagami-sock-test-" + std::to_string(getpid())) / "sub";
    path_ = (dir_ / "k.sock").string();
  }
  void TearDown() override { fs::remove_all(dir_.parent_path()); }
  static Result<nlohmann::json> echo(const Request& r) {
    if (r.op == "echo") return r.args;
    if (r.op == "throw") throw std::runtime_error("kaboom");
    return make_error("unknown op '{}'", r.op);
  }
  fs::path dir_;
  std::string path_;
};

TEST_F(SocketTest, ServesRequestsAndSetsModes) {
  ControlServer srv(path_, echo, geteuid());
  ASSERT_TRUE(srv.start().has_value());
  struct stat st{};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);  // created by the server

  auto r = call_agent(path_, "echo", {{"x", "y"}});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ((*r)["x"], "y");
  auto bad = call_agent(path_, "nope", nlohmann::json::object());
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message, "unknown op 'nope'");
  auto thrown = call_agent(path_, "throw", nlohmann::json::object());
  ASSERT_FALSE(thrown.has_value());
  EXPECT_THAT(thrown.error().message, HasSubstr("internal error: kaboom"));
  // The server survived all of that.
  EXPECT_TRUE(call_agent(path_, "echo", {{"n", 2}}).has_value());
  srv.stop();
  EXPECT_FALSE(fs::exists(path_));  // removed on stop
}

TEST_F(SocketTest, SeveralRequestsOnOneConnectionAndGarbage) {
  ControlServer srv(path_, echo, geteuid());
  ASSERT_TRUE(srv.start().has_value());
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  strcpy(a.sun_path, path_.c_str());
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  const std::string reqs = "{\"op\":\"echo\",\"args\":{\"i\":1}}\nthis is not json\n{\"op\":\"echo\",\"args\":{\"i\":2}}\n";
  ASSERT_EQ(write(fd, reqs.data(), reqs.size()), static_cast<ssize_t>(reqs.size()));
  shutdown(fd, SHUT_WR);
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(n));
  close(fd);
  EXPECT_EQ(got,
            "{\"ok\":true,\"result\":{\"i\":1}}\n"
            "{\"error\":\"request is not valid JSON\",\"ok\":false}\n"
            "{\"ok\":true,\"result\":{\"i\":2}}\n");
}

TEST_F(SocketTest, AgentNotRunning) {
  auto r = call_agent(path_, "status", nlohmann::json::object());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, "agent not running (no socket at " + path_ + ")");
}

TEST_F(SocketTest, StaleSocketReplacedLiveSocketRefused) {
  {
    ControlServer first(path_, echo, geteuid());
    ASSERT_TRUE(first.start().has_value());
    ControlServer second(path_, echo, geteuid());
    auto r = second.start();
    ASSERT_FALSE(r.has_value());
    EXPECT_THAT(r.error().message, HasSubstr("another agent is already listening on " + path_));
  }
  // A leftover socket file nobody listens on (a killed agent) is replaced.
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  strcpy(a.sun_path, path_.c_str());
  fs::create_directories(dir_);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  close(fd);
  ASSERT_TRUE(fs::exists(path_));
  ControlServer third(path_, echo, geteuid());
  ASSERT_TRUE(third.start().has_value());
  EXPECT_TRUE(call_agent(path_, "echo", nlohmann::json::object()).has_value());
}

TEST_F(SocketTest, RegularFileIsNeverReplaced) {
  fs::create_directories(dir_);
  { std::ofstream(path_) << "precious"; }
  ControlServer srv(path_, echo, geteuid());
  auto r = srv.start();
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("exists and is not a socket"));
}

TEST_F(SocketTest, OtherUidsAreRefusedByPeerCred) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to connect as another uid";
  ControlServer srv(path_, echo, 0);
  ASSERT_TRUE(srv.start().has_value());
  // Open the file and directory modes so that only SO_PEERCRED stands
  // between uid 65534 and the agent.
  chmod(dir_.c_str(), 0755);
  chmod(dir_.parent_path().c_str(), 0755);
  chmod(path_.c_str(), 0666);
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    auto r = call_agent(path_, "echo", nlohmann::json::object(), 5000);
    const std::string msg = r ? std::string("ACCEPTED") : r.error().message;
    (void)!write(pipefd[1], msg.data(), msg.size());
    _exit(0);
  }
  close(pipefd[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) msg.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(msg, "permission denied: the control socket accepts uid 0 only (you are uid 65534)");
}

}  // namespace
}  // namespace kagami::agent
