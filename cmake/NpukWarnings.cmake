# npuk_warnings(target): the project's warning set; errors when NPUK_WERROR.
# clang also checks the ABSL_GUARDED_BY / ABSL_EXCLUSIVE_LOCKS_REQUIRED
# annotations (-Wthread-safety); clang-tidy in CI (scripts/run-clang-tidy.sh)
# parses every shipped TU with the `clang-tsa` preset's commands, so these
# are errors there.
function(npuk_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic
    -Wno-missing-field-initializers
    $<$<CXX_COMPILER_ID:Clang>:-Wthread-safety>
    $<$<BOOL:${NPUK_WERROR}>:-Werror>)
endfunction()

# npuk_test(NAME SOURCES src... LIBS lib... [LABELS l...] [NO_TSAN]): a
# GoogleTest binary registered with ctest, one ctest entry per test case.
# NO_TSAN keeps a "sanitize" test out of the TSan run only (label
# "sanitize-no-tsan", which the asan test preset still selects): for
# single-threaded tests that reach code TSan cannot run against Debian's
# uninstrumented libraries, e.g. protobuf map reflection (map_field.h gives
# MapFieldBase extra members under TSan, so the TSan-built headers and
# libprotobuf.so disagree on its layout).
function(npuk_test name)
  cmake_parse_arguments(T "NO_TSAN" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  npuk_warnings(${name})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gmock GTest::gtest_main)
  # gtest_discover_tests flattens PROPERTIES, so a test gets one label: the
  # sanitizer presets select on "sanitize", so that one wins when present.
  list(GET T_LABELS 0 label)
  if("sanitize" IN_LIST T_LABELS)
    set(label sanitize)
    if(T_NO_TSAN)
      set(label sanitize-no-tsan)
    endif()
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "${label}" TIMEOUT 600)
  # Tests labelled "sanitize" also run under ASan+UBSan and TSan; the
  # `sanitize_tests` target builds exactly those.
  if("sanitize" IN_LIST T_LABELS)
    set_property(GLOBAL APPEND PROPERTY NPUK_SANITIZE_TARGETS ${name})
  endif()
endfunction()
