kagami_test(replay_pcap_reader_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/replay_pcap_reader_test.cc
            DEPS kagami_replay kagami_testsupport LABELS unit)
# The fuzz entry points over seeds + deterministic mutations: the g++ build's
# share of the fuzzing (tests/fuzz/pcap_fuzz.cmake has the libFuzzer targets).
kagami_test(replay_fuzz_seeds_test
            SOURCES ${CMAKE_CURRENT_LIST_DIR}/replay_fuzz_seeds_test.cc
                    ${PROJECT_SOURCE_DIR}/tests/fuzz/pcap_fuzz_entry.cc
            DEPS kagami_replay kagami_testsupport LABELS unit)
kagami_test(replay_render_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/replay_render_test.cc
            DEPS kagami_replay LABELS unit)
