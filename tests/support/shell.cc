#include "support/shell.h"

#include <sys/wait.h>

#include <cstdio>

namespace kagami::test {

Cmd sh(const std::string& cmd) {
  Cmd c{-1, {}};
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return c;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) c.out.append(buf, n);
  int st = pclose(p);
  c.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return c;
}

}  // namespace kagami::test
