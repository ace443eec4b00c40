#!/usr/bin/env bash
# Configures and builds ringtrain into build/ (or $BUILD_DIR). Arguments go to cmake's
# configure step; $BUILD_TARGET limits the build to one target.
#
# Which LibTorch ($RINGTRAIN_LIBTORCH):
#   venv (default)  the torch 2.x that launch/setup.sh installed into .venv ($RINGTRAIN_VENV)
#   debian          Debian's libtorch-dev 1.13 in the system paths
#   DIR             your own: an unpacked LibTorch zip (DIR/share/cmake/Torch), or a PyTorch
#                   install's `python3 -c 'import torch;print(torch.utils.cmake_prefix_path)'`
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
libtorch="${RINGTRAIN_LIBTORCH:-venv}"
case "$libtorch" in
  venv)
    venv="${RINGTRAIN_VENV:-$root/.venv}"
    [ -x "$venv/bin/python" ] || { echo "build: no $venv; run launch/setup.sh first" >&2; exit 2; }
    prefix="$("$venv/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
    ;;
  debian) prefix="" ;;
  *) prefix="$libtorch" ;;
esac
mkdir -p "$build"
# The configure output goes to a log; what ringtrain chose (LibTorch, NCCL) is printed.
# Fault injection (test-only) is off unless asked for (launch/test.sh does), also in a build
# directory that a test run configured before.
if ! cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DRINGTRAIN_FAULT_INJECTION="${RINGTRAIN_FAULT_INJECTION:-OFF}" "$@" \
  >"$build/configure.log" 2>&1; then
  cat "$build/configure.log" >&2
  exit 1
fi
grep '^-- ringtrain' "$build/configure.log" || true
cmake --build "$build" -j"$(nproc)" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
