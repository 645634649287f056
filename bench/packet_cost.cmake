# Per-packet cost of the obs programs vs the empty baselines (root).
add_executable(packet_cost_bench ${CMAKE_CURRENT_LIST_DIR}/packet_cost_bench.cc)
target_link_libraries(packet_cost_bench PRIVATE kagami_mod_obs kagami_bpf platform_skel kagami_testsupport
                      benchmark::benchmark)
