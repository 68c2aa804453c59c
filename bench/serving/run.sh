#!/bin/sh
# Serving bench in one command: builds what it needs in BUILD_DIR (default
# build/default), then runs npukd and the echo server side by side (~40 s).
#   bench/serving/run.sh [BUILD_DIR] [-- serving_bench flags]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/default}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build" --target npukd npuk_echo_server npuk_serving_bench -j2
exec "$build/bench/serving/npuk_serving_bench" "$@"
