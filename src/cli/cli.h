// Entry point of the `kagami` command line: parses argv, dispatches to the
// agent (kagami agent), to a running agent over its control socket (prog,
// apply, status), or runs locally (probe, replay). Returns the exit code.
#pragma once

namespace kagami::cli {

int run(int argc, char** argv);

}  // namespace kagami::cli
