// Running commands from tests: a shell command's exit code and its output
// (stdout and stderr together), for the tests that drive the real `kagami`
// binary and judge it with curl, promtool, tshark or bpftool.
#pragma once

#include <string>

namespace kagami::test {

struct Cmd {
  int rc;           // exit code; -1 when the command could not run or was killed
  std::string out;  // stdout and stderr
};

// Runs `cmd` through /bin/sh and waits for it.
Cmd sh(const std::string& cmd);

}  // namespace kagami::test
