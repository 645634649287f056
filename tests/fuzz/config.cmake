# libFuzzer target for the config parser (KAGAMI_FUZZ=ON, clang only). The
# parser sources are compiled into the target itself so that libFuzzer's
# coverage instrumentation reaches them; the smoke test runs the seed corpus
# plus a short fuzzing session.
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  add_executable(config_fuzz ${CMAKE_CURRENT_LIST_DIR}/config_fuzz.cc
                             ${PROJECT_SOURCE_DIR}/src/agent/config.cc
                             ${PROJECT_SOURCE_DIR}/src/core/attach.cc)
  target_compile_options(config_fuzz PRIVATE -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer)
  target_link_options(config_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(config_fuzz PRIVATE kagami_common yaml-cpp nlohmann_json::nlohmann_json)
  add_test(NAME config_fuzz_smoke
           COMMAND config_fuzz -runs=20000 -max_len=4096 ${CMAKE_CURRENT_LIST_DIR}/corpus/config)
  set_tests_properties(config_fuzz_smoke PROPERTIES TIMEOUT 300 LABELS fuzz)
else()
  message(WARNING "KAGAMI_FUZZ=ON needs clang (CMAKE_CXX_COMPILER=clang++-19); config_fuzz not built")
endif()
