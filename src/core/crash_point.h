// Test-only crash injection for the crash-consistency tests.
//
// Every step that changes persistent kernel state (a pin, an unpin, an
// attach, a detach, a hook swap, a metadata write) and every write of the
// agent's state file calls crash_point() right after it. When the
// environment variable KAGAMI_TEST_CRASH_AFTER=N is set, the Nth such step
// kills the process with SIGKILL, exactly as `kill -9` would at that point.
// KAGAMI_TEST_STEP_DELAY_MS=N sleeps N ms at each step instead, so a test
// can hold an apply open (and check that /metrics does not wait for it).
// Unset (production), crash_point() only counts. Never set them outside tests.
#pragma once

#include <cstdint>

namespace kagami::core {

void crash_point(const char* what);
// Steps counted so far in this process (tests print it to know how many
// crash points an apply has).
uint64_t crash_points_passed();

}  // namespace kagami::core
