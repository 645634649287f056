kagami_test(identity_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/identity_test.cc DEPS kagami_identity LABELS unit)
