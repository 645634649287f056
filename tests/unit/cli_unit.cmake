kagami_test(cli_unit_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_test.cc DEPS kagami_cli LABELS unit)
