#!/usr/bin/env bash
# From a fresh Debian 12 checkout: install packages, build, start npukd on
# its defaults (CPU backend, unix socket under the runtime directory) and
# send it a real request. The daemon keeps running; the script prints how to
# stop it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default --target npukd npukctl npuk_python

BUILD=build/default
LOG=$BUILD/npukd.log
"$BUILD/server/npukd" >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
  if grep -q "serving on" "$LOG"; then break; fi
  if ! kill -0 "$PID" 2>/dev/null; then cat "$LOG"; exit 1; fi
  sleep 0.1
done
grep "serving on" "$LOG"

echo "--- models"
"$BUILD/client/cpp/npukctl" models
echo "--- one real request: 4 frames of a synthetic signal through the mel kernel"
"$BUILD/client/cpp/npukctl" infer --model=mel --frames=4
echo "--- health"
"$BUILD/client/cpp/npukctl" health
echo
echo "npukd (pid $PID) keeps serving; log: $LOG. Stop it with: kill $PID"
