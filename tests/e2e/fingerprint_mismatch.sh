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

# Ranks that read different configs (an MPMD launch, a per-host config file): the start-up
# comparison names the first differing key and both values, before any collective depends on
# them (another batch size would pair up different buffers).
mpmd() {  # mpmd RUN_DIR "RANK0 ARGS" "RANK1 ARGS"
  local run=$1
  # shellcheck disable=SC2086
  timeout --kill-after=10 120 mpirun --oversubscribe --bind-to none \
    -np 1 "$RINGTRAIN_BIN" train --config "$MLP_CFG" --run-dir "$run" "${SHORT[@]}" $2 : \
    -np 1 "$RINGTRAIN_BIN" train --config "$MLP_CFG" --run-dir "$run" "${SHORT[@]}" $3
}
expect_failure lr mpmd "$WORK/lr" "--set optimizer.lr=0.1" "--set optimizer.lr=0.2"
expect_line "$WORK/lr.err" \
  "config error: the ranks' configs differ: rank 1 differs from rank 0 first at optimizer.lr: rank 0 has optimizer.lr: 0.1, rank 1 has optimizer.lr: 0.2 HINT: every rank must read the same config file"
expect_failure batch mpmd "$WORK/batch" "--set data.batch_size=32" "--set train.seed=9"
expect_line "$WORK/batch.err" "first at data.batch_size: rank 0 has data.batch_size: 32, rank 1 has data.batch_size: 64"
# Keys documented as per-rank may differ.
mpmd "$WORK/per-rank" "--set train.threads=2 --set data.prefetch=3" "" >"$WORK/per-rank.out" 2>&1 ||
  { cat "$WORK/per-rank.out"; fail "ranks that differ only in per-rank keys were refused"; }

# The periodic check (every 5 steps here) passes on a healthy run.
train_np2 "$WORK/ok" --set train.max_steps=20 --set distributed.fingerprint_every=5 \
  >"$WORK/ok.out" || fail "a healthy run failed the periodic fingerprint check"
echo "PASS"
