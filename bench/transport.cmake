# Transport module costs: the per-packet cgroup_skb program (BPF_PROG_TEST_RUN)
# and a scrape (collect) against the number of cgroups in the maps. Root.
add_executable(transport_bench ${CMAKE_CURRENT_LIST_DIR}/transport_bench.cc)
target_link_libraries(transport_bench PRIVATE kagami_mod_transport transport_skel benchmark::benchmark)
