#!/usr/bin/env bash
# train.on_nonfinite: a NaN loss on one rank (test-only RINGTRAIN_FAULT) at step 3 aborts
# the job naming the step and the rank (abort, the default), or skips that update on every
# rank alike and trains on with finite parameters (skip).
source "$(dirname "$0")/fault_common.bash"
STEPS=(--set train.max_steps=20 --set checkpoint.every_steps=0)

expect_failure abort with_fault "nan:rank=1:step=3" train_np2 "$WORK/abort" "${STEPS[@]}"
expect_line "$WORK/abort.err" "^ringtrain: \[rank 1\] training error: non-finite loss at step 3.*HINT:"

with_fault "nan:rank=1:step=3" train_np2 "$WORK/skip" "${STEPS[@]}" \
  --set train.on_nonfinite=skip >"$WORK/skip.out" || fail "the skip run failed"
expect_line "$WORK/skip.out" \
  "warning: non-finite gradient norm at step 3 \(non-finite loss on rank\(s\) 1\); skipping the update"
[ "$(last_metric "$WORK/skip/metrics.jsonl" summary step)" = "20" ] || fail "skip run did not finish"
"$RINGTRAIN_BIN" export --checkpoint "$WORK/skip" --format torch --out "$WORK/skip.pt" >/dev/null
$PY -c "
import sys, torch
sd = torch.load(sys.argv[1])
bad = [k for k, t in sd.items() if not torch.isfinite(t).all()]
sys.exit(f'non-finite parameters: {bad}' if bad else 0)" "$WORK/skip.pt"
echo "ok: parameters are finite after the skipped step"
echo "PASS"
