# libFuzzer target for the policy parsers and compiler (modules/policy:
# NetworkPolicy / KagamiNetworkPolicy YAML, CIDRs, port ranges). The sources
# are compiled in for coverage; policy_fuzz_smoke runs the seeds briefly.
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  add_executable(policy_fuzz ${CMAKE_CURRENT_LIST_DIR}/policy_fuzz.cc
                             ${PROJECT_SOURCE_DIR}/modules/policy/model.cc
                             ${PROJECT_SOURCE_DIR}/modules/policy/compile.cc)
  target_compile_options(policy_fuzz PRIVATE -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer)
  target_link_options(policy_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(policy_fuzz PRIVATE kagami_common yaml-cpp nlohmann_json::nlohmann_json)
  kagami_fuzz_smoke(policy_fuzz ${CMAKE_CURRENT_LIST_DIR}/corpus/policy)
endif()
