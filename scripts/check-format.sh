#!/usr/bin/env bash
# Checks that every tracked C++ file (*.cc, *.h) is formatted as .clang-format
# (Google style) says, with Debian 12's clang-format 14. Changes nothing.
#   scripts/check-format.sh          check; exit 1 and list the files if not
#   scripts/check-format.sh --fix    reformat those files in place
set -euo pipefail
cd "$(dirname "$0")/.."

fmt=${CLANG_FORMAT:-clang-format-14}
command -v "$fmt" >/dev/null 2>&1 ||
  { echo "check-format: $fmt not found (apt-get install clang-format-14)" >&2; exit 2; }

# Generated sources are formatted by their generator, not by hand:
# kernels/golden/golden_data.cc is written by kernels/tools/make_golden.
mapfile -t files < <(git ls-files -- '*.cc' '*.h' ':!:kernels/golden/golden_data.cc')
[ "${#files[@]}" -gt 0 ] || { echo "check-format: no tracked *.cc/*.h files" >&2; exit 2; }

if [ "${1:-}" = "--fix" ]; then
  "$fmt" -i --style=file -- "${files[@]}"
  echo "check-format: formatted ${#files[@]} files"
  exit 0
fi

# One run over all files; --dry-run reports each difference as
# "FILE:LINE:COL: error: code should be clang-formatted".
report=$("$fmt" --style=file --dry-run -Werror -- "${files[@]}" 2>&1) && rc=0 || rc=$?
mapfile -t bad < <(printf '%s\n' "$report" |
  sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' | sort -u)
if [ "$rc" -ne 0 ] && [ "${#bad[@]}" -eq 0 ]; then
  printf '%s\n' "$report" >&2
  echo "check-format: $fmt failed (exit $rc)" >&2
  exit 2
fi
if [ "${#bad[@]}" -ne 0 ]; then
  {
    echo "check-format: ${#bad[@]} of ${#files[@]} files are not clang-formatted:"
    printf '  %s\n' "${bad[@]}"
    echo "First differences:"
    printf '%s\n' "$report" | head -30
    echo "Fix: $fmt -i ${bad[*]}"
    echo "  (or scripts/check-format.sh --fix for every tracked file)"
  } >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted (.clang-format, $("$fmt" --version | grep -o 'version [0-9.]*'))"
