kagami_test(probe_kernel_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/probe_test.cc
            DEPS kagami_core kagami_testsupport LABELS kernel)
