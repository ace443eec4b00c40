#!/usr/bin/env bash
# Bad input ends the job on every rank with one clear line and the exit status of its kind
# (core/exit_codes.h: 2 usage, 3 config, 4 data, 5 checkpoint), no hang. Under mpirun the
# status is the failing rank's, passed on by MPI_Abort.
source "$(dirname "$0")/common.bash"
CFG="$RINGTRAIN_SOURCE_DIR/configs/fashion_mnist_mlp.yaml"

expect_error() {  # expect_error <pattern> <exit status> <np> <args...>
  local pattern=$1 status=$2 np=$3
  shift 3
  set +e
  run_np "$np" 60 "$@" >"$WORK/out.txt" 2>"$WORK/err.txt"
  local rc=$?
  set -e
  [ "$rc" -ne 0 ] || fail "expected failure for: $*"
  [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "hang (timed out) for: $*"
  [ "$rc" -eq "$status" ] || { cat "$WORK/err.txt" >&2; fail "exit $rc, not $status, for: $*"; }
  grep -E "ringtrain: .*$pattern" "$WORK/err.txt" >/dev/null || {
    cat "$WORK/err.txt" >&2
    fail "no line matching '$pattern' for: $*"
  }
  # No raw stack traces from LibTorch.
  ! grep -q "frame #" "$WORK/err.txt" || fail "stack trace printed for: $*"
  echo "ok: $pattern (exit $rc)"
}

expect_error "data error: .*/nonexistent.*HINT" 4 2 train --config "$CFG" --run-dir "$WORK/r1" \
  --set data.dir=/nonexistent
expect_error "unknown key 'lrr' in section 'optimizer'.*did you mean 'lr'" 3 2 train --config "$CFG" \
  --run-dir "$WORK/r2" --set optimizer.lrr=0.1
expect_error "batch" 3 2 train --config "$CFG" --run-dir "$WORK/r3" --set data.batch_size=40000
expect_error "config" 3 1 train --config "$WORK/missing.yaml"
expect_error "train.straggler_ratio must be 0 \(no warnings\) or at least 1, got 0.5" 3 2 train \
  --config "$CFG" --run-dir "$WORK/r4" --set train.straggler_ratio=0.5
expect_error "checkpoint error: .*no-such-checkpoint" 5 2 train --config "$CFG" --run-dir "$WORK/r5" \
  --resume "$WORK/no-such-checkpoint"
# Usage errors, inside and outside MPI: all exit 2.
expect_error "usage error: missing --config" 2 2 train
expect_error "Option 'confg' does not exist|confg" 2 2 train --confg "$CFG"
set +e
"$RINGTRAIN_BIN" no-such-command >/dev/null 2>"$WORK/err.txt"
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "an unknown command exited $rc, not 2"
grep -q "unknown command 'no-such-command'" "$WORK/err.txt" || fail "no line naming the unknown command"
echo "PASS"
