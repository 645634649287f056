kagami_test(replay_live_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/replay_live_test.cc
            DEPS kagami_replay kagami_testsupport LABELS integration)
