kagami_test(core_attach_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/core_attach_test.cc
            DEPS kagami_core LABELS unit)
kagami_test(core_elf_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/core_elf_test.cc
            DEPS kagami_bpf LABELS unit)
add_dependencies(core_elf_test count_v1_skel)
kagami_test(core_config_section_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/core_config_section_test.cc
            DEPS kagami_core LABELS unit)
