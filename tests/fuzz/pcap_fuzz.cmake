# libFuzzer targets for replay's userspace decoders (KAGAMI_FUZZ=ON, clang).
# The sources under test are compiled into each fuzzer rather than linked
# from kagami_replay, so they get the fuzzer's coverage instrumentation and
# the fuzzer does not drag libbpf/BPF skeletons in. scripts/fuzz.sh builds
# and runs them; tests/unit/replay_fuzz_seeds_test.cc drives the same entry
# points in every build.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "KAGAMI_FUZZ=ON needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++-19")
endif()
foreach(t pcap_reader_fuzz pcap_render_fuzz)
  add_executable(${t} ${CMAKE_CURRENT_LIST_DIR}/${t}.cc ${CMAKE_CURRENT_LIST_DIR}/pcap_fuzz_entry.cc
                 ${PROJECT_SOURCE_DIR}/src/replay/pcap_reader.cc ${PROJECT_SOURCE_DIR}/src/replay/pcapng_source.cc
                 ${PROJECT_SOURCE_DIR}/src/replay/render.cc ${PROJECT_SOURCE_DIR}/src/replay/table.cc)
  target_include_directories(${t} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_options(${t} PRIVATE -fsanitize=fuzzer)
  target_link_options(${t} PRIVATE -fsanitize=fuzzer)
  target_link_libraries(${t} PRIVATE kagami_common PkgConfig::LIBPCAP nlohmann_json::nlohmann_json)
endforeach()
# A short run of each in CTest (scripts/fuzz.sh runs them for longer).
kagami_fuzz_smoke(pcap_reader_fuzz ${CMAKE_CURRENT_LIST_DIR}/corpus/pcap)
kagami_fuzz_smoke(pcap_render_fuzz ${CMAKE_CURRENT_LIST_DIR}/corpus/render)
