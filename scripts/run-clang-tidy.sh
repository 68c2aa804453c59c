#!/usr/bin/env bash
# Runs clang-tidy 14 with the checked-in .clang-tidy over the project's own
# C++ sources (server/, kernels/, client/, tests/, bench/ and their headers;
# not generated code), using a build's compile_commands.json. Any finding is
# an error (WarningsAsErrors: '*').
#   scripts/run-clang-tidy.sh [BUILD_DIR [FILE_REGEX...]]
# BUILD_DIR defaults to build/clang-tsa; FILE_REGEX (Python regexes matched
# against absolute paths, e.g. server/rpc/) narrows the run to some files.
# The generated *.pb.h must exist: `cmake --build build/clang-tsa --target
# npuk_generated_headers` makes them (scripts/test.sh does). The compile commands
# carry -Wthread-safety -Werror, so clang's thread-safety analysis and every
# other compiler warning are reported here as errors too.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-build/clang-tsa}

for t in clang-tidy-14 run-clang-tidy-14; do
  command -v "$t" >/dev/null 2>&1 ||
    { echo "run-clang-tidy: $t not found (apt-get install clang-tidy-14)" >&2; exit 2; }
done
[ -f "$build/compile_commands.json" ] || {
  echo "run-clang-tidy: no $build/compile_commands.json; first run" >&2
  echo "  cmake --preset clang-tsa && cmake --build --preset clang-tsa --target npuk_generated_headers" >&2
  exit 2
}

# The shipped code: server/, client/, kernels/ and bench/ sources and every
# project header they include. Not the tests (*_test.cc, tests/): each
# gtest TU costs ~25 s of CPU here, and the compiler builds (-Werror, clang
# -Wthread-safety) and the sanitizers cover them. Not the generated golden
# table (kernels/golden/golden_data.cc, written by make_golden), nor build/.
# run-clang-tidy matches this Python regex against the absolute paths in
# compile_commands.json.
dirs='(server|kernels|client|bench)'
files=("^$root/(?!kernels/golden/golden_data\\.cc)(?!.*_test\\.cc\$)$dirs/")
if [ "$#" -gt 1 ]; then files=("${@:2}"); fi
t0=$SECONDS
if ! run-clang-tidy-14 -quiet -j "${NPUK_TIDY_JOBS:-$(nproc)}" \
    -clang-tidy-binary "$(command -v clang-tidy-14)" \
    -p "$build" -header-filter="^$root/(server|kernels|client|tests|bench)/" "${files[@]}" >"$build/clang-tidy.log" 2>&1; then
  # Only the findings, without colours or the clang-tidy command lines.
  sed 's/\x1b\[[0-9;]*m//g' "$build/clang-tidy.log" | grep -v -e '-header-filter=' -e ' warnings generated\.$' |
    grep -E -A4 '(warning|error): ' | head -150 >&2
  echo "run-clang-tidy: findings above (full log: $build/clang-tidy.log)." >&2
  echo "  Fix the code; if a check does not fit this code base, disable it in .clang-tidy with a comment saying why." >&2
  exit 1
fi
n=$(grep -c -e '-header-filter=' "$build/clang-tidy.log" || true)
echo "run-clang-tidy: $n files clean ($((SECONDS - t0)) s)"
