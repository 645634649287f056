# The README's first command, end to end: scripts/demo.sh runs the agent on
# the demo UPF and must show live GTP-U and PFCP counters as tables, then
# clean up, both when its time is up and when Ctrl-C (SIGINT) stops it.
add_test(NAME Demo.ShowsLiveN3N4Counters
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/demo_test.sh ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
set_tests_properties(Demo.ShowsLiveN3N4Counters PROPERTIES TIMEOUT 400 LABELS integration SKIP_RETURN_CODE 77)
