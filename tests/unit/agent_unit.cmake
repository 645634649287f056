# Agent unit tests: pure C++ (config, plan, /metrics rendering, socket
# protocol). They link kagami_agent, but only the objects they use are pulled
# from the archive, so they need neither the kernel nor the modules.
kagami_test(agent_unit_test
            SOURCES ${CMAKE_CURRENT_LIST_DIR}/agent_config_test.cc
                    ${CMAKE_CURRENT_LIST_DIR}/agent_plan_test.cc
                    ${CMAKE_CURRENT_LIST_DIR}/agent_metrics_test.cc
                    ${CMAKE_CURRENT_LIST_DIR}/agent_protocol_test.cc
            DEPS kagami_agent LABELS unit)

# The config fuzz entry point under g++, over the seed corpus and
# deterministic mutations (tests/fuzz/config_fuzz.cc is the libFuzzer target).
kagami_test(agent_config_fuzz_test
            SOURCES ${CMAKE_CURRENT_LIST_DIR}/agent_config_fuzz_test.cc
                    ${PROJECT_SOURCE_DIR}/tests/fuzz/config_fuzz.cc
            DEPS kagami_agent LABELS unit TIMEOUT 600)

# Hostile inputs and clients (issue 8), in process and without root: paths
# that are not regular files, deep JSON/YAML, trickling and flooding clients
# of the control socket and the HTTP server, streaming routes.
kagami_test(agent_hardening_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/agent_hardening_test.cc
            DEPS kagami_agent LABELS unit)
