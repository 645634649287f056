# libFuzzer target for parse_cgroup_path / parse_proc_cgroup (KAGAMI_FUZZ=ON,
# clang). identity.cc is compiled in, so it gets the fuzzer's coverage
# instrumentation. Run: build/tests/fuzz/identity_fuzz -max_total_time=60
# The deterministic mutation test in tests/unit/identity_test.cc covers the
# same invariants in every build; identity_fuzz_smoke runs it briefly in CTest.
add_executable(identity_fuzz ${CMAKE_CURRENT_LIST_DIR}/identity_fuzz.cc
               ${PROJECT_SOURCE_DIR}/src/identity/identity.cc)
target_compile_options(identity_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_options(identity_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(identity_fuzz PRIVATE kagami_common)
kagami_fuzz_smoke(identity_fuzz ${CMAKE_CURRENT_LIST_DIR}/corpus/identity)
