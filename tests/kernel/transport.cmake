# Transport module: kernel tests (root; both hook variants) and module/config tests.
kagami_test(transport_kernel_test
            SOURCES ${CMAKE_CURRENT_LIST_DIR}/transport_kernel_test.cc
                    ${CMAKE_CURRENT_LIST_DIR}/transport_module_test.cc
            DEPS kagami_mod_transport transport_skel transport_tp_skel kagami_testsupport LABELS kernel)
