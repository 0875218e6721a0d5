#!/usr/bin/env bash
# GPU check of the custom kernels (kernels/, docs/kernels.md), in two steps:
#
#   scripts/device_check.sh --prepare   # HERE (a machine with apt): downloads the Debian -dev
#                                       # packages the build needs into .device/debs/ (ignored)
#   scripts/device_check.sh             # THERE (a GPU machine with python3 + torch, nvcc, cmake,
#                                       # ninja, g++ but no package registry)
#
# The second step unpacks the .debs with `dpkg -x` into .device/prefix, configures the project
# against them and the machine's own PyTorch (torch.utils.cmake_prefix_path), builds test_kernels
# and bench_kernels_bench, runs every kernel test (the CUDA ones skip without a GPU) and the
# benchmark, and prints one table. Budget: under 8 minutes on one H200 with 16 cores.
# Environment: GRPO_DEVICE_JOBS (default: nproc), GRPO_DEVICE_BUILD_DIR (default .device/build),
# GRPO_DEVICE_PYTHON (default: python3, the one with torch), GRPO_DEVICE_TARGETS (default:
# test_kernels bench_kernels_bench),
# GRPO_DEVICE_SKIP_BENCH=1 to stop after the tests. The log of each phase goes to
# $OUT (when set, as on the device tool) or .device/logs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEV="$ROOT/.device"
DEBS_DIR="$DEV/debs"

# Runtime + -dev packages of cmake/GrpoDeps.cmake (Debian 12 names), and pkgconf for machines
# without pkg-config.
DEBS=(
  nlohmann-json3-dev libcli11-dev
  libspdlog-dev libspdlog1.10 libfmt-dev libfmt9
  libyaml-cpp-dev libyaml-cpp0.7
  libsentencepiece-dev libsentencepiece0
  libseccomp-dev libseccomp2
  libre2-dev libre2-9
  libginac-dev libginac11 libcln-dev libcln6 libgmp-dev libgmp10 libgmpxx4ldbl
  nettle-dev libnettle8 libhogweed6
  libgtest-dev libgmock-dev
  pkgconf pkgconf-bin libpkgconf3
)

if [ "${1:-}" = "--prepare" ]; then
  mkdir -p "$DEBS_DIR"
  cd "$DEBS_DIR"
  rm -f ./*.deb
  apt-get download "${DEBS[@]}"
  echo "[device_check] $(ls ./*.deb | wc -l) packages, $(du -sh . | cut -f1) in $DEBS_DIR"
  exit 0
fi

T0=$(date +%s)
phase() { echo "[device_check +$(( $(date +%s) - T0 ))s] $*"; }
LOGS="${OUT:-$DEV/logs}"
mkdir -p "$LOGS"
JOBS="${GRPO_DEVICE_JOBS:-$(nproc)}"
BUILD="${GRPO_DEVICE_BUILD_DIR:-$DEV/build}"
PREFIX="$DEV/prefix"
ARCH_LIB="usr/lib/x86_64-linux-gnu"

# 1. The Debian packages, unpacked into a local prefix.
ls "$DEBS_DIR"/*.deb >/dev/null 2>&1 || { echo "[device_check] no .debs in $DEBS_DIR: run 'scripts/device_check.sh --prepare' on a machine with apt first" >&2; exit 2; }
if [ ! -f "$PREFIX/.complete" ]; then
  rm -rf "$PREFIX"; mkdir -p "$PREFIX"
  for d in "$DEBS_DIR"/*.deb; do dpkg -x "$d" "$PREFIX"; done
  touch "$PREFIX/.complete"
fi
phase "unpacked $(ls "$DEBS_DIR"/*.deb | wc -l) packages into $PREFIX"
# .pc files say prefix=/usr: the sysroot puts $PREFIX in front of their -I/-L paths, and LIBDIR
# keeps the machine's own .pc files out.
export PKG_CONFIG_SYSROOT_DIR="$PREFIX"
export PKG_CONFIG_LIBDIR="$PREFIX/$ARCH_LIB/pkgconfig:$PREFIX/usr/share/pkgconfig"
export PKG_CONFIG_PATH="$PKG_CONFIG_LIBDIR"
export LD_LIBRARY_PATH="$PREFIX/$ARCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
PKG_CONFIG_BIN="$(command -v pkg-config || true)"
[ -n "$PKG_CONFIG_BIN" ] || PKG_CONFIG_BIN="$PREFIX/usr/bin/pkgconf"

# 2. Toolchain: the machine's python3 with torch, nvcc.
PY="${GRPO_DEVICE_PYTHON:-$(command -v python3)}"
TORCH_PREFIX="$("$PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')"
NVCC="$(command -v nvcc || true)"
[ -n "$NVCC" ] || { [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc; } || true
CUDA_ARGS=(-DGRPO_CUDA=ON)
if [ -n "$NVCC" ]; then CUDA_ARGS+=(-DCMAKE_CUDA_COMPILER="$NVCC"); else phase "no nvcc: CPU paths only"; fi
phase "python3 $PY, torch at $TORCH_PREFIX, nvcc ${NVCC:-none}, $JOBS jobs"

# 3. Configure and build only what the check runs.
GEN=(-G Ninja)
command -v ninja >/dev/null || GEN=()  # CMake's default generator (make) then
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DGRPO_PYTHON="$PY" -DGRPO_BUILD_TESTS=ON -DGRPO_BUILD_BENCH=ON "${CUDA_ARGS[@]}" \
    -DCMAKE_PREFIX_PATH="$PREFIX/usr;$PREFIX/$ARCH_LIB/cmake;$TORCH_PREFIX" \
    -DPKG_CONFIG_EXECUTABLE="$PKG_CONFIG_BIN" >"$LOGS/configure.log" 2>&1 \
    || { tail -40 "$LOGS/configure.log"; exit 1; }
fi
grep -E "GRPO_CUDA|LibTorch" "$LOGS/configure.log" 2>/dev/null || true
phase "configured $BUILD"
# The benchmark links only grpo_kernels; test_kernels also waits for the grpo executable (the
# whole project). Built one after the other so that a broken file elsewhere costs the tests only.
TARGETS=(${GRPO_DEVICE_TARGETS:-bench_kernels_bench test_kernels})
BUILD_RC=0
for t in "${TARGETS[@]}"; do
  if cmake --build "$BUILD" -j "$JOBS" --target "$t" >>"$LOGS/build.log" 2>&1; then
    phase "built $t"
  else
    BUILD_RC=1
    phase "FAILED to build $t:"; grep -E "error|FAILED" "$LOGS/build.log" | head -30
  fi
done

# 4. Tests (CPU references and CUDA kernels), then the benchmark.
cd "$ROOT"
TEST_RC=1
if [ -x "$BUILD/tests/test_kernels" ]; then
set +e
timeout 300 "$BUILD/tests/test_kernels" --gtest_color=no >"$LOGS/test_kernels.log" 2>&1
TEST_RC=$?
set -e
phase "tests finished (exit $TEST_RC)"
echo
printf '%-62s %s\n' "test" "result"
grep -E '^\[ +(OK|SKIPPED|FAILED) +\] [A-Za-z0-9_]+\.[A-Za-z0-9_]+ \(' "$LOGS/test_kernels.log" \
  | sed -E 's/^\[ +([A-Z]+) +\] ([^ ]+) \(([0-9]+ ms)\).*/\2 \1 \3/' \
  | awk '{printf "%-62s %-8s %s %s\n", $1, $2, $3, $4}'
count() { grep -cE "^\[ +$1 +\] [A-Za-z0-9_]+\.[A-Za-z0-9_]+ \(" "$LOGS/test_kernels.log" || true; }
echo "passed $(count OK), skipped $(count SKIPPED), failed $(count FAILED)"
if [ "$TEST_RC" -ne 0 ]; then
  echo "--- failures ---"; grep -B2 -A12 -E "Failure|error" "$LOGS/test_kernels.log" | head -80
fi
else
  phase "no test_kernels binary: tests not run"
fi
if [ "${GRPO_DEVICE_SKIP_BENCH:-0}" != 1 ] && [ -x "$BUILD/bin/bench_kernels_bench" ]; then
  set +e
  timeout 240 "$BUILD/bin/bench_kernels_bench" 2>&1 | tee "$LOGS/bench.log"
  BENCH_RC=${PIPESTATUS[0]}
  set -e
  phase "benchmark finished (exit $BENCH_RC)"
fi
[ "$BUILD_RC" -eq 0 ] || exit 1
exit "$TEST_RC"
