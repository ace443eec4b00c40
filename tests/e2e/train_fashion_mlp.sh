#!/usr/bin/env bash
# A short real Fashion-MNIST run on 2 ranks: fashion_mlp, 1 epoch, must reach >= 84% test
# accuracy; checks the run directory layout and the metrics.jsonl format.
source "$(dirname "$0")/common.bash"
[ -d /usr/share/datasets/fashion-mnist ] || fail "dataset-fashion-mnist is not installed"

run_np 2 600 train --config "$RINGTRAIN_SOURCE_DIR/configs/fashion_mnist_mlp.yaml" \
  --run-dir "$WORK/run" | tee "$WORK/out.txt"

acc=$(last_metric "$WORK/run/metrics.jsonl" eval test_accuracy)
echo "final test accuracy: $acc"
$PY -c "import sys; sys.exit(0 if float('$acc') >= 0.84 else 1)" || fail "accuracy $acc < 0.84"

[ -f "$WORK/run/config.yaml" ] || fail "no resolved config.yaml in the run directory"
grep -q "batch_size: 64" "$WORK/run/config.yaml" || fail "config.yaml lacks data.batch_size"
ls "$WORK"/run/checkpoints/step-*/MANIFEST >/dev/null || fail "no valid checkpoint written"
grep -q "parameters" "$WORK/out.txt" || fail "rank 0 did not print the parameter count"

# Every train record carries the documented keys.
$PY - "$WORK/run/metrics.jsonl" <<'PYEOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
train = [r for r in recs if r["kind"] == "train"]
evals = [r for r in recs if r["kind"] == "eval"]
assert train and evals, "missing train or eval records"
for r in train:
    assert set(r) >= {"kind", "step", "epoch", "loss", "lr", "samples_per_s"}, r
for r in evals:
    assert set(r) >= {"kind", "step", "epoch", "test_loss", "test_accuracy"}, r
    assert 0.0 <= r["test_accuracy"] <= 1.0, r
assert train[-1]["loss"] < train[0]["loss"], "loss did not fall"
# The step phases (ms per step, mean over ranks) fit inside the step and cover most of it.
phases = ["data_ms", "forward_backward_ms", "sync_wait_ms", "update_ms"]
shares = []
for r in train:
    assert all(r[k] >= 0 for k in phases), r
    assert r["forward_backward_ms"] > 0 and r["sync_wait_ms"] > 0, r
    step_ms = 1000.0 * 64 * 2 / r["samples_per_s"]
    shares.append(sum(r[k] for k in phases) / step_ms)
    assert shares[-1] <= 1.1, f"phases {shares[-1]:.2f} x the step: {r}"
    assert r["slowest_rank"] in (0, 1) and r["slowest_rank_lead_ms"] >= 0, r
shares.sort()
assert shares[len(shares) // 2] >= 0.5, f"phases cover only {shares} of the steps"
PYEOF

# eval on the written checkpoint reproduces the final accuracy.
run_np 2 120 eval --checkpoint "$WORK/run" | tee "$WORK/eval.txt"
grep -q "test accuracy" "$WORK/eval.txt" || fail "eval printed no accuracy"
echo "PASS"
