kagami_test(identity_kernel_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/identity_test.cc
            DEPS kagami_core kagami_identity kagami_testsupport LABELS kernel)
