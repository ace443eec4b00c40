#!/usr/bin/env bash
# `distributed.backend: nccl` where it cannot run (no GPU, a CPU-only LibTorch, or a binary
# built without NCCL) ends the job at start: one clear config-error line with a HINT, a
# non-zero exit, no hang, no stack trace, and no training started.
source "$(dirname "$0")/common.bash"
CFG="$RINGTRAIN_SOURCE_DIR/configs/fashion_mnist_mlp.yaml"

# Two ranks on a node with two or more GPUs could legitimately train: nothing to refuse.
gpus=$( (nvidia-smi -L 2>/dev/null || true) | grep -c "^GPU " || true)
if [ "${gpus:-0}" -ge 2 ]; then
  echo "SKIP: $gpus GPUs here, so backend nccl on 2 ranks may run"
  exit 0
fi

set +e
run_np 2 60 train --config "$CFG" --run-dir "$WORK/run" --set distributed.backend=nccl \
  >"$WORK/out.txt" 2>"$WORK/err.txt"
rc=$?
set -e
cat "$WORK/err.txt"
[ "$rc" -ne 0 ] || fail "backend nccl without a usable GPU exited 0"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then fail "backend nccl without a usable GPU hung (timed out)"; fi
# No GPU / CPU-only LibTorch / not built in; with exactly one GPU and a CUDA LibTorch, two
# ranks cannot each have their own: that is refused just as clearly.
pattern='^ringtrain: \[rank [01]\] config error: distributed\.backend: nccl (needs a GPU and a CUDA-enabled LibTorch; .+|is not built into this binary .+|needs one GPU per rank, .+) HINT: .+'
grep -E "$pattern" "$WORK/err.txt" >/dev/null || fail "no clear 'distributed.backend: nccl' line"
grep -q "HINT: use distributed.backend ring or mpi" "$WORK/err.txt" ||
  grep -q "HINT: launch at most 1 rank" "$WORK/err.txt" || fail "the HINT does not say how to fix it"
! grep -q "frame #" "$WORK/err.txt" || fail "stack trace printed"
! grep -q "internal error" "$WORK/err.txt" || fail "reported as an internal error"
# Refused before the trainer set anything up.
[ ! -e "$WORK/run/metrics.jsonl" ] || fail "training started despite the error"
echo "PASS"
