# Replay throughput through the obs programs (root); bench/replay_vs_tshark.sh
# compares the whole `kagami replay` command with tshark.
add_executable(replay_bench ${CMAKE_CURRENT_LIST_DIR}/replay_bench.cc)
target_link_libraries(replay_bench PRIVATE kagami_replay benchmark::benchmark)
target_compile_definitions(replay_bench PRIVATE KAGAMI_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_include_directories(replay_bench PRIVATE ${PROJECT_SOURCE_DIR}/tests)
