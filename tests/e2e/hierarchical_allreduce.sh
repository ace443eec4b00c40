#!/usr/bin/env bash
# Training across "nodes": RINGTRAIN_RANKS_PER_NODE=2 makes 4 ranks on this machine two nodes
# of two, and the gradient buckets take the hierarchical all-reduce (shared memory inside a
# node, rings between nodes). It must train like the one-node run: the sums are the same
# numbers added in another order, so the final parameters differ in their last bits (which
# also shows the other path ran) and the test loss agrees closely. When one rank lacks shared
# memory, every rank on every node falls back to the ring's messages together: bitwise the
# one-node run.
source "$(dirname "$0")/fault_common.bash"
STEPS=(--set train.max_steps=60 --set checkpoint.every_steps=0 --set train.log_every=20
  --set train.threads=1)
train_np4() {
  local run=$1
  shift
  run_np 4 300 train --config "$MLP_CFG" --run-dir "$run" "${STEPS[@]}" "$@"
}

train_np4 "$WORK/one_node" >"$WORK/one_node.out" 2>&1 || fail "the one-node run failed"
RINGTRAIN_RANKS_PER_NODE=2 train_np4 "$WORK/two_nodes" >"$WORK/two_nodes.out" 2>&1 ||
  fail "the two-node run failed"
[ "$(last_metric "$WORK/two_nodes/metrics.jsonl" summary step)" = "60" ] ||
  fail "the two-node run did not finish"
grep -q "backend ring (hierarchical: 2 nodes x 2 ranks" "$WORK/two_nodes.out" ||
  fail "the start-up line does not name the hierarchical all-reduce"
export_safetensors "$WORK/one_node" "$WORK/one.safetensors"
export_safetensors "$WORK/two_nodes" "$WORK/two.safetensors"
! cmp -s "$WORK/one.safetensors" "$WORK/two.safetensors" ||
  fail "two nodes gave the one-node bits: the hierarchical all-reduce did not run"
a=$(last_metric "$WORK/one_node/metrics.jsonl" eval test_loss)
b=$(last_metric "$WORK/two_nodes/metrics.jsonl" eval test_loss)
$PY -c "import sys; sys.exit(abs($a - $b) > 1e-3)" ||
  fail "test loss $b across two nodes is not the one-node $a"
echo "ok: two nodes trained like one (test loss $b against $a)"

RINGTRAIN_RANKS_PER_NODE=2 with_fault "shm_full:rank=3" train_np4 "$WORK/fallback" \
  >"$WORK/fallback.out" 2>&1 || fail "the two-node run with rank 3's shared memory full failed"
[ "$(grep -c "these buffers need" "$WORK/fallback.out")" = 1 ] ||
  fail "the fallback warning was not printed exactly once"
grep -q "backend ring (MPI messages)" "$WORK/fallback.out" ||
  fail "the start-up line does not say the buckets fell back to messages"
same_parameters "$WORK/one_node" "$WORK/fallback"
echo "PASS"
