// CLI argument handling: every wrong command line gets "kagami: <cause>" on
// stderr and a non-zero exit, before anything reaches an agent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/cli.h"

namespace kagami::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Outcome {
  int rc;
  std::string out, err;
};

Outcome kagami(std::vector<std::string> args) {
  std::ostringstream out, err;
  int rc = run(args, out, err);
  return {rc, out.str(), err.str()};
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("KAGAMI_SOCKET");
    dir_ = fs::temp_directory_path() / ("kagami-cli-test-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    sock_ = (dir_ / "none.sock").string();
    obj_ = (dir_ / "x.bpf.o").string();
    std::ofstream(obj_) << "x";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  std::string sock_, obj_;
};

TEST_F(CliTest, NoCommand) {
  auto o = kagami({});
  EXPECT_EQ(o.rc, 2);
  EXPECT_THAT(o.err, StartsWith("kagami: "));
  EXPECT_THAT(o.err, HasSubstr("subcommand is required"));
}

TEST_F(CliTest, UnknownCommand) {
  auto o = kagami({"frobnicate"});
  EXPECT_EQ(o.rc, 2);
  EXPECT_THAT(o.err, StartsWith("kagami: "));
}

TEST_F(CliTest, HelpListsCommands) {
  auto o = kagami({"--help"});
  EXPECT_EQ(o.rc, 0);
  for (const char* c : {"agent", "prog", "probe", "apply", "status", "replay"}) EXPECT_THAT(o.out, HasSubstr(c));
  auto p = kagami({"prog", "--help"});
  EXPECT_EQ(p.rc, 0);
  for (const char* c : {"load", "replace", "list", "unload"}) EXPECT_THAT(p.out, HasSubstr(c));
}

TEST_F(CliTest, ProgLoadNeedsName) {
  auto o = kagami({"prog", "load", obj_, "--attach", "xdp:eth0"});
  EXPECT_EQ(o.rc, 2);
  EXPECT_THAT(o.err, StartsWith("kagami: "));
  EXPECT_THAT(o.err, HasSubstr("--name is required"));
}

TEST_F(CliTest, ProgLoadNeedsObject) {
  auto o = kagami({"prog", "load", "--name", "x"});
  EXPECT_EQ(o.rc, 2);
  EXPECT_THAT(o.err, HasSubstr("OBJ is required"));
}

TEST_F(CliTest, ProgLoadBadName) {
  auto o = kagami({"--socket", sock_, "prog", "load", obj_, "--name", "Bad Name"});
  EXPECT_EQ(o.rc, 1);
  EXPECT_EQ(o.err, "kagami: invalid --name 'Bad Name' (use [a-z0-9_-], 1 to 32 characters)\n");
}

TEST_F(CliTest, ProgLoadBadAttach) {
  auto o = kagami({"--socket", sock_, "prog", "load", obj_, "--name", "x", "--attach", "xpd:eth0"});
  EXPECT_EQ(o.rc, 1);
  EXPECT_THAT(o.err, StartsWith("kagami: invalid --attach 'xpd:eth0': "));
  EXPECT_THAT(o.err, HasSubstr("unknown hook kind 'xpd'"));
}

TEST_F(CliTest, ProgLoadMissingObject) {
  auto o = kagami({"--socket", sock_, "prog", "load", (dir_ / "nope.o").string(), "--name", "x"});
  EXPECT_EQ(o.rc, 1);
  EXPECT_EQ(o.err, "kagami: object " + (dir_ / "nope.o").string() + ": no such file\n");
}

TEST_F(CliTest, AgentNotRunning) {
  for (std::vector<std::string> cmd : {std::vector<std::string>{"prog", "list"},
                                       {"status"},
                                       {"status", "--json"},
                                       {"prog", "unload", "x"},
                                       {"apply"},
                                       {"prog", "load", obj_, "--name", "x", "--attach", "xdp:eth0"}}) {
    cmd.insert(cmd.begin(), {"--socket", sock_});
    auto o = kagami(cmd);
    EXPECT_EQ(o.rc, 1) << cmd[2];
    EXPECT_EQ(o.err, "kagami: agent not running (no socket at " + sock_ + ")\n") << cmd[2];
  }
}

TEST_F(CliTest, SocketOptionAfterSubcommandAndFromEnvironment) {
  auto o = kagami({"prog", "list", "--socket", sock_});
  EXPECT_EQ(o.err, "kagami: agent not running (no socket at " + sock_ + ")\n");
  setenv("KAGAMI_SOCKET", sock_.c_str(), 1);
  auto e = kagami({"status"});
  unsetenv("KAGAMI_SOCKET");
  EXPECT_EQ(e.err, "kagami: agent not running (no socket at " + sock_ + ")\n");
}

TEST_F(CliTest, ReplaceBadMigrate) {
  auto o = kagami({"--socket", sock_, "prog", "replace", "x", obj_, "--migrate", "counts=keep"});
  EXPECT_EQ(o.rc, 1);
  EXPECT_THAT(o.err, StartsWith("kagami: invalid --migrate 'counts=keep': unknown migration rule 'keep'"));
  auto p = kagami({"--socket", sock_, "prog", "replace", "x", obj_, "--migrate", "counts"});
  EXPECT_EQ(p.rc, 1);
  EXPECT_THAT(p.err, HasSubstr("expected MAP=RULE"));
}

TEST_F(CliTest, ApplyInvalidFileIsRejectedLocally) {
  const std::string f = (dir_ / "bad.yaml").string();
  std::ofstream(f) << "programs:\n  - name: a\n    object: x.bpf.o\n    attach: [xpd:eth0]\n";
  auto o = kagami({"--socket", sock_, "apply", f});
  EXPECT_EQ(o.rc, 1);
  EXPECT_THAT(o.err, StartsWith("kagami: " + f + ": programs[0].attach[0]: "));
  EXPECT_THAT(o.err, HasSubstr("(line 4)"));
}

TEST_F(CliTest, EveryCommandAcceptsJson) {
  for (std::vector<std::string> cmd :
       {std::vector<std::string>{"prog", "list"}, {"prog", "show", "x"}, {"prog", "unload", "x"}, {"status"},
        {"apply"}, {"prog", "replace", "x", obj_}, {"prog", "load", obj_, "-n", "x"}}) {
    cmd.insert(cmd.begin(), {"--socket", sock_});
    cmd.push_back("--json");
    auto o = kagami(cmd);
    EXPECT_THAT(o.err, HasSubstr("agent not running")) << cmd[2] << ": " << o.err;  // parsed, then no agent
  }
  auto r = kagami({"replay", "--json", (dir_ / "absent.pcap").string()});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, StartsWith("kagami: "));
}

TEST_F(CliTest, ModulesChecksWatchThenAsksTheAgent) {
  for (std::vector<std::string> cmd : {std::vector<std::string>{"modules"},
                                       {"modules", "--json"},
                                       {"modules", "--watch", "2", "--count", "1", "--section", "obs.gtpu"}}) {
    cmd.insert(cmd.begin(), {"--socket", sock_});
    auto o = kagami(cmd);
    EXPECT_EQ(o.rc, 1);
    EXPECT_EQ(o.err, "kagami: agent not running (no socket at " + sock_ + ")\n");
  }
  for (const char* bad : {"0", "-1", "abc", "2s"}) {
    auto o = kagami({"--socket", sock_, "modules", "--watch", bad});
    EXPECT_EQ(o.rc, 1) << bad;
    EXPECT_EQ(o.err, std::string("kagami: invalid --watch '") + bad + "': expected a positive number\n");
  }
}

TEST_F(CliTest, AgentRejectsInvalidConfigBeforeTouchingAnything) {
  const std::string f = (dir_ / "bad.yaml").string();
  std::ofstream(f) << "agent: {pin_root: /tmp/not-bpffs}\n";
  auto o = kagami({"agent", "--config", f});
  EXPECT_EQ(o.rc, 1);
  EXPECT_THAT(o.err, HasSubstr("agent.pin_root: '/tmp/not-bpffs' must be a directory under /sys/fs/bpf/ (line 1)"));
}

}  // namespace
}  // namespace kagami::cli
