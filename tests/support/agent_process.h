// A `kagami agent` process for the integration tests that drive the real
// binary (exec, security, the agent's own): started with a config file, its
// stdout and stderr appended to a log, up once `kagami status --json`
// answers on its control socket (the HTTP address read back from there),
// stopped by a signal; the destructor kills it, so a failed assertion never
// leaves an agent behind.
#pragma once

#include <sys/types.h>

#include <csignal>

#include <chrono>
#include <string>

#include "support/shell.h"

namespace kagami::test {

class AgentProcess {
 public:
  // kagami: the binary; socket: the control socket the config names; log:
  // where the agent's output goes.
  AgentProcess(std::string kagami, std::string socket, std::string log)
      : kagami_(std::move(kagami)), socket_(std::move(socket)), log_(std::move(log)) {}
  ~AgentProcess() { stop(SIGKILL); }
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  // Starts `kagami agent --config <config>` and waits up to `timeout` for
  // its control socket. "" on success, else why (with the agent's log).
  std::string start(const std::string& config, std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Sends `sig` and reaps the agent: its exit code, -1 when it did not exit
  // normally (or was not running).
  int stop(int sig);
  // `kagami --socket <socket> <args>`.
  Cmd cli(const std::string& args) const { return sh(kagami_ + " --socket " + socket_ + " " + args); }

  const std::string& http() const { return http_; }  // host:port, after start()
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

 private:
  std::string kagami_, socket_, log_, http_;
  pid_t pid_ = -1;
};

}  // namespace kagami::test
