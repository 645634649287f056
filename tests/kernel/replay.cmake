kagami_test(replay_truth_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/replay_truth_test.cc
            DEPS kagami_replay kagami_testsupport LABELS kernel)
kagami_test(replay_mutation_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/replay_mutation_test.cc
            DEPS kagami_replay kagami_testsupport LABELS kernel)
kagami_test(replay_driver_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/replay_driver_test.cc
            DEPS kagami_replay platform_skel kagami_testsupport LABELS kernel)
