#!/usr/bin/env bash
# Runs the whole test suite: the style checks (clang-format; clang-tidy, which
# also reports every clang-14 -Wthread-safety -Werror diagnostic), every unit,
# integration, Python and deployment test of the main build, then the
# batcher/server/health tests again under ASan+UBSan and under TSan, then
# each fuzzer for a bounded time (10 s each unless NPUK_FUZZ_SECONDS says
# otherwise). The ci, sanitizer and fuzz presets build with -g1 (line tables:
# sanitizer reports keep file:line; full -g costs a quarter more compile
# time on 2 cores). Set NPUK_SKIP_STYLE=1,
# NPUK_SKIP_SANITIZERS=1 or NPUK_SKIP_FUZZ=1 to skip those stages.
set -euo pipefail
cd "$(dirname "$0")/.."

preset=default
if [ "${CI:-}" = "true" ]; then preset=ci; fi
jobs=$(nproc)

# Each stage prints its start; the summary at the end gives the minutes each
# took (CI's budget is ~35 min on 2 cores).
timings=()
stage_name=""
stage_t0=$SECONDS
stage_end() {
  if [ -n "$stage_name" ]; then
    timings+=("$(printf '%5ds  %s' $((SECONDS - stage_t0)) "$stage_name")")
  fi
}
stage() {
  stage_end
  stage_name="$*"
  stage_t0=$SECONDS
  printf '\n=== %s\n' "$*"
}

if [ "${NPUK_SKIP_STYLE:-0}" != "1" ]; then
  stage "style: clang-format (scripts/check-format.sh)"
  scripts/check-format.sh
  # clang-tidy parses every shipped TU with the clang-tsa preset's compile
  # commands (clang-14, -Wall -Wextra -Wthread-safety -Werror), so any
  # compiler warning, thread-safety ones included, fails this stage as an
  # error: compiling those TUs again with clang would check nothing more.
  stage "style: clang-tidy + clang-14 -Wthread-safety -Werror (scripts/run-clang-tidy.sh)"
  cmake --preset clang-tsa >/dev/null
  cmake --build --preset clang-tsa --target npuk_generated_headers -j "$jobs"
  scripts/run-clang-tidy.sh build/clang-tsa
fi

stage "build ($preset)"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs"
stage "tests ($preset)"
ctest --preset "$preset" --timeout 900

if [ "${NPUK_SKIP_SANITIZERS:-0}" != "1" ]; then
  for s in asan tsan; do
    if [ "$s" = tsan ]; then
      # Debian's libabsl is not TSan-instrumented, so absl::Mutex is invisible
      # to TSan: build instrumented drop-ins (with a self-test) and use them.
      stage "TSan-instrumented abseil (scripts/tsan-abseil.sh)"
      scripts/tsan-abseil.sh
    fi
    stage "build ($s)"
    cmake --preset "$s" >/dev/null
    cmake --build --preset "$s" --target sanitize_tests -j "$jobs"
    stage "tests ($s: label sanitize)"
    (
      # No reruns: a test that fails under a sanitizer fails the run (a rerun
      # would hide a race). Reports from inside uninstrumented gRPC are
      # suppressed precisely in tests/tsan.supp; npukd's own report is in its
      # /tmp/npukd-test-*/npukd.log.
      if [ "$s" = tsan ]; then
        export LD_LIBRARY_PATH="$PWD/build/tsan-absl/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      fi
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" \
        ctest --preset "$s" --timeout 900
    )
  done
fi

if [ "${NPUK_SKIP_FUZZ:-0}" != "1" ] && [ -x tests/fuzz/run_fuzzers.sh ]; then
  # 10 s per harness over the committed corpus keeps CI in its budget; a
  # longer campaign: NPUK_FUZZ_SECONDS=600 tests/fuzz/run_fuzzers.sh.
  stage "fuzz (bounded, ${NPUK_FUZZ_SECONDS:-10} s per harness)"
  NPUK_FUZZ_SECONDS="${NPUK_FUZZ_SECONDS:-10}" tests/fuzz/run_fuzzers.sh
fi
stage_end
printf '\n=== stage times\n'
printf '%s\n' "${timings[@]}"
printf '%5ds  total\n' "$SECONDS"
printf '\n=== all tests passed\n'
