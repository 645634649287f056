// Entry point of the `kagami` command line: parses argv, dispatches to the
// agent (kagami agent), to a running agent over its control socket (prog,
// apply, status), or runs locally (probe, replay). Returns the exit code:
// 0 success, 1 the operation failed, 2 the command line was wrong.
//
// Commands and their arguments are one declarative table in cli.cc (the
// xdp-filter cmds[] idea); docs/cli.md describes the same table. Every
// command accepts --json (machine-readable stdout) and the global
// --socket PATH (default /run/kagami/kagami.sock, or $KAGAMI_SOCKET).
// Errors go to stderr as "kagami: <message>".
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace kagami::cli {

int run(int argc, char** argv);

// The same with explicit streams (argv[0] excluded), for tests.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace kagami::cli
