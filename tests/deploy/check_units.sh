#!/bin/bash
# systemd-analyze checks of deploy/systemd: `verify` must pass without a
# single warning about our units, and `security` must rate npukd.service's
# exposure 2.0 or lower. UNIT_DIR holds the units as installed (by
# install_units.sh: ExecStart= names the installed daemon, which must exist).
# Usage: check_units.sh verify|security UNIT_DIR
set -euo pipefail
mode=$1 units=$2
command -v systemd-analyze >/dev/null || {
  echo "systemd-analyze not found: apt-get install systemd" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$units"/npukd.service "$units"/npukd.socket "$work"/

case $mode in
verify)
  cd "$work"
  set +e
  out=$(systemd-analyze verify --man=no ./npukd.socket ./npukd.service 2>&1)
  rc=$?
  set -e
  echo "$out"
  # Warnings about other units of the host (no systemd here) are not ours.
  ours=$(grep -E 'npukd\.(service|socket)' <<<"$out" || true)
  if [[ $rc -ne 0 || -n "$ours" ]]; then
    echo "FAIL: systemd-analyze verify (rc=$rc) complained about the units" >&2
    exit 1
  fi
  echo "systemd-analyze verify: npukd.service and npukd.socket OK"
  ;;
security)
  out=$(systemd-analyze security --offline=yes --no-pager "$work"/npukd.service 2>&1)
  echo "$out" | grep -E '^✗' || true
  level=$(sed -n 's/.*Overall exposure level for npukd.service: \([0-9.]*\).*/\1/p' <<<"$out")
  if [[ -z "$level" ]]; then
    echo "$out"
    echo "FAIL: no exposure level in systemd-analyze security output" >&2
    exit 1
  fi
  echo "systemd-analyze security: npukd.service exposure $level (limit 2.0)"
  awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || {
    echo "FAIL: exposure $level > 2.0; harden deploy/systemd/npukd.service.in" >&2
    exit 1; }
  ;;
*) echo "usage: $0 verify|security UNIT_DIR" >&2; exit 2 ;;
esac
