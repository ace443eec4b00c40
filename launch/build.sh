#!/usr/bin/env bash
# Configures and builds ringtrain into build/ (or $BUILD_DIR). Arguments go to cmake's
# configure step; $BUILD_TARGET limits the build to one target.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j"$(nproc)" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
