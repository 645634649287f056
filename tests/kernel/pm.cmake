# Program manager kernel tests (need root; run, not skip, as root).
foreach(t pm_load_test pm_replace_test pm_chain_test pm_trust_test pm_errors_test pm_crash_test pm_stats_test)
  kagami_test(${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/${t}.cc
              DEPS kagami_core kagami_testsupport LABELS kernel TIMEOUT 600)
  add_dependencies(${t} count_v1_skel count_v2_skel count_v3_skel count_small_skel chain_count_skel
                   hooks_skel rejected_skel platform_skel xdp_counter_example_skel big_map_skel)
endforeach()
