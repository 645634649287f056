// Where the public 5G captures are: $KAGAMI_PCAPS, else ../shared/pcaps beside
// the source tree (as CI lays it out). Tests that need them skip visibly,
// naming this folder, when it is absent.
#pragma once

#include <cstdlib>
#include <string>

namespace kagami::test {

inline std::string pcaps_dir() {
  if (const char* e = std::getenv("KAGAMI_PCAPS")) return e;
#ifdef KAGAMI_SOURCE_DIR
  return std::string(KAGAMI_SOURCE_DIR) + "/../shared/pcaps";
#else
  return "../shared/pcaps";
#endif
}

}  // namespace kagami::test
