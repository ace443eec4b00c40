#!/usr/bin/env bash
# Bad input ends the job on every rank with one clear line and a non-zero exit, no hang.
source "$(dirname "$0")/common.bash"
CFG="$RINGTRAIN_SOURCE_DIR/configs/fashion_mnist_mlp.yaml"

expect_error() {  # expect_error <pattern> <np> <args...>
  local pattern=$1 np=$2
  shift 2
  set +e
  run_np "$np" 60 "$@" >"$WORK/out.txt" 2>"$WORK/err.txt"
  local rc=$?
  set -e
  [ "$rc" -ne 0 ] || fail "expected failure for: $*"
  [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "hang (timed out) for: $*"
  grep -E "ringtrain: .*$pattern" "$WORK/err.txt" >/dev/null || {
    cat "$WORK/err.txt" >&2
    fail "no line matching '$pattern' for: $*"
  }
  # No raw stack traces from LibTorch.
  ! grep -q "frame #" "$WORK/err.txt" || fail "stack trace printed for: $*"
  echo "ok: $pattern"
}

expect_error "data error: .*/nonexistent.*HINT" 2 train --config "$CFG" --run-dir "$WORK/r1" \
  --set data.dir=/nonexistent
expect_error "unknown key 'lrr' in section 'optimizer'.*did you mean 'lr'" 2 train --config "$CFG" \
  --run-dir "$WORK/r2" --set optimizer.lrr=0.1
expect_error "batch" 2 train --config "$CFG" --run-dir "$WORK/r3" --set data.batch_size=40000
expect_error "config" 1 train --config "$WORK/missing.yaml"
expect_error "train.straggler_ratio must be 0 \(no warnings\) or at least 1, got 0.5" 2 train \
  --config "$CFG" --run-dir "$WORK/r4" --set train.straggler_ratio=0.5
echo "PASS"
