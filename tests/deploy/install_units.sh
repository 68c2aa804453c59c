#!/bin/bash
# Installs the deploy component as a user would and checks that the unit
# follows the prefix: ExecStart= is PREFIX/bin/npukd with
# --config=PREFIX/etc/npukd/npukd.conf (and /usr/bin/npukd with
# /etc/npukd for a /usr install under DESTDIR), and the config is installed
# where --config points. Leaves WORK/prefix for the systemd-analyze tests.
# Usage: install_units.sh BUILD_DIR WORK_DIR NPUKD
set -euo pipefail
build=$1 work=$2 npukd=$3
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" --component deploy
unit=$prefix/lib/systemd/system/npukd.service
[[ -f $unit ]] || fail "no $unit after cmake --install --prefix $prefix"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
echo "prefix $prefix: ExecStart=$exec_start"
[[ $exec_start == "$prefix/bin/npukd --config=$prefix/etc/npukd/npukd.conf" ]] ||
  fail "ExecStart does not follow the prefix: $exec_start"
[[ -f $prefix/etc/npukd/npukd.conf ]] ||
  fail "the config is not where --config points ($prefix/etc/npukd)"
grep -q "^Documentation=file:$prefix/share/doc/npukd/README.md$" "$unit" ||
  fail "Documentation= does not follow the prefix"
[[ -f $prefix/share/doc/npukd/README.md ]] || fail "README.md not installed"
if grep -n '@[A-Za-z_]*@' "$unit"; then fail "unfilled template variable"; fi
# systemd-analyze verify needs ExecStart's binary: the built daemon.
mkdir -p "$prefix/bin"
ln -sf "$npukd" "$prefix/bin/npukd"

# A distribution-style install: /usr, staged under DESTDIR.
DESTDIR=$work/destdir cmake --install "$build" --prefix /usr --component deploy
unit=$work/destdir/usr/lib/systemd/system/npukd.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
echo "prefix /usr (DESTDIR): ExecStart=$exec_start"
[[ $exec_start == "/usr/bin/npukd --config=/etc/npukd/npukd.conf" ]] ||
  fail "ExecStart of a /usr install: $exec_start"
[[ -f $work/destdir/etc/npukd/npukd.conf ]] ||
  fail "a /usr install puts the config in /etc/npukd"
echo "OK: the installed units follow the prefix"
