kagami_test(obs_kernel_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/obs_kernel_test.cc
            DEPS kagami_mod_obs kagami_testsupport LABELS kernel)
kagami_test(obs_live_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/obs_live_test.cc
            DEPS kagami_mod_obs kagami_core kagami_testsupport LABELS kernel)
kagami_test(obs_vlan_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/obs_vlan_test.cc
            DEPS kagami_mod_obs kagami_replay kagami_testsupport LABELS kernel)
