#include "support/agent_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include <nlohmann/json.hpp>

namespace kagami::test {

std::string AgentProcess::start(const std::string& config, std::chrono::milliseconds timeout) {
  if (pid_ > 0) return "the agent is already running (pid " + std::to_string(pid_) + ")";
  pid_ = ::fork();
  if (pid_ < 0) return "fork failed";
  if (pid_ == 0) {
    int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execl(kagami_.c_str(), "kagami", "agent", "--config", config.c_str(), nullptr);
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto s = cli("status --json");
    if (s.rc == 0) {
      auto j = nlohmann::json::parse(s.out, nullptr, false);
      if (!j.is_discarded() && j.contains("http") && j["http"].is_string()) {
        http_ = j["http"].get<std::string>();
        return "";
      }
    }
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {  // it died: no point waiting
      pid_ = -1;
      return "the agent exited (status " + std::to_string(st) + "); log:\n" + sh("cat " + log_).out;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return "the agent did not come up; log:\n" + sh("cat " + log_).out;
}

int AgentProcess::stop(int sig) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace kagami::test
