kagami_test(harness_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/harness_test.cc DEPS kagami_testsupport LABELS kernel)
