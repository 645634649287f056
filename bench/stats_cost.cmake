# What an idle agent costs a BPF program it does not own (kernel BPF stats
# on or off): bench/stats_cost.cc. Needs root.
add_executable(stats_cost_bench ${CMAKE_CURRENT_LIST_DIR}/stats_cost.cc)
target_link_libraries(stats_cost_bench PRIVATE kagami_bpf benchmark::benchmark)
target_compile_definitions(stats_cost_bench PRIVATE KAGAMI_BINARY_DIR="${PROJECT_BINARY_DIR}"
                           KAGAMI_BPF_DIR="${PROJECT_BINARY_DIR}/bpf")
add_dependencies(stats_cost_bench kagami platform_skel)
