# libFuzzer target for the security policy parser and compiler
# (modules/security/policy.cc: YAML written by operators, read as root).
# KAGAMI_FUZZ=ON, clang. The parser, the identity classifier and the
# declared-workloads reader its selectors use are compiled in for coverage.
# Run: build/tests/fuzz/security_policy_fuzz -max_total_time=60
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  add_executable(security_policy_fuzz ${CMAKE_CURRENT_LIST_DIR}/security_policy_fuzz.cc
                 ${PROJECT_SOURCE_DIR}/modules/security/policy.cc
                 ${PROJECT_SOURCE_DIR}/modules/security/default_policy.cc
                 ${PROJECT_SOURCE_DIR}/src/identity/identity.cc
                 ${PROJECT_SOURCE_DIR}/src/identity/workloads.cc)
  target_compile_options(security_policy_fuzz PRIVATE -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer)
  target_link_options(security_policy_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(security_policy_fuzz PRIVATE kagami_common yaml-cpp)
  kagami_fuzz_smoke(security_policy_fuzz ${CMAKE_CURRENT_LIST_DIR}/corpus/security_policy)
endif()
