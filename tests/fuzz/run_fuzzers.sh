#!/usr/bin/env bash
# Builds the libFuzzer harnesses (configure preset `fuzz`: clang-14,
# ASan+UBSan) and runs each for a bounded time over its committed corpus,
# with leak detection on. Exits non-zero on any crash, leak, timeout or
# out-of-memory, and prints one summary line per harness.
#   NPUK_FUZZ_SECONDS=60   time per harness (default 60)
#   NPUK_FUZZ_JOBS=N       build parallelism (default: nproc)
# New inputs go to build/fuzz/corpus/<harness>/ (the repo corpus is only
# read); crash reproducers to build/fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${NPUK_FUZZ_SECONDS:-60}"
jobs="${NPUK_FUZZ_JOBS:-$(nproc)}"
build=build/fuzz
harnesses=(request txn config)

echo "fuzz: configure + build (preset fuzz, targets fuzz_all)"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target fuzz_all -j "$jobs" | tail -n 3

mkdir -p "$build/artifacts"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

failed=0
summary=()
for h in "${harnesses[@]}"; do
  bin="$build/tests/fuzz/${h}_fuzzer"
  work="$build/corpus/$h"
  log="$build/${h}_fuzzer.log"
  mkdir -p "$work"
  echo "fuzz: ${h}_fuzzer for ${seconds}s"
  set +e
  timeout --kill-after=10 $((seconds + 60)) "$bin" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -detect_leaks=1 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/${h}-" \
    "$work" "tests/fuzz/corpus/$h" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  corpus=$(find "$work" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    summary+=("PASS ${h}_fuzzer: ${runs:-?} runs, cov ${cov:-?}, ${corpus} new inputs")
  else
    failed=1
    summary+=("FAIL ${h}_fuzzer (exit $rc): see $log and $build/artifacts/")
    grep -E 'ERROR: |SUMMARY: |runtime error' "$log" | head -n 5 || true
  fi
done

echo "fuzz summary (${seconds}s each):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
