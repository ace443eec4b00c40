#!/usr/bin/env bash
# ZeRO-1 (distributed.zero: 1): optimizer state sharded over the ranks. Checked:
#  * the parameters are plain all-reduce training's, bitwise (the reduce-scatter is the
#    first half of the ring's all-reduce, and SGD / Adam / AdamW are element-wise), at np
#    1..5 with SGD-momentum, with Adam and AdamW, with overlap off, with bf16 compression,
#    with backend mpi and on two "nodes" (the hierarchical buffers);
#    with gradient clipping (the global norm summed over shards in another order) within
#    float tolerance, and far from an unclipped run (so that check can fail); a non-finite
#    step skipped as plain training skips it;
#  * each rank's optimizer state is about 1/N of plain training's (the summary's
#    optimizer_state_bytes, the fullest rank's), at np 2 and 4;
#  * a ZeRO-1 checkpoint (the state gathered per parameter) resumes exactly at the same
#    world size, elastically at another (4 -> 2, within tolerance of the 4-rank run), and
#    without ZeRO;
#  * distributed.zero with the parameter-server mode, and stage 2, are refused in one line.
source "$(dirname "$0")/fault_common.bash"

STEPS=(--set train.max_steps=30 --set checkpoint.every_steps=10 --set train.log_every=10
  --set train.threads=1 --set data.prefetch=2)
train() {
  local np=$1 run=$2
  shift 2
  run_np "$np" 300 train --config "$MLP_CFG" --run-dir "$run" "${STEPS[@]}" "$@" >"$run.out"
}
state_bytes() { last_metric "$1/metrics.jsonl" summary optimizer_state_bytes; }

# --- the same parameters as plain training ---
for np in 1 2 3 4 5; do
  train "$np" "$WORK/plain$np"
  train "$np" "$WORK/zero$np" --set distributed.zero=1
  expect_line "$WORK/zero$np.out" "ZeRO-1 optimizer state"
  same_tensors "$WORK/plain$np" "$WORK/zero$np"
done
for opt in adam adamw; do
  train 3 "$WORK/plain-$opt" --set optimizer.name=$opt --set optimizer.lr=0.001
  train 3 "$WORK/zero-$opt" --set optimizer.name=$opt --set optimizer.lr=0.001 \
    --set distributed.zero=1
  same_tensors "$WORK/plain-$opt" "$WORK/zero-$opt"
done
for variant in "distributed.overlap=false" "distributed.compression=bf16" "distributed.backend=mpi"; do
  train 4 "$WORK/plain-v" --set "$variant"
  train 4 "$WORK/zero-v" --set "$variant" --set distributed.zero=1
  same_tensors "$WORK/plain-v" "$WORK/zero-v"
  rm -rf "$WORK/plain-v" "$WORK/zero-v"
done
# Two "nodes" of 2 ranks: the hierarchical buffers (reduced whole, gathered by the ring).
RINGTRAIN_RANKS_PER_NODE=2 train 4 "$WORK/plain-h"
RINGTRAIN_RANKS_PER_NODE=2 train 4 "$WORK/zero-h" --set distributed.zero=1
expect_line "$WORK/zero-h.out" "hierarchical"
same_tensors "$WORK/plain-h" "$WORK/zero-h"
train 4 "$WORK/plain-clip" --set train.grad_clip_norm=0.5
train 4 "$WORK/zero-clip" --set train.grad_clip_norm=0.5 --set distributed.zero=1
close_parameters "$WORK/plain-clip" "$WORK/zero-clip" 1e-5 ||
  fail "clipped ZeRO-1 training is not plain training's"
if close_parameters "$WORK/plain4" "$WORK/zero-clip" 1e-5 >"$WORK/unclipped.cmp"; then
  fail "clipping at 0.5 changed nothing: the clipping check cannot fail"
fi
cat "$WORK/unclipped.cmp"

# A NaN loss on one rank: the global norm over the shards is not finite on every rank, which
# skip the update alike (train.on_nonfinite: skip), as plain training does.
with_fault "nan:rank=1:step=3" train 3 "$WORK/plain-nan" --set train.on_nonfinite=skip
with_fault "nan:rank=1:step=3" train 3 "$WORK/zero-nan" --set train.on_nonfinite=skip \
  --set distributed.zero=1
expect_line "$WORK/zero-nan.out" "non-finite gradient norm at step 3 .*; skipping the update"
same_tensors "$WORK/plain-nan" "$WORK/zero-nan"

# --- memory: about 1/N per rank ---
for np in 2 4; do
  plain=$(state_bytes "$WORK/plain$np")
  zero=$(state_bytes "$WORK/zero$np")
  $PY - "$np" "$plain" "$zero" <<'PYEOF' || fail "ZeRO-1 optimizer state is not about 1/N"
import sys
n, plain, zero = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
ratio = plain / zero
print(f"np {n}: optimizer state {plain:.0f} bytes plain, {zero:.0f} with ZeRO-1 "
      f"on the fullest rank (1/{ratio:.3f})")
assert plain > 0 and 0.97 * n <= ratio <= n * 1.0001, ratio
PYEOF
done
expect_line "$WORK/zero4.out" "optimizer state: .* \(ZeRO-1: sharded over 4 ranks\)"

# --- checkpoints ---
# Exact at the same world size: killed after step 25, resumed from step 20.
expect_failure killed with_fault "kill:rank=1:step=25" train 4 "$WORK/resume4" \
  --set distributed.zero=1
[ -f "$WORK/resume4/checkpoints/step-00000020/MANIFEST" ] || fail "no checkpoint of step 20"
cp -a "$WORK/resume4" "$WORK/resume4-to2"
cp -a "$WORK/resume4" "$WORK/resume4-plain"
train 4 "$WORK/resume4" --resume auto --set distributed.zero=1
expect_line "$WORK/resume4.out" "resumed from .*step-00000020 at step 20"
same_tensors "$WORK/zero4" "$WORK/resume4"
# Without ZeRO: the checkpoint holds the plain optimizer's state.
train 4 "$WORK/resume4-plain" --resume auto
same_tensors "$WORK/zero4" "$WORK/resume4-plain"
# Elastic, 4 -> 2: the 4-rank run's global batch; the sums in another order.
train 2 "$WORK/resume4-to2" --resume auto --set distributed.zero=1
expect_line "$WORK/resume4-to2.out" "elastic resume: written by 4 ranks, resumed on 2"
close_parameters "$WORK/zero4" "$WORK/resume4-to2" 1e-5 ||
  fail "the 4 -> 2 ZeRO-1 resume is not the 4-rank run's"

# --- refused ---
expect_failure zero-ps train 3 "$WORK/ps" --set distributed.zero=1 --set distributed.mode=ps
expect_line "$WORK/zero-ps.err" "distributed.zero shards the optimizer state over all-reduce ranks"
expect_failure zero-2 train 2 "$WORK/z2" --set distributed.zero=2
expect_line "$WORK/zero-2.err" "distributed.zero: 2 is not supported"
echo "PASS"
