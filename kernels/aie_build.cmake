# NPU side of kernels/: included at the end of kernels/CMakeLists.txt.
#  - tools/txn*: the instruction-stream encoder/validator, kernel packages,
#    npuk_txn_tool, and the npu-sim kernel packages (always built);
#  - the runtime-sequence lint (ctest);
#  - with -DNPUK_BUILD_AIE=ON: aiecc + Peano builds of mel and attention
#    into real npu1_1col kernel packages (see kernels/README.md).
add_subdirectory(${CMAKE_CURRENT_LIST_DIR}/tools/txn
  ${CMAKE_CURRENT_BINARY_DIR}/tools/txn)
add_subdirectory(${CMAKE_CURRENT_LIST_DIR}/tools/txn_package
  ${CMAKE_CURRENT_BINARY_DIR}/tools/txn_package)
add_subdirectory(${CMAKE_CURRENT_LIST_DIR}/tools/txn_tool
  ${CMAKE_CURRENT_BINARY_DIR}/tools/txn_tool)
