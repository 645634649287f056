# Per-packet cost of the n2 TC program vs the empty TC program (root), and
# the replay-vs-tshark comparison script (bench/n2_replay_vs_tshark.sh).
add_executable(n2_packet_cost_bench ${CMAKE_CURRENT_LIST_DIR}/n2_packet_cost_bench.cc)
target_link_libraries(n2_packet_cost_bench PRIVATE kagami_mod_n2 kagami_bpf platform_skel kagami_testsupport
                      benchmark::benchmark)
