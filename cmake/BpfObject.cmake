# bpf_object(<name> <source.bpf.c>)
#
# Compiles one BPF C file into a CO-RE object with clang, then generates a
# libbpf skeleton from it with bpftool. Yields:
#   - ${CMAKE_BINARY_DIR}/bpf/<name>.bpf.o   (shipped and loadable on its own)
#   - ${CMAKE_BINARY_DIR}/bpf/<name>.skel.h  (embeds the object bytes)
#   - INTERFACE target <name>_skel that puts the skeleton on the include path.
#
# A function, not a macro (unlike libbpf-bootstrap's FindBpfObject), so no
# variable leaks between calls. Header dependencies come from clang -MD via
# DEPFILE, so editing bpf/lib/*.h or include/kagami/abi/*.h rebuilds exactly
# the objects that include them.
#
# vmlinux.h is pinned in bpf/include/vmlinux/<arch>/ rather than generated from
# the build host, so the build does not depend on the CI machine's kernel.

find_program(BPF_CLANG NAMES clang-19 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(BPF_TARGET_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(BPF_TARGET_ARCH arm64)
else()
  message(FATAL_ERROR "unsupported architecture for BPF: ${CMAKE_SYSTEM_PROCESSOR}")
endif()

set(KAGAMI_BPF_OUT ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${KAGAMI_BPF_OUT})

function(bpf_object name source)
  cmake_parse_arguments(ARG "" "" "EXTRA_FLAGS" ${ARGN})
  get_filename_component(src_abs ${source} ABSOLUTE)
  set(obj ${KAGAMI_BPF_OUT}/${name}.bpf.o)
  set(skel ${KAGAMI_BPF_OUT}/${name}.skel.h)
  set(dep ${KAGAMI_BPF_OUT}/${name}.bpf.d)

  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${BPF_TARGET_ARCH}
            -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
            -I${PROJECT_SOURCE_DIR}/bpf/include/vmlinux/${BPF_TARGET_ARCH}
            -I${PROJECT_SOURCE_DIR}/bpf/include
            -I${PROJECT_SOURCE_DIR}/bpf
            -I${PROJECT_SOURCE_DIR}/include
            -I${PROJECT_SOURCE_DIR}
            # UAPI headers (linux/bpf.h needs asm/types.h from the multiarch
            # dir) for programs that do without vmlinux.h
            -I/usr/include/${CMAKE_LIBRARY_ARCHITECTURE}
            ${ARG_EXTRA_FLAGS}
            -MD -MF ${dep}
            -c ${src_abs} -o ${obj}
    DEPFILE ${dep}
    DEPENDS ${src_abs}
    COMMENT "BPF ${name}.bpf.o"
    VERBATIM)

  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}.skel.h"
    VERBATIM)

  # An intermediate target, so that several consumers of the skeleton never
  # race on the custom command (bpftrace's BuildBPF note).
  add_custom_target(${name}_skel_gen DEPENDS ${skel} ${obj})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${KAGAMI_BPF_OUT})
  set_property(GLOBAL APPEND PROPERTY KAGAMI_BPF_OBJECTS ${obj})
endfunction()
