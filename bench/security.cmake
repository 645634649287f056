# The loops of the security overhead benchmark (bench/security_overhead.sh,
# docs/performance.md "Runtime security"): plain C++, no BPF of its own.
add_executable(security_loops ${CMAKE_CURRENT_LIST_DIR}/security_loops.cc)
