# The agent end to end (root): the kagami binary as a subprocess, netns test
# hosts, promtool as the judge of /metrics.
kagami_test(agent_integration_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/agent_integration_test.cc
            DEPS kagami_testsupport nlohmann_json::nlohmann_json LABELS integration TIMEOUT 300)
add_dependencies(agent_integration_test kagami platform_skel)

# Hostile clients and paths against the real agent (issue 8): deep JSON,
# non-regular config paths, slow and flooding HTTP and control-socket clients.
kagami_test(agent_hostile_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/agent_hostile_test.cc
            DEPS kagami_testsupport nlohmann_json::nlohmann_json LABELS integration TIMEOUT 300)
add_dependencies(agent_hostile_test kagami platform_skel)
# Crash consistency of an apply: the agent killed after each kernel step
# (KAGAMI_TEST_CRASH_AFTER, test-only), restarted, checked against the kernel.
kagami_test(agent_crash_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/agent_crash_test.cc
            DEPS kagami_testsupport kagami_common nlohmann_json::nlohmann_json PkgConfig::LIBBPF
            LABELS integration TIMEOUT 900)
add_dependencies(agent_crash_test kagami kcrash_v1_skel kcrash_v2_skel)
