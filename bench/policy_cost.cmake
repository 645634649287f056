# Per-packet cost of the policy datapath with 0, 10, 1,000 and 100,000 CIDR
# rules vs the platform's empty TC program (BPF_PROG_TEST_RUN; root).
add_executable(policy_cost_bench ${CMAKE_CURRENT_LIST_DIR}/policy_cost_bench.cc)
target_link_libraries(policy_cost_bench PRIVATE kagami_mod_policy kagami_bpf platform_skel kagami_testsupport)
