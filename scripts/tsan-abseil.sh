#!/usr/bin/env bash
# Builds ThreadSanitizer-instrumented drop-in replacements for Debian's
# abseil shared libraries, so absl::Mutex is visible to TSan.
#
# Why: Debian's libabsl is built without -fsanitize=thread, so the TSan
# annotations in mutex.cc / spinlock.cc are compiled out and every access
# guarded by an absl::Mutex looks like a data race to TSan.
#
# What: fetches the source package of the *installed* libabsl-dev version
# (apt-get source; adds a deb-src entry + apt-get update if none is found),
# extracts it with Debian's patches (inline namespace, SONAMEs) plus one
# TSan-only annotation fix to mutex.cc (see tsan_patch), configures it like
# debian/rules (CMake, shared libs, C++17, build type None, Debian
# build flags) plus -fsanitize=thread -O1 -g, builds only the libraries that
# synchronise (absl_synchronization, absl_base, absl_spinlock_wait,
# absl_malloc_internal, absl_graphcycles_internal, absl_time, the cordz and
# random pool libraries -- everything that inlines absl's SpinLock -- and
# their dependencies), checks each against the installed library (same
# SONAME, no exported symbol missing), installs them into
#   build/tsan-absl/lib      (use with LD_LIBRARY_PATH)
# and finally runs a self-test (build/tsan-absl/selftest) proving that the
# swap removes absl::Mutex false positives while real races are still found.
#
# Idempotent (reuses download, source tree and build), non-interactive,
# serialised with a lock file. Exits non-zero with a message on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

t0=$SECONDS
say() { printf 'tsan-abseil: %s\n' "$*"; }
die() { printf 'tsan-abseil: ERROR: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found (install package $2)"; }

need g++ g++
need cmake cmake
need apt-get apt
need dpkg-source dpkg-dev
need dpkg-buildflags dpkg-dev
need patch patch
need pkg-config pkg-config
need readelf binutils
need nm binutils
need flock util-linux

top=build/tsan-absl
mkdir -p "$top"
top=$(cd "$top" && pwd)
exec 9>"$top/.lock"
flock 9 || die "cannot lock $top/.lock"

# ---------------------------------------------------------------- version
ver=$(dpkg-query -W -f='${Version}' libabsl-dev 2>/dev/null) ||
  die "libabsl-dev is not installed"
srcpkg=$(dpkg-query -W -f='${source:Package}' libabsl-dev)
srcver=$(dpkg-query -W -f='${source:Version}' libabsl-dev)
upver=${srcver#*:}; upver=${upver%-*}            # 20220623.1
soname_ver=${upver%%.*}                          # 20220623
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
syslib=/usr/lib/$multiarch
[ -e "$syslib/libabsl_synchronization.so.$soname_ver" ] ||
  die "$syslib/libabsl_synchronization.so.$soname_ver not found (libabsl$soname_ver missing?)"
say "installed libabsl-dev $ver (source $srcpkg $srcver, SONAME .$soname_ver)"

# --------------------------------------------------------------- download
dl=$top/dl
mkdir -p "$dl"
dsc=$dl/${srcpkg}_${srcver#*:}.dsc
add_deb_src() {
  # CI images usually carry no deb-src lines: add one for this release.
  local codename list=/etc/apt/sources.list.d/npuk-tsan-abseil-src.sources
  local sudo=""
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || die "cannot determine the Debian codename from /etc/os-release"
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null ||
      die "no deb-src entry for $srcpkg and no root/passwordless sudo to add $list"
    sudo="sudo -n"
  fi
  say "no source package found: adding deb-src entries in $list and running apt-get update"
  $sudo tee "$list" >/dev/null <<EOF
# Added by npukd scripts/tsan-abseil.sh (TSan build of abseil).
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://security.debian.org/debian-security
Suites: $codename-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -q </dev/null ||
    die "apt-get update failed after adding $list"
}
fetch() {
  (cd "$dl" && apt-get source -q --download-only "$srcpkg=$srcver" </dev/null) \
    >"$top/fetch.log" 2>&1
}
if [ -f "$dsc" ]; then
  say "reusing download $dsc"
else
  if ! fetch; then
    if ! apt-cache showsrc "$srcpkg" 2>/dev/null | grep -q "^Version: $srcver\$"; then
      add_deb_src
    fi
    fetch || { cat "$top/fetch.log" >&2
      die "apt-get source $srcpkg=$srcver failed (is that version still in the archive?)"; }
  fi
  [ -f "$dsc" ] || die "apt-get source did not produce $dsc"
  say "downloaded $(basename "$dsc") and its tarballs into $dl"
fi

# ---------------------------------------------------------------- extract
# TSan-only fix, applied on top of Debian's patches: Mutex::IncrementSynchSem
# posts on the woken thread's ThreadIdentity, which reached the waker through
# the Mutex's internal queue (inside the TSan-ignored lock region), so TSan
# reports the access as racing with the mmap that created the identity in
# the sleeping thread. Ignore the accesses of that Post, as later upstream
# abseil does. Code generation without TSan is unchanged.
tsan_patch() {
cat <<'EOF'
--- a/absl/synchronization/mutex.cc
+++ b/absl/synchronization/mutex.cc
@@ -563,7 +563,12 @@
   if (mu) {
     ABSL_TSAN_MUTEX_PRE_DIVERT(mu, 0);
   }
+  // npukd tsan-abseil.sh: "w" was handed to this thread through the Mutex's
+  // internal queue, which TSan does not see; ignore the accesses made while
+  // posting on the woken thread's semaphore.
+  ABSL_ANNOTATE_IGNORE_READS_AND_WRITES_BEGIN();
   PerThreadSem::Post(w->thread_identity());
+  ABSL_ANNOTATE_IGNORE_READS_AND_WRITES_END();
   if (mu) {
     ABSL_TSAN_MUTEX_POST_DIVERT(mu, 0);
   }
EOF
}
src=$top/src
stamp="$srcpkg $srcver +npuk-tsan-1"
if [ -f "$src/.npuk-stamp" ] && [ "$(cat "$src/.npuk-stamp")" = "$stamp" ]; then
  say "reusing source tree $src"
else
  rm -rf "$src" "$top/obj"
  dpkg-source -x "$dsc" "$src" >"$top/extract.log" 2>&1 ||
    { cat "$top/extract.log" >&2; die "dpkg-source -x failed"; }
  grep -q "ABSL_OPTION_INLINE_NAMESPACE_NAME" "$src/absl/base/options.h" ||
    die "unexpected source layout (absl/base/options.h)"
  tsan_patch | patch -d "$src" -p1 --forward >>"$top/extract.log" 2>&1 ||
    { cat "$top/extract.log" >&2; die "the TSan patch to mutex.cc does not apply to $srcver"; }
  echo "$stamp" >"$src/.npuk-stamp"
  say "extracted $srcpkg $srcver with Debian's patches (+ npukd TSan patch) into $src"
fi
ns=$(sed -n 's/^#define ABSL_OPTION_INLINE_NAMESPACE_NAME \(.*\)$/\1/p' "$src/absl/base/options.h")
# Same namespace as the installed headers, or the libraries would not link.
grep -q "^#define ABSL_OPTION_INLINE_NAMESPACE_NAME $ns\$" /usr/include/absl/base/options.h ||
  die "inline namespace '$ns' of the source differs from /usr/include/absl/base/options.h"

# -------------------------------------------------------------- configure
# debian/rules: dh_auto_configure -- -DCMAKE_CXX_STANDARD=17
# -DBUILD_SHARED_LIBS=ON, build type None, dpkg-buildflags with
# hardening=+bindnow; -O2 becomes -O1 and TSan is added.
grep -q -- "-DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=ON" "$src/debian/rules" ||
  die "debian/rules no longer configures -DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=ON: review this script"
export DEB_BUILD_MAINT_OPTIONS="hardening=+bindnow"
debflags() { dpkg-buildflags --get "$1" | sed -e 's/-ffile-prefix-map=[^ ]*//g' -e 's/-O2/-O1/g'; }
cxxflags="$(debflags CXXFLAGS) $(debflags CPPFLAGS) -fsanitize=thread -fno-omit-frame-pointer"
ldflags="$(debflags LDFLAGS) -fsanitize=thread"
gen=()
if command -v ninja >/dev/null 2>&1; then gen=(-G Ninja); fi
obj=$top/obj
cmake -S "$src" -B "$obj" "${gen[@]}" \
  -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_LIBDIR="lib/$multiarch" \
  -DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=ON -DBUILD_TESTING=OFF \
  -DABSL_ENABLE_INSTALL=ON \
  -DCMAKE_CXX_FLAGS="$cxxflags" \
  -DCMAKE_SHARED_LINKER_FLAGS="$ldflags" \
  >"$top/configure.log" 2>&1 ||
  { tail -30 "$top/configure.log" >&2; die "cmake configure failed (see $top/configure.log)"; }
say "configured $obj: CXXFLAGS='$cxxflags' LDFLAGS='$ldflags'"

# ------------------------------------------------------------------ build
# Every abseil library that synchronises or inlines base_internal::SpinLock
# (whose slow path in libabsl_base is now TSan-annotated, so an
# uninstrumented inline fast path would unbalance TSan's ignore regions).
# absl_status stays Debian's on purpose: instrumented, its accesses to Status
# reps that gRPC hands between threads (invisibly to TSan) become reports;
# tests/tsan.supp ignores its intercepted calls instead.
targets=(synchronization graphcycles_internal base spinlock_wait malloc_internal
  time cordz_handle cordz_info random_internal_pool_urbg)
tb=$SECONDS
cmake --build "$obj" -j "$(nproc)" --target "${targets[@]}" >"$top/build.log" 2>&1 ||
  { tail -40 "$top/build.log" >&2; die "abseil build failed (see $top/build.log)"; }
say "built targets ${targets[*]} (+ dependencies) in $((SECONDS - tb)) s"

# ---------------------------------------------------------------- install
# The targets plus their libabsl_* DT_NEEDED closure (the build tree may
# hold other libraries from earlier runs).
declare -A wanted=()
queue=()
for t in "${targets[@]}"; do queue+=("libabsl_$t.so.$soname_ver"); done
while [ "${#queue[@]}" -gt 0 ]; do
  name=${queue[0]}; queue=("${queue[@]:1}")
  [ -z "${wanted[$name]:-}" ] || continue
  so=$(find "$obj/absl" -name "$name" | head -1)
  [ -n "$so" ] || die "$name was not built"
  wanted[$name]=$so
  for dep in $(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(libabsl_.*\)\]/\1/p'); do
    queue+=("$dep")
  done
done
stage=$top/lib.new
rm -rf "$stage"; mkdir -p "$stage"
n=0
while IFS= read -r so; do
  name=$(basename "$so")                      # libabsl_X.so.20220623
  sys=$syslib/$name
  [ -e "$sys" ] || die "built $name but Debian ships no $sys"
  got=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  want=$(readelf -d "$sys" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  [ "$got" = "$want" ] || die "$name: SONAME $got, Debian's is $want"
  readelf -d "$so" | grep -q 'NEEDED.*libtsan' || die "$name is not linked against libtsan"
  # Every strong symbol Debian's library exports must exist in ours.
  missing=$(comm -23 \
    <(nm -D --defined-only "$sys" | awk '$2 !~ /^[uvVwW]$/ {print $3}' | sort -u) \
    <(nm -D --defined-only "$so" | awk '{print $3}' | sort -u))
  [ -z "$missing" ] || die "$name lacks symbols of Debian's build: $(echo "$missing" | head -5 | tr '\n' ' ')"
  cp -P "$so" "$(readlink -f "$so")" "$stage/"
  n=$((n + 1))
done < <(printf '%s\n' "${wanted[@]}" | sort)
for lib in synchronization base spinlock_wait malloc_internal graphcycles_internal; do
  [ -e "$stage/libabsl_$lib.so.$soname_ver" ] || die "libabsl_$lib.so.$soname_ver was not built"
done
rm -rf "$top/lib"; mv "$stage" "$top/lib"
say "installed $n TSan-instrumented libraries (Debian SONAMEs, namespace $ns) into $top/lib:"
(cd "$top/lib" && ls libabsl_*.so."$soname_ver" | sed 's/^/    /')

# -------------------------------------------------------------- self-test
cat >"$top/selftest.cc" <<'EOF'
// Written by scripts/tsan-abseil.sh. Modes:
//   mutex : counter under absl::MutexLock from two threads, then a hand-off
//           via absl::Mutex::Await(Condition) -- race-free.
//   race  : an unguarded counter -- a real race TSan must still report.
#include <cstdio>
#include <cstring>
#include <thread>

#include "absl/synchronization/mutex.h"

static absl::Mutex mu;
static long counter = 0;   // guarded by mu (mode mutex)
static bool ready = false;  // guarded by mu
static long payload = 0;   // guarded by mu

int main(int argc, char** argv) {
  const bool racy = argc > 1 && std::strcmp(argv[1], "race") == 0;
  // Which libabsl_synchronization did the dynamic loader pick?
  if (std::FILE* maps = std::fopen("/proc/self/maps", "r")) {
    char line[4096];
    while (std::fgets(line, sizeof line, maps) != nullptr) {
      const char* path = std::strchr(line, '/');
      if (path != nullptr && std::strstr(path, "libabsl_synchronization") != nullptr) {
        std::printf("libabsl_synchronization from %s", path);
        break;
      }
    }
    std::fclose(maps);
  }
  auto inc = [racy] {
    for (int i = 0; i < 20000; ++i) {
      if (racy) {
        ++counter;
      } else {
        absl::MutexLock l(&mu);
        ++counter;
      }
    }
  };
  std::thread a(inc), b(inc);
  a.join();
  b.join();
  std::thread consumer([] {
    absl::MutexLock l(&mu);
    mu.Await(absl::Condition(&ready));
    payload += 1;
  });
  std::thread producer([] {
    absl::MutexLock l(&mu);
    payload = 41;
    ready = true;
  });
  producer.join();
  consumer.join();
  std::printf("counter=%ld payload=%ld\n", counter, payload);
  return payload == 42 ? 0 : 3;
}
EOF
g++ -std=c++17 -O1 -g -fsanitize=thread -fno-omit-frame-pointer \
  "$top/selftest.cc" -o "$top/selftest" \
  $(pkg-config --cflags --libs absl_synchronization) >"$top/selftest.log" 2>&1 ||
  { cat "$top/selftest.log" >&2; die "cannot compile the self-test"; }

# run <libdir|-> <mode> <log>: prints TSan's exit status (66 = report).
run() {
  local rc=0
  if [ "$1" = - ]; then
    env -u LD_LIBRARY_PATH TSAN_OPTIONS="exitcode=66" "$top/selftest" "$2" >"$3" 2>&1 || rc=$?
  else
    env LD_LIBRARY_PATH="$1" TSAN_OPTIONS="exitcode=66" "$top/selftest" "$2" >"$3" 2>&1 || rc=$?
  fi
  echo "$rc"
}
races() { grep -c "WARNING: ThreadSanitizer" "$1" || true; }

log=$top/selftest-debian.log
rc=$(run - mutex "$log")
[ "$rc" = 66 ] || { cat "$log" >&2
  die "self-test: with Debian's libabsl the absl::Mutex program reported no race (rc=$rc); the test can no longer tell the libraries apart -- is Debian's abseil TSan-aware now?"; }
say "self-test: Debian's libabsl      -> $(races "$log") false-positive race report(s), as expected"

for i in 1 2 3; do
  log=$top/selftest-tsan.log
  rc=$(run "$top/lib" mutex "$log")
  grep -q "from $top/lib/libabsl_synchronization" "$log" || { cat "$log" >&2
    die "self-test: absl::Mutex was not loaded from $top/lib"; }
  [ "$rc" = 0 ] || { cat "$log" >&2
    die "self-test: with $top/lib the race-free absl::Mutex program still fails (rc=$rc, run $i/3)"; }
done
say "self-test: TSan libabsl ($top/lib) -> 0 reports in 3 runs of the Mutex/Await program"

log=$top/selftest-race.log
rc=$(run "$top/lib" race "$log")
[ "$rc" = 66 ] && grep -q "selftest.cc" "$log" || { cat "$log" >&2
  die "self-test: a real data race was not reported with $top/lib (rc=$rc)"; }
say "self-test: TSan libabsl          -> a real (unguarded) race is still reported"

say "OK in $((SECONDS - t0)) s; run TSan tests with LD_LIBRARY_PATH=$top/lib"
