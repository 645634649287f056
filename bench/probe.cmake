# Feature-probe and workload-identity benchmarks: what `kagami probe` and
# agent start-up pay for probing, and what a cgroup id lookup costs. Needs
# root (trial loads).
add_executable(probe_bench ${CMAKE_CURRENT_LIST_DIR}/probe_bench.cc)
target_link_libraries(probe_bench PRIVATE kagami_core kagami_identity benchmark::benchmark)
