#!/usr/bin/env bash
# Desynchronisation: one rank builds a different model (the test-only RINGTRAIN_FAULT
# registers one extra parameter on it). The start-up fingerprint check must stop the job
# naming that rank and the first differing tensor, instead of hanging or mixing gradients.
source "$(dirname "$0")/fault_common.bash"

expect_failure np2 with_fault "model:rank=1" train_np2 "$WORK/r2"
expect_line "$WORK/np2.err" \
  "training error: model fingerprint mismatch at start-up: rank 1 differs from rank 0 first at synchronised tensor #6: rank 0 has nothing \(it has only 6 tensors\), rank 1 has fault_injected \[3\] Float \(bucket 0\)"

expect_failure np3 with_fault "model:rank=2" run_np 3 300 train --config "$MLP_CFG" \
  --run-dir "$WORK/r3" "${SHORT[@]}"
expect_line "$WORK/np3.err" "model fingerprint mismatch at start-up: rank 2 differs from rank 0"

# The periodic check (every 5 steps here) passes on a healthy run.
train_np2 "$WORK/ok" --set train.max_steps=20 --set distributed.fingerprint_every=5 \
  >"$WORK/ok.out" || fail "a healthy run failed the periodic fingerprint check"
echo "PASS"
