#!/usr/bin/env bash
# Installs every Debian 12 package npukd needs to build and test
# (`--bench` adds what bench/ compares against). Idempotent; uses sudo when
# not run as root.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

packages=(
  # build
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev libsystemd-dev libssl-dev uuid-dev
  libmicrohttpd-dev nlohmann-json3-dev  # KServe REST and /metrics
  libcurl4-openssl-dev  # bench/serving: the REST load generator
  dpkg-dev patch  # scripts/tsan-abseil.sh: apt-get source, dpkg-source, patch
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-grpcio python3-grpc-tools python3-numpy python3-pytest
  python3-yaml espeak-ng sox openssl systemd clang-14 libclang-rt-14-dev
  mlir-19-tools  # ctest npuk_check_mlir: mlir-opt verifies the NPU designs
  prometheus  # promtool check metrics
  python3-rapidjson python3-geventhttpclient  # tritonclient parity tests
  python3-venv python3-setuptools python3-wheel python3-wheel-whl  # pip install ./client/python
  ccache
  # style checks (scripts/check-format.sh, the clang-tsa preset,
  # scripts/run-clang-tidy.sh)
  clang-format clang-format-14 clang-tidy-14
)
# bench/kernels compares against PyTorch; only `install-deps.sh --bench`
# installs it (large, and never needed by the tests).
# PyTorch's baseline runs on OpenBLAS, the optimised BLAS a user would have
# (Debian's default reference BLAS makes it ~10x slower).
if [ "${1:-}" = "--bench" ]; then packages+=(python3-torch libopenblas0-pthread); fi
# The independent health client test uses node + npm; keep an existing
# Node.js (e.g. from NodeSource) rather than replacing it.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
