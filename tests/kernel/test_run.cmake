kagami_test(test_run_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_run_test.cc
            DEPS kagami_bpf platform_skel kagami_testsupport LABELS kernel)
kagami_test(map_read_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/map_read_test.cc
            DEPS kagami_bpf kagami_testsupport LABELS kernel)
