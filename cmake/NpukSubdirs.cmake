# npuk_add_child_dirs(): add_subdirectory() every child folder that has a
# CMakeLists.txt, so each component owns its own build file.
macro(npuk_add_child_dirs)
  file(GLOB _npuk_children LIST_DIRECTORIES true RELATIVE
       ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT _npuk_children)
  foreach(_c ${_npuk_children})
    if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${_c} AND
       EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${_c}/CMakeLists.txt)
      add_subdirectory(${_c})
    endif()
  endforeach()
endmacro()
