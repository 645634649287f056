# Energy module costs (docs/performance.md, "Energy accounting"): context-
# switch overhead of the sched_switch/softirq programs on `perf bench sched
# pipe` against no programs, interleaved; and the cost of one scrape
# (map read + interval accounting + metrics) at 1,000 and 10,000 processes.
# Root.
add_executable(energy_bench ${CMAKE_CURRENT_LIST_DIR}/energy_bench.cc)
target_link_libraries(energy_bench PRIVATE kagami_mod_energy energy_skel energy_tp_skel)
