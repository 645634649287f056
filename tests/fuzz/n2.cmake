# libFuzzer target for the n2 module's userspace decoders (NGAP walk, NAS-5GS,
# PFCP reader, Tracker with the 5G context join). Run: build-fuzz/tests/fuzz/n2_decode_fuzz -max_total_time=60
# scripts/fuzz.sh seeds it with the NGAP messages of the shared captures.
add_executable(n2_decode_fuzz ${CMAKE_CURRENT_LIST_DIR}/n2_decode_fuzz.cc
               ${PROJECT_SOURCE_DIR}/modules/n2/decode.cc ${PROJECT_SOURCE_DIR}/modules/n2/tracker.cc
               ${PROJECT_SOURCE_DIR}/modules/n2/pfcp.cc ${PROJECT_SOURCE_DIR}/src/core/session_directory.cc)
target_include_directories(n2_decode_fuzz PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include
                           ${PROJECT_SOURCE_DIR}/src)
target_compile_options(n2_decode_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_options(n2_decode_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(n2_decode_fuzz PRIVATE kagami_common)
# Each input also dumps the tracker's records, sections and KPIs as JSON
# (~4.5 ms per run under ASan), so the smoke run takes 4,000 inputs, not the
# default 20,000 (156 s, too near the 300 s test timeout); libFuzzer keeps
# the last -runs given.
kagami_fuzz_smoke(n2_decode_fuzz ${CMAKE_CURRENT_LIST_DIR}/corpus/n2 -runs=4000)
