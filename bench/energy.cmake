# Energy module costs (docs/performance.md, "Energy accounting"): context-
# switch overhead of the sched_switch/softirq programs on `perf bench sched
# pipe` against no programs and against empty programs on the same hooks
# (the floor), interleaved; and the cost of one scrape (map read + interval
# accounting + metrics) at 1,000 and 10,000 processes. Root.
bpf_object(energy_floor ${CMAKE_CURRENT_LIST_DIR}/bpf/energy_floor.bpf.c)
add_executable(energy_bench ${CMAKE_CURRENT_LIST_DIR}/energy_bench.cc)
target_link_libraries(energy_bench PRIVATE kagami_mod_energy energy_skel energy_tp_skel energy_pmu_skel energy_tp_pmu_skel energy_floor_skel)
