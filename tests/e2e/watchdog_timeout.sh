#!/usr/bin/env bash
# Hang detection: a rank that stops participating (it sleeps for 10 minutes, via the
# test-only RINGTRAIN_FAULT) must end the job on the collective deadline
# (distributed.timeout_s = 3) with a line naming the operation, the step, the bucket and the
# neighbour the ring waited for, not hang. run_np's 90 s limit turns a hang into a failure.
source "$(dirname "$0")/fault_common.bash"
HANG=(--set distributed.timeout_s=3 --set train.max_steps=20 --set checkpoint.every_steps=10)

# In the gradient all-reduce: rank 1 never starts step 5.
SECONDS=0
expect_failure grad with_fault "hang:rank=1:step=5:seconds=600" run_np 2 90 train \
  --config "$MLP_CFG" --run-dir "$WORK/grad" "${SHORT[@]}" "${HANG[@]}"
echo "the job ended ${SECONDS} s after it started (the hang alone would take 600 s)"
expect_line "$WORK/grad.err" "fault injection: rank 1 hangs"
expect_line "$WORK/grad.err" \
  "^ringtrain: \[rank 0\] timeout error: allreduce\(step 5, [a-z ]*bucket [0-9].*\) did not complete within 3000 ms; waiting for (data from )?rank 1 .*HINT:"

# In the checkpoint hand-shake after step 10 (this used to be an unbounded barrier).
expect_failure checkpoint with_fault "hang:rank=1:step=10:at=checkpoint:seconds=600" run_np 2 90 \
  train --config "$MLP_CFG" --run-dir "$WORK/ckpt" "${SHORT[@]}" "${HANG[@]}"
expect_line "$WORK/checkpoint.err" \
  "^ringtrain: \[rank 0\] timeout error: allreduce\(checkpoint hand-shake, step 10, .*\) did not complete within 3000 ms; waiting for (data from )?rank 1"
# Rank 0 wrote its checkpoint before it waited: it is complete and valid.
"$RINGTRAIN_BIN" eval --checkpoint "$WORK/ckpt/checkpoints/step-00000010" >/dev/null 2>&1 ||
  fail "the checkpoint written before the hang is not valid"
echo "PASS"
