kagami_test(obs_abi_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/obs_abi_test.cc
            DEPS kagami_testsupport obs_skel PkgConfig::LIBBPF LABELS unit)
kagami_test(obs_module_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/obs_module_test.cc
            DEPS kagami_modules kagami_mod_obs kagami_testsupport LABELS unit)
