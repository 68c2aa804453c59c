#!/bin/bash
# Applies deploy/sysusers.d and deploy/tmpfiles.d to an empty root and checks
# the result: a nologin system user npukd in group render, and /run/npukd
# 0750 npukd:npukd. Usage: check_sysusers_tmpfiles.sh DEPLOY_DIR
set -euo pipefail
deploy=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc"
systemd-sysusers --root="$root" "$deploy/sysusers.d/npukd.conf"
entry=$(grep '^npukd:' "$root/etc/passwd") || {
  echo "FAIL: sysusers created no user npukd" >&2; exit 1; }
echo "passwd: $entry"
uid=$(cut -d: -f3 <<<"$entry")
[[ $(cut -d: -f7 <<<"$entry") == */nologin ]] || {
  echo "FAIL: npukd must have a nologin shell" >&2; exit 1; }
(( uid < 1000 )) || { echo "FAIL: npukd must be a system user" >&2; exit 1; }
grep -E '^render:[^:]*:[0-9]+:(.*,)?npukd(,.*)?$' "$root/etc/group" >/dev/null || {
  echo "FAIL: npukd is not a member of group render" >&2; exit 1; }
gid=$(grep '^npukd:' "$root/etc/group" | cut -d: -f3)

if [[ $(id -u) -ne 0 ]]; then
  # Creating files owned by another user needs root.
  systemd-tmpfiles --root="$root" --create "$deploy/tmpfiles.d/npukd.conf" \
    --dry-run 2>/dev/null || true
  echo "tmpfiles: not root, ownership not checked"
  exit 0
fi
systemd-tmpfiles --root="$root" --create "$deploy/tmpfiles.d/npukd.conf"
got=$(stat -c '%a %u %g' "$root/run/npukd")
[[ "$got" == "750 $uid $gid" ]] || {
  echo "FAIL: /run/npukd is '$got', want '750 $uid $gid'" >&2; exit 1; }
echo "tmpfiles: /run/npukd 0750 npukd:npukd OK"
