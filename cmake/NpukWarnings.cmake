# npuk_warnings(target): the project's warning set; errors when NPUK_WERROR.
# clang also checks the ABSL_GUARDED_BY / ABSL_EXCLUSIVE_LOCKS_REQUIRED
# annotations (-Wthread-safety); the `clang-tsa` preset builds everything that
# way with -Werror, and scripts/test.sh runs it in CI.
function(npuk_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic
    -Wno-missing-field-initializers
    $<$<CXX_COMPILER_ID:Clang>:-Wthread-safety>
    $<$<BOOL:${NPUK_WERROR}>:-Werror>)
endfunction()

# npuk_test(NAME SOURCES src... LIBS lib... [LABELS l...]): a GoogleTest
# binary registered with ctest, one ctest entry per test case.
function(npuk_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  npuk_warnings(${name})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gmock GTest::gtest_main)
  # gtest_discover_tests flattens PROPERTIES, so a test gets one label: the
  # sanitizer presets select on "sanitize", so that one wins when present.
  list(GET T_LABELS 0 label)
  if("sanitize" IN_LIST T_LABELS)
    set(label sanitize)
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "${label}" TIMEOUT 600)
  # Tests labelled "sanitize" also run under ASan+UBSan and TSan; the
  # `sanitize_tests` target builds exactly those.
  if("sanitize" IN_LIST T_LABELS)
    set_property(GLOBAL APPEND PROPERTY NPUK_SANITIZE_TARGETS ${name})
  endif()
endfunction()
