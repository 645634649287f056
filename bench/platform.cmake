# Program-manager benchmarks: load+attach and replace times, and how they grow
# with the size of the state carried over. Needs root (loads programs).
add_executable(platform_bench ${CMAKE_CURRENT_LIST_DIR}/platform_bench.cc)
target_link_libraries(platform_bench PRIVATE kagami_core kagami_testsupport benchmark::benchmark)
target_compile_definitions(platform_bench PRIVATE KAGAMI_BPF_DIR="${PROJECT_BINARY_DIR}/bpf")
add_dependencies(platform_bench count_v1_skel count_v2_skel count_big_v1_skel count_big_v2_skel
                 count_big_v3_skel chain_count_skel)
