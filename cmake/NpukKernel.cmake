# npuk_kernel(NAME
#   SOURCES <the declaration kernel.cc, the host build of the AIE source, CPU paths...>
#   [AVX2_SOURCES <files compiled with -mavx2 -mfma on x86>]
#   [GOLDEN <golden/*.bin files>]
#   [LIBS <libraries>])
# Defines the static library npuk_kernel_<NAME> for one kernels/<NAME>/
# folder. Its kernel.cc defines npuk::kernels::<NAME>::Spec(); golden files
# are embedded as npuk_embedded_<NAME>_<stem> (kernels/registry/embedded.h).
function(npuk_kernel name)
  cmake_parse_arguments(K "" "" "SOURCES;AVX2_SOURCES;GOLDEN;LIBS" ${ARGN})
  set(embedded)
  foreach(g ${K_GOLDEN})
    get_filename_component(stem "${g}" NAME_WE)
    set(out "${CMAKE_CURRENT_BINARY_DIR}/embedded_${stem}.cc")
    add_custom_command(
      OUTPUT "${out}"
      COMMAND ${CMAKE_COMMAND} -DIN=${CMAKE_CURRENT_SOURCE_DIR}/${g}
              -DOUT=${out} -DSYMBOL=npuk_embedded_${name}_${stem}
              -P ${PROJECT_SOURCE_DIR}/cmake/NpukEmbed.cmake
      DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/${g}"
              "${PROJECT_SOURCE_DIR}/cmake/NpukEmbed.cmake"
      COMMENT "Embedding kernels/${name}/${g}"
      VERBATIM)
    list(APPEND embedded "${out}")
  endforeach()
  add_library(npuk_kernel_${name} STATIC ${K_SOURCES} ${K_AVX2_SOURCES}
              ${embedded})
  target_include_directories(npuk_kernel_${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(npuk_kernel_${name} PUBLIC npuk_kernel_spec ${K_LIBS})
  npuk_warnings(npuk_kernel_${name})
  if(K_AVX2_SOURCES AND CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|i.86")
    # Only these files may use AVX2; they are called after a run-time check.
    set_source_files_properties(${K_AVX2_SOURCES} PROPERTIES
      COMPILE_OPTIONS "-mavx2;-mfma")
  endif()
endfunction()
