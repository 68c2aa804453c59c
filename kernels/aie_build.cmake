# NPU side of kernels/: included at the end of kernels/CMakeLists.txt, after
# NPUK_KERNELS (the registration list) is set.
#  - tools/txn*: the instruction-stream encoder/validator, kernel packages,
#    npuk_txn_tool, and the npu-sim kernel package of every kernel (always
#    built);
#  - with -DNPUK_BUILD_AIE=ON: aiecc + Peano builds of every kernel in
#    NPUK_KERNELS into real kernel packages of its column design (one column
#    of 4 cores, the mem tile splitting items across them; kernels/README.md)
#    with a sequence for each of the design's batch sizes (`<design>.py
#    --sizes`).
#
# Per kernel <k> the AIE build uses kernels/<k>/<k>_design.py (the MLIR
# generator) and kernels/<k>/<k>_kernel.cc (the AIE C++ source), the names
# its KernelSpec::design declares. A kernel whose files are named otherwise
# sets, in kernels/<k>/CMakeLists.txt,
#   set(NPUK_KERNEL_<k>_DESIGN other_design.py PARENT_SCOPE)
#   set(NPUK_KERNEL_<k>_SOURCE other_kernel.cc PARENT_SCOPE)
# (relative to kernels/<k>/). Every generated MLIR file is linted against
# the declarations before aiecc sees it, so a mismatch fails the build.
#
# The designs are emitted in the syntax of the installed mlir-aie's era
# (aie_design.MODES), which kernels/tools/aie_era.py finds at configure time
# by asking aie-opt; -DNPUK_AIE_DESIGN_MODE=<mode> overrides it. Each core's
# stack_size is checked against the Peano object's measured frames
# (-fstack-size-section, kernels/tools/stack_sizes.py) before aiecc runs.
add_subdirectory(${CMAKE_CURRENT_LIST_DIR}/tools/txn
  ${CMAKE_CURRENT_BINARY_DIR}/tools/txn)
add_subdirectory(${CMAKE_CURRENT_LIST_DIR}/tools/txn_package
  ${CMAKE_CURRENT_BINARY_DIR}/tools/txn_package)
add_subdirectory(${CMAKE_CURRENT_LIST_DIR}/tools/txn_tool
  ${CMAKE_CURRENT_BINARY_DIR}/tools/txn_tool)

if(NOT NPUK_BUILD_AIE)
  return()
endif()

# --- aiecc + Peano build of the real npu1_1col kernel packages -------------
# Needs mlir-aie (aiecc) and llvm-aie (Peano); see kernels/README.md. Emits
# per kernel <build>/aie/kernels/<kernel>/{<kernel>.xclbin, insts_<N>.bin,
# manifest.json}, every insts validated by npuk_txn_tool, installed to
# lib/npukd/kernels (the xrt backend's default kernel_dir).
find_program(NPUK_AIECC NAMES aiecc aiecc.py
  HINTS ENV MLIR_AIE_INSTALL_DIR PATH_SUFFIXES bin)
set(NPUK_PEANO_DIR "$ENV{PEANO_INSTALL_DIR}" CACHE PATH
  "llvm-aie (Peano) install directory")
set(NPUK_AIE_PYTHON "python3" CACHE STRING
  "Python interpreter that has the mlir-aie wheel (its venv's python3)")
if(NOT NPUK_AIECC)
  message(FATAL_ERROR "NPUK_BUILD_AIE=ON but aiecc was not found: activate "
    "the mlir-aie environment (kernels/README.md) or set NPUK_AIECC")
endif()
if(NOT EXISTS "${NPUK_PEANO_DIR}/bin/clang++")
  message(FATAL_ERROR "NPUK_BUILD_AIE=ON but Peano was not found at "
    "NPUK_PEANO_DIR='${NPUK_PEANO_DIR}': pip install llvm-aie and set "
    "PEANO_INSTALL_DIR (kernels/README.md)")
endif()
execute_process(
  COMMAND ${NPUK_AIE_PYTHON} -c
    "from aie.utils.config import root_path; print(root_path())"
  OUTPUT_VARIABLE NPUK_MLIR_AIE_DIR OUTPUT_STRIP_TRAILING_WHITESPACE
  RESULT_VARIABLE _npuk_aie_rc)
if(NOT _npuk_aie_rc EQUAL 0)
  message(FATAL_ERROR "${NPUK_AIE_PYTHON} cannot import the mlir-aie wheel; "
    "set NPUK_AIE_PYTHON to the python3 of the mlir-aie venv")
endif()
get_filename_component(_npuk_aiecc_dir ${NPUK_AIECC} DIRECTORY)
find_program(NPUK_AIE_OPT NAMES aie-opt HINTS ${_npuk_aiecc_dir}
  ENV MLIR_AIE_INSTALL_DIR PATH_SUFFIXES bin)
# One of aie_design.MODES (func-link, core-link, aiex-seq, xy-memcpy).
set(NPUK_AIE_DESIGN_MODE "" CACHE STRING
  "mlir-aie era of the generated designs; empty = ask aie-opt")
if(NPUK_AIE_DESIGN_MODE STREQUAL "")
  if(NOT NPUK_AIE_OPT)
    message(FATAL_ERROR "NPUK_BUILD_AIE=ON but aie-opt was not found next to "
      "aiecc (${_npuk_aiecc_dir}): set NPUK_AIE_OPT, or pick the design syntax "
      "with -DNPUK_AIE_DESIGN_MODE=<mode> (kernels/README.md)")
  endif()
  execute_process(
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/tools/aie_era.py
      --aie-opt ${NPUK_AIE_OPT}
    OUTPUT_VARIABLE _npuk_mode OUTPUT_STRIP_TRAILING_WHITESPACE
    ERROR_VARIABLE _npuk_mode_err
    RESULT_VARIABLE _npuk_mode_rc)
  if(NOT _npuk_mode_rc EQUAL 0)
    message(FATAL_ERROR "cannot tell which design syntax ${NPUK_AIE_OPT} "
      "accepts:\n${_npuk_mode_err}\nSet -DNPUK_AIE_DESIGN_MODE=<mode> to "
      "override (kernels/README.md)")
  endif()
  set(_npuk_design_mode ${_npuk_mode})
else()
  set(_npuk_design_mode ${NPUK_AIE_DESIGN_MODE})
endif()
message(STATUS "AIE build: aiecc ${NPUK_AIECC}, Peano ${NPUK_PEANO_DIR}, "
  "mlir-aie ${NPUK_MLIR_AIE_DIR}, design mode ${_npuk_design_mode}")

set(_aie_out ${PROJECT_BINARY_DIR}/aie/kernels)
set(_aie_manifests)
set(_lint ${CMAKE_CURRENT_LIST_DIR}/tools/lint_sequences.py)
set(_stacks ${CMAKE_CURRENT_LIST_DIR}/tools/stack_sizes.py)
foreach(_k ${NPUK_KERNELS})
  set(_dir ${CMAKE_CURRENT_LIST_DIR}/${_k})
  set(_design ${_dir}/${_k}_design.py)
  if(DEFINED NPUK_KERNEL_${_k}_DESIGN)
    set(_design ${_dir}/${NPUK_KERNEL_${_k}_DESIGN})
  endif()
  set(_src ${_dir}/${_k}_kernel.cc)
  if(DEFINED NPUK_KERNEL_${_k}_SOURCE)
    set(_src ${_dir}/${NPUK_KERNEL_${_k}_SOURCE})
  endif()
  foreach(_f ${_design} ${_src})
    if(NOT EXISTS ${_f})
      message(FATAL_ERROR "AIE build of kernel '${_k}': ${_f} does not exist; "
        "name the files as KernelSpec::design does, or set "
        "NPUK_KERNEL_${_k}_DESIGN / NPUK_KERNEL_${_k}_SOURCE in "
        "kernels/${_k}/CMakeLists.txt (see kernels/aie_build.cmake)")
    endif()
  endforeach()
  # The batch sizes of this design: multiples of its cores x columns
  # (aie_design.batch_sizes; lint_sequences.py checks that the C++ side,
  # txn::BatchSizesFor, has the same).
  execute_process(
    COMMAND /usr/bin/python3 ${_design} --sizes
    OUTPUT_VARIABLE _sizes OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _sizes_rc)
  if(NOT _sizes_rc EQUAL 0 OR _sizes STREQUAL "")
    message(FATAL_ERROR "AIE build of kernel '${_k}': ${_design} --sizes "
      "failed; run it by hand to see why")
  endif()
  separate_arguments(_sizes)
  set(_work ${PROJECT_BINARY_DIR}/aie/work/${_k})
  # The object the design's link_with names: <source stem>.o.
  get_filename_component(_stem ${_src} NAME_WE)
  set(_obj ${_work}/${_stem}.o)
  file(MAKE_DIRECTORY ${_work})
  # The same kernel source the host build uses, compiled for the AIE2 core.
  add_custom_command(OUTPUT ${_obj}
    COMMAND ${NPUK_PEANO_DIR}/bin/clang++ -O2 -std=c++20
      --target=aie2-none-unknown-elf -Wno-parentheses -Wno-attributes
      -Wno-macro-redefined -Wno-empty-body -DNDEBUG
      # The tables in kernels/common are built by constexpr evaluation,
      # as in the host build (kernels/CMakeLists.txt).
      -fconstexpr-steps=100000000
      # Per-function sections and frame sizes for stack_sizes.py.
      -ffunction-sections -fdata-sections -fstack-size-section
      -I${PROJECT_SOURCE_DIR} -I${NPUK_MLIR_AIE_DIR}/include
      -MD -MF ${_obj}.d -c ${_src} -o ${_obj}
    DEPENDS ${_src}
    DEPFILE ${_obj}.d
    COMMENT "Peano: ${_stem}.o for AIE2")
  # The design's stack_size against the real frames, and the tile budget.
  set(_stack_ok ${_work}/${_stem}.stack_ok)
  add_custom_command(OUTPUT ${_stack_ok}
    COMMAND /usr/bin/python3 ${_stacks} --peano ${NPUK_PEANO_DIR}
      --object ${_obj} --design ${_design}
    COMMAND ${CMAKE_COMMAND} -E touch ${_stack_ok}
    DEPENDS ${_obj} ${_design} ${_stacks}
    COMMENT "stack size of ${_k} (Peano frames)")
  set(_insts_args)
  set(_insts_files)
  set(_first TRUE)
  foreach(_n ${_sizes})
    set(_mlir ${_work}/${_k}_n${_n}.mlir)
    set(_insts ${_work}/insts_${_n}.bin)
    set(_gen_flags)
    set(_outputs ${_insts})
    if(_first)
      # One xclbin serves every N: only the runtime sequence differs.
      set(_gen_flags --aie-generate-xclbin --xclbin-name=${_k}.xclbin)
      list(APPEND _outputs ${_work}/${_k}.xclbin)
      set(_first FALSE)
    endif()
    add_custom_command(OUTPUT ${_outputs}
      COMMAND /usr/bin/python3 ${_design} --n ${_n}
        --mode ${_npuk_design_mode} -o ${_mlir}
      COMMAND /usr/bin/python3 ${_lint} --txn-tool $<TARGET_FILE:npuk_txn_tool>
        ${_mlir}
      COMMAND ${NPUK_AIECC} --no-aiesim ${_gen_flags} --aie-generate-npu-insts
        --no-compile-host --no-xchesscc --no-xbridge --peano=${NPUK_PEANO_DIR}
        --npu-insts-name=insts_${_n}.bin ${_mlir}
      WORKING_DIRECTORY ${_work}
      DEPENDS ${_obj} ${_stack_ok} ${_design} ${_lint} npuk_txn_tool
        ${CMAKE_CURRENT_LIST_DIR}/tools/txn_design/aie_design.py
      COMMENT "aiecc: ${_k} N=${_n}")
    list(APPEND _insts_args ${_n}=${_insts})
    list(APPEND _insts_files ${_insts})
  endforeach()
  set(_manifest ${_aie_out}/${_k}/manifest.json)
  add_custom_command(OUTPUT ${_manifest}
    COMMAND npuk_txn_tool package ${_aie_out} ${_k} ${_work}/${_k}.xclbin
      ${_insts_args}
    DEPENDS npuk_txn_tool ${_insts_files} ${_work}/${_k}.xclbin
    COMMENT "kernel package ${_k} (validated)")
  list(APPEND _aie_manifests ${_manifest})
endforeach()
add_custom_target(npuk_aie_kernels ALL DEPENDS ${_aie_manifests})
install(DIRECTORY ${_aie_out}/ DESTINATION lib/npukd/kernels)
