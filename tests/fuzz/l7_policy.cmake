# libFuzzer target for the L7 policy parsers and compiler
# (modules/policy/l7: CiliumNetworkPolicy rules.http, the path and method
# regex subsets). l7_policy_fuzz_smoke runs the seeds briefly.
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  add_executable(l7_policy_fuzz ${CMAKE_CURRENT_LIST_DIR}/l7_policy_fuzz.cc
                                ${PROJECT_SOURCE_DIR}/modules/policy/l7/l7_model.cc
                                ${PROJECT_SOURCE_DIR}/modules/policy/model.cc)
  target_compile_options(l7_policy_fuzz PRIVATE -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer)
  target_link_options(l7_policy_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(l7_policy_fuzz PRIVATE kagami_common yaml-cpp nlohmann_json::nlohmann_json)
  kagami_fuzz_smoke(l7_policy_fuzz ${CMAKE_CURRENT_LIST_DIR}/corpus/l7_policy)
endif()
