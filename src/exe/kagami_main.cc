// The kagami executable: a thin shell over kagami_cli (src/cli). Everything
// it does is reachable from tests through the libraries.
#include "cli/cli.h"

int main(int argc, char** argv) { return kagami::cli::run(argc, argv); }
