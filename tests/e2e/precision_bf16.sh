#!/usr/bin/env bash
# train.precision: bf16 trains fashion_cnn on 2 ranks to the accuracy band of fp32 (1 epoch
# each, same seed): both >= 0.85 test accuracy, within 2 points of each other. The bf16 run
# must differ from the fp32 one (autocast really ran) and keep float32 master weights (its
# export holds F32 tensors only).
source "$(dirname "$0")/common.bash"
[ -d /usr/share/datasets/fashion-mnist ] || fail "dataset-fashion-mnist is not installed"

for precision in fp32 bf16; do
  run_np 2 800 train --config "$RINGTRAIN_SOURCE_DIR/configs/fashion_mnist_cnn.yaml" \
    --run-dir "$WORK/$precision" --set train.epochs=1 --set train.precision=$precision \
    --set train.threads=1 --set checkpoint.every_steps=0 >"$WORK/$precision.out"
done
"$RINGTRAIN_BIN" export --checkpoint "$WORK/bf16" --format safetensors --out "$WORK/bf16.safetensors"

$PY - "$WORK/fp32/metrics.jsonl" "$WORK/bf16/metrics.jsonl" "$WORK/bf16.safetensors" <<'PYEOF'
import json, struct, sys
def records(path):
    return [json.loads(l) for l in open(path) if l.strip()]
fp32, bf16 = records(sys.argv[1]), records(sys.argv[2])
acc = {name: [r for r in recs if r["kind"] == "eval"][-1]["test_accuracy"]
       for name, recs in (("fp32", fp32), ("bf16", bf16))}
print(f"test accuracy after 1 epoch: fp32 {acc['fp32']:.4f}, bf16 {acc['bf16']:.4f}")
assert acc["fp32"] >= 0.85 and acc["bf16"] >= 0.85, acc
assert abs(acc["fp32"] - acc["bf16"]) <= 0.02, acc
loss32 = [r["loss"] for r in fp32 if r["kind"] == "train"]
loss16 = [r["loss"] for r in bf16 if r["kind"] == "train"]
assert len(loss32) == len(loss16) and loss32 != loss16, "bf16 trained exactly like fp32"
blob = open(sys.argv[3], "rb").read()
(n,) = struct.unpack("<Q", blob[:8])
header = json.loads(blob[8:8 + n])
header.pop("__metadata__", None)
dtypes = {info["dtype"] for info in header.values()}
assert dtypes == {"F32"}, f"bf16 run exported {dtypes}, not float32 master weights"
print(f"bf16 losses differ from fp32 (first {loss16[0]:.4f} vs {loss32[0]:.4f}); "
      f"{len(header)} exported tensors, all F32")
PYEOF
echo "PASS"
