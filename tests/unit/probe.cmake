kagami_test(probe_unit_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/probe_test.cc DEPS kagami_core LABELS unit)
