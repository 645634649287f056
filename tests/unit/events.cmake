# The event pipeline without the kernel (docs/events.md): bus, sinks,
# followers, stream function, config keys; and `kagami events` against a
# stand-in control socket.
kagami_test(events_unit_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/events_bus_test.cc
                                     ${CMAKE_CURRENT_LIST_DIR}/events_cli_test.cc
            DEPS kagami_cli kagami_agent LABELS unit)
