#include "cli/cli.h"

#include <CLI/CLI.hpp>

namespace kagami::cli {

int run(int argc, char** argv) {
  CLI::App app{"kagami: eBPF platform for cloud-native 5G networks"};
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);
  return 0;
}

}  // namespace kagami::cli
