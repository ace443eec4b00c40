#!/usr/bin/env bash
# Installs dependencies, builds ringtrain (build/ or $BUILD_DIR) and runs every test with ctest:
# unit tests, MPI tests at world sizes 1..5, and end-to-end runs of the real binary.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
"$root/launch/setup.sh"
BUILD_DIR="$build" "$root/launch/build.sh" -DRINGTRAIN_WERROR="${RINGTRAIN_WERROR:-OFF}" \
  -DRINGTRAIN_NCCL="${RINGTRAIN_NCCL:-AUTO}"
# Unit tests run two at a time; the MPI and end-to-end tests (RUN_SERIAL) one at a time.
ctest --test-dir "$build" --output-on-failure -j2 "$@"
