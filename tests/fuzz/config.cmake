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
  kagami_fuzz_smoke(config_fuzz ${CMAKE_CURRENT_LIST_DIR}/corpus/config)
else()
  message(WARNING "KAGAMI_FUZZ=ON needs clang (CMAKE_CXX_COMPILER=clang++-19); config_fuzz not built")
endif()
