#!/usr/bin/env bash
# Installs dependencies, builds ringtrain (build/ or $BUILD_DIR) and runs every test with ctest:
# unit tests, MPI tests at world sizes 1..5, and end-to-end runs of the real binary.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
"$root/launch/setup.sh"
# The test build reads RINGTRAIN_FAULT (test-only fault injection, core/faults.h); a build by
# launch/build.sh alone does not.
BUILD_DIR="$build" RINGTRAIN_FAULT_INJECTION=ON "$root/launch/build.sh" \
  -DRINGTRAIN_WERROR="${RINGTRAIN_WERROR:-OFF}" \
  -DRINGTRAIN_NCCL="${RINGTRAIN_NCCL:-AUTO}"
# Unit tests run two at a time; the MPI and end-to-end tests (RUN_SERIAL) one at a time.
ctest --test-dir "$build" --output-on-failure -j2 "$@"
