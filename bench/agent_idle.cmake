# Agent idle RSS/CPU (root): bench/agent_idle.cc runs the kagami binary.
add_executable(agent_idle_bench ${CMAKE_CURRENT_LIST_DIR}/agent_idle.cc)
target_link_libraries(agent_idle_bench PRIVATE kagami_testsupport benchmark::benchmark)
target_compile_definitions(agent_idle_bench PRIVATE KAGAMI_BINARY_DIR="${PROJECT_BINARY_DIR}")
add_dependencies(agent_idle_bench kagami platform_skel)
