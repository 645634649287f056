# libFuzzer target for the sbi decoder (TCP reassembly, HTTP/2 framing +
# nghttp2 HPACK glue, HTTP/1.1). decoder.cc is compiled in, for coverage.
# Run: build-fuzz/tests/fuzz/sbi_fuzz -max_total_time=60 (scripts/fuzz.sh).
pkg_check_modules(NGHTTP2_FUZZ REQUIRED IMPORTED_TARGET libnghttp2)
add_executable(sbi_fuzz ${CMAKE_CURRENT_LIST_DIR}/sbi_fuzz.cc ${PROJECT_SOURCE_DIR}/modules/sbi/decoder.cc)
target_include_directories(sbi_fuzz PRIVATE ${PROJECT_SOURCE_DIR})
target_compile_options(sbi_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_options(sbi_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(sbi_fuzz PRIVATE kagami_common PkgConfig::NGHTTP2_FUZZ nlohmann_json::nlohmann_json fmt::fmt)
kagami_fuzz_smoke(sbi_fuzz ${CMAKE_CURRENT_LIST_DIR}/corpus/sbi)
