#!/usr/bin/env bash
# Export interop: a briefly trained fashion_cnn is exported as safetensors and as a torch
# state_dict; Python (/usr/bin/python3 with torch) parses the safetensors file with its own
# reader, loads both into the equivalent torch.nn model, and reproduces the logits that
# `ringtrain predict` prints for the first 100 test images to 1e-5.
source "$(dirname "$0")/fault_common.bash"
$PY -c "import torch" 2>/dev/null || fail "$PY has no torch (install python3-torch)"

run_np 2 600 train --config "$RINGTRAIN_SOURCE_DIR/configs/fashion_mnist_cnn.yaml" \
  --run-dir "$WORK/cnn" --set train.max_steps=30 --set train.log_every=10 \
  --set train.threads=1 >"$WORK/train.out"

"$RINGTRAIN_BIN" export --checkpoint "$WORK/cnn" --format safetensors --out "$WORK/cnn.safetensors"
"$RINGTRAIN_BIN" export --checkpoint "$WORK/cnn" --format torch --out "$WORK/cnn.pt"
# A checkpoint directory works as well as a run directory.
ckpt=$(ls -d "$WORK"/cnn/checkpoints/step-* | tail -n 1)
"$RINGTRAIN_BIN" predict --checkpoint "$ckpt" --count 100 >"$WORK/predict.jsonl"
[ "$(wc -l <"$WORK/predict.jsonl")" -eq 100 ] || fail "predict did not print 100 lines"

$PY "$(dirname "$0")/export_interop.py" --safetensors "$WORK/cnn.safetensors" \
  --torch "$WORK/cnn.pt" --predictions "$WORK/predict.jsonl" \
  --data /usr/share/datasets/fashion-mnist

# Export refuses nonsense with one clear line.
expect_failure bad_format "$RINGTRAIN_BIN" export --checkpoint "$WORK/cnn" --format onnx \
  --out "$WORK/x"
expect_line "$WORK/bad_format.err" "unknown export format 'onnx'"
expect_failure no_checkpoint "$RINGTRAIN_BIN" predict --checkpoint "$WORK/nowhere"
expect_line "$WORK/no_checkpoint.err" "checkpoint error: checkpoint path .*nowhere is not a directory"
echo "PASS"
