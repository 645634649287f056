# kagami_library(<name> [DEPS <targets...>])
# A static library of every *.cc in the calling directory, linked PUBLIC to
# DEPS. A directory that has no sources yet yields an INTERFACE library, so
# the tree configures while a module is being written.
function(kagami_library name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  if(srcs)
    add_library(${name} STATIC ${srcs})
    target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  else()
    add_library(${name} INTERFACE)
    target_link_libraries(${name} INTERFACE ${ARG_DEPS})
  endif()
endfunction()

# kagami_test(<name> SOURCES ... DEPS ... [LABELS ...])
# One GoogleTest binary, registered per test case with a timeout so a hung
# kernel test cannot stall CI.
function(kagami_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    KAGAMI_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    KAGAMI_BINARY_DIR="${PROJECT_BINARY_DIR}"
    KAGAMI_BPF_DIR="${PROJECT_BINARY_DIR}/bpf")
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}")
endfunction()
