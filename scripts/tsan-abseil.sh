#!/usr/bin/env bash
# Builds ThreadSanitizer-instrumented drop-ins for Debian's abseil shared
# libraries into build/tsan-absl/lib, for the TSan tests (LD_LIBRARY_PATH).
#
# Why: Debian's libabsl is built without -fsanitize=thread, so absl::Mutex's
# TSan annotations are compiled out and every access it guards looks like a
# race. Rebuilding the synchronising libraries (same version, Debian's
# patches, same SONAMEs) with TSan makes absl::Mutex visible, for npukd and
# for libgrpc alike.
#
# Source: `apt-get source` of the installed libabsl-dev version through a
# private apt configuration in build/tsan-absl/apt: deb-src twins of the
# system's own deb entries, its own package lists and caches. Nothing under
# /etc/apt or /var/lib/apt is read-write touched. Needs the network once;
# later runs reuse the download, the tree and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'tsan-abseil: %s\n' "$*"; }
die() { printf 'tsan-abseil: ERROR: %s\n' "$*" >&2; exit 1; }
for t in apt-get:apt dpkg-source:dpkg-dev cmake:cmake ninja:ninja-build \
         patch:patch g++:g++ pkg-config:pkg-config readelf:binutils flock:util-linux; do
  command -v "${t%%:*}" >/dev/null || die "'${t%%:*}' not found: apt-get install ${t#*:}"
done

mkdir -p build/tsan-absl
top=$(cd build/tsan-absl && pwd)
exec 9>"$top/.lock"
flock 9

srcpkg=$(dpkg-query -W -f='${source:Package}' libabsl-dev 2>/dev/null) ||
  die "libabsl-dev is not installed (scripts/install-deps.sh)"
srcver=$(dpkg-query -W -f='${source:Version}' libabsl-dev)    # 20220623.1-1+deb12u2
sover=${srcver#*:}; sover=${sover%%.*}                          # 20220623
syslib=/usr/lib/$(gcc -print-multiarch)
dsc=$top/dl/${srcpkg}_${srcver#*:}.dsc

# ------------------------------------------------------------- download
if [ ! -f "$dsc" ]; then
  apt=$top/apt
  rm -rf "$apt"; mkdir -p "$apt/parts" "$apt/lists/partial" "$apt/cache/archives/partial" "$top/dl"
  : >"$apt/none.list"
  # deb-src twins of the enabled entries, in both formats apt reads.
  for f in /etc/apt/sources.list.d/*.sources; do
    if [ -f "$f" ]; then sed 's/^Types:.*/Types: deb-src/' "$f" >"$apt/parts/${f##*/}"; fi
  done
  { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
    sed -n 's/^deb[[:space:]]/deb-src /p' >"$apt/parts/system.list"
  cat >"$apt/apt.conf" <<EOF
Dir::Etc::SourceList "$apt/none.list";
Dir::Etc::SourceParts "$apt/parts";
Dir::State::Lists "$apt/lists";
Dir::Cache "$apt/cache";
APT::Sandbox::User "$(id -un)";
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
EOF
  say "fetching $srcpkg $srcver with the private apt configuration $apt/apt.conf"
  # A repository without sources (a third-party one) only warns here; what
  # matters is whether apt-get source then finds the exact version.
  apt-get -c "$apt/apt.conf" -q update >"$top/fetch.log" 2>&1 </dev/null || true
  (cd "$top/dl" && apt-get -c "$apt/apt.conf" -q source --download-only \
      "$srcpkg=$srcver") >>"$top/fetch.log" 2>&1 </dev/null ||
    { cat "$top/fetch.log" >&2; die "apt-get source $srcpkg=$srcver failed (log above)"; }
fi

# -------------------------------------------------------------- extract
# Debian's patches plus one TSan-only fix (as later upstream abseil has it):
# Mutex::IncrementSynchSem posts on the woken thread's ThreadIdentity, handed
# over through the Mutex's internal queue that TSan ignores, so TSan reports
# it against the mmap that created the identity. Without TSan the macros are
# empty, so code generation is unchanged.
src=$top/src
stamp="$srcpkg $srcver npuk-tsan-2"
if [ "$(cat "$src/.npuk-stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$src" "$top/obj"
  dpkg-source -x "$dsc" "$src" >"$top/extract.log" 2>&1 || { cat "$top/extract.log" >&2; die "dpkg-source -x failed"; }
  patch -d "$src" -p1 --forward >>"$top/extract.log" 2>&1 <<'EOF' || { cat "$top/extract.log" >&2; die "the mutex.cc patch does not apply to $srcver"; }
--- a/absl/synchronization/mutex.cc
+++ b/absl/synchronization/mutex.cc
@@ -563,7 +563,9 @@
   if (mu) {
     ABSL_TSAN_MUTEX_PRE_DIVERT(mu, 0);
   }
+  ABSL_ANNOTATE_IGNORE_READS_AND_WRITES_BEGIN();
   PerThreadSem::Post(w->thread_identity());
+  ABSL_ANNOTATE_IGNORE_READS_AND_WRITES_END();
   if (mu) {
     ABSL_TSAN_MUTEX_POST_DIVERT(mu, 0);
   }
EOF
  echo "$stamp" >"$src/.npuk-stamp"
fi
# The libraries only link with our binaries if the inline namespace matches.
ns=$(sed -n 's/^#define ABSL_OPTION_INLINE_NAMESPACE_NAME //p' "$src/absl/base/options.h")
grep -q "^#define ABSL_OPTION_INLINE_NAMESPACE_NAME $ns\$" /usr/include/absl/base/options.h ||
  die "inline namespace '$ns' differs from /usr/include/absl/base/options.h"

# ------------------------------------------------------ configure, build
# As debian/rules (shared, C++17, Debian's build flags), at -O1 with TSan.
# Built: every library that synchronises or inlines base_internal::SpinLock
# (its slow path in libabsl_base is now annotated; an uninstrumented inline
# fast path would unbalance TSan's ignore regions), plus their libabsl deps.
# absl_status and absl_cord stay Debian's: instrumented, the Status reps that
# gRPC hands between its threads would be reports (tests/tsan.supp).
flags() { dpkg-buildflags --get "$1" | sed -e 's/-ffile-prefix-map=[^ ]*//g' -e 's/-O2/-O1/'; }
targets=(synchronization graphcycles_internal base spinlock_wait malloc_internal
  time cordz_handle cordz_info random_internal_pool_urbg)
cmake -S "$src" -B "$top/obj" -G Ninja -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=ON -DBUILD_TESTING=OFF -DABSL_ENABLE_INSTALL=ON \
  -DCMAKE_CXX_FLAGS="$(flags CXXFLAGS) $(flags CPPFLAGS) -fsanitize=thread -fno-omit-frame-pointer" \
  -DCMAKE_SHARED_LINKER_FLAGS="$(flags LDFLAGS) -fsanitize=thread" >"$top/configure.log" 2>&1 ||
  { tail -30 "$top/configure.log" >&2; die "cmake configure of abseil failed"; }
cmake --build "$top/obj" -j "$(nproc)" --target "${targets[@]}" >"$top/build.log" 2>&1 ||
  { tail -40 "$top/build.log" >&2; die "abseil build failed (see $top/build.log)"; }

# --------------------------------------------------------------- install
# The obj tree holds only these targets and their dependencies.
rm -rf "$top/lib.new"; mkdir "$top/lib.new"
while IFS= read -r so; do
  name=$(basename "$so")
  [ "$(readelf -d "$so" | grep -o 'SONAME.*')" = "$(readelf -d "$syslib/$name" 2>/dev/null | grep -o 'SONAME.*')" ] ||
    die "$name: not a drop-in for $syslib/$name (SONAME differs or Debian has none)"
  cp -P "$so" "$(readlink -f "$so")" "$top/lib.new/"
done < <(find "$top/obj" -name "libabsl_*.so.$sover")
for t in "${targets[@]}"; do
  [ -e "$top/lib.new/libabsl_$t.so.$sover" ] || die "libabsl_$t.so.$sover was not built"
done
rm -rf "$top/lib"; mv "$top/lib.new" "$top/lib"

# ------------------------------------------------------------- self-test
# A race-free absl::Mutex program must run clean with these libraries, and
# an unguarded counter must still be reported.
cat >"$top/selftest.cc" <<'EOF'
#include <cstring>
#include <thread>
#include "absl/synchronization/mutex.h"
absl::Mutex mu;
long counter = 0;
bool ready = false;
int main(int argc, char** argv) {
  const bool racy = argc > 1 && std::strcmp(argv[1], "race") == 0;
  auto inc = [racy] {
    for (int i = 0; i < 20000; ++i) {
      if (racy) { ++counter; continue; }
      absl::MutexLock l(&mu);
      ++counter;
    }
  };
  std::thread a(inc), b(inc), c([] { absl::MutexLock l(&mu); mu.Await(absl::Condition(&ready)); });
  { absl::MutexLock l(&mu); ready = true; }
  a.join(); b.join(); c.join();
  return 0;
}
EOF
g++ -std=c++17 -O1 -g -fsanitize=thread "$top/selftest.cc" -o "$top/selftest" \
  $(pkg-config --cflags --libs absl_synchronization) >"$top/selftest.log" 2>&1 ||
  { cat "$top/selftest.log" >&2; die "cannot compile the self-test"; }
export LD_LIBRARY_PATH=$top/lib TSAN_OPTIONS=exitcode=66
"$top/selftest" >"$top/selftest.log" 2>&1 ||
  { cat "$top/selftest.log" >&2; die "self-test: a race-free absl::Mutex program fails with $top/lib"; }
rc=0; "$top/selftest" race >"$top/selftest-race.log" 2>&1 || rc=$?
[ "$rc" = 66 ] || { cat "$top/selftest-race.log" >&2; die "self-test: a real race was not reported (rc=$rc)"; }
say "OK: $(ls "$top/lib" | grep -c "\.so\.$sover\$") TSan-instrumented libabsl (namespace $ns) in $top/lib; self-test passed"
