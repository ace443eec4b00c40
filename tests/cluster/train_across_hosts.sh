#!/usr/bin/env bash
# Training across hosts: fashion_cnn on 2 hosts x 2 ranks (network namespaces, TCP between
# them; see cluster.bash). MPI finds the two nodes itself (MPI_Comm_split_type), the
# start-up line names them, the gradients cross the hosts' links, and the run ends with
# bitwise the parameters of 4 ranks on one host cut into the same 2 x 2 layout by
# RINGTRAIN_RANKS_PER_NODE: the same hierarchical all-reduce adds the same numbers in the
# same order, whichever transport carries them between the nodes.
source "$(dirname "$0")/../e2e/fault_common.bash"
source "$(dirname "$0")/cluster.bash"
CNN_CFG="$RINGTRAIN_SOURCE_DIR/configs/fashion_mnist_cnn.yaml"
STEPS=(--set train.max_steps=40 --set checkpoint.every_steps=20 --set train.log_every=10
  --set train.threads=1 --set train.epochs=1)

cluster_up 2
# Bytes HOST sent over its link (/proc/net/dev is the reader's namespace's).
tx_bytes() { cluster_exec "$1" cat /proc/net/dev | awk '$1 == "mpi0:" { print $10 }'; }
before=$(tx_bytes rt-h2)
cluster_mpirun -np 4 --host rt-h1:2,rt-h2:2 "$RINGTRAIN_BIN" train --config "$CNN_CFG" \
  --run-dir "$WORK/hosts" "${STEPS[@]}" >"$WORK/hosts.out" 2>&1 ||
  { tail -n 30 "$WORK/hosts.out" >&2; fail "the run on 2 hosts x 2 ranks failed"; }
sent=$(($(tx_bytes rt-h2) - before))
expect_line "$WORK/hosts.out" "backend ring \(hierarchical: 2 nodes x 2 ranks on hosts rt-h1, rt-h2," \
  "the start-up line does not name the 2 hosts x 2 ranks"
expect_line "$WORK/hosts.out" "^hosts: rt-h1 \(ranks 0, 1\), rt-h2 \(ranks 2, 3\)$"
[ "$(cat "$WORK/hosts/hosts")" = "$(printf 'rt-h1 0 1\nrt-h2 2 3')" ] ||
  fail "the run directory's hosts file is not rt-h1 0 1 / rt-h2 2 3: $(cat "$WORK/hosts/hosts")"
[ "$(last_metric "$WORK/hosts/metrics.jsonl" summary step)" = "40" ] ||
  fail "the run on 2 hosts did not finish its 40 steps"
# fashion_cnn's gradients are 1.7 MB a step; between 2 nodes each sends about that much.
[ "$sent" -gt $((40 * 1000 * 1000)) ] ||
  fail "rt-h2 sent only $sent bytes over its link in 40 steps: the gradients did not cross it"
echo "ok: 2 hosts x 2 ranks trained 40 steps; rt-h2 sent $((sent / 1000000)) MB over its link"

RINGTRAIN_RANKS_PER_NODE=2 run_np 4 600 train --config "$CNN_CFG" --run-dir "$WORK/one_host" \
  "${STEPS[@]}" >"$WORK/one_host.out" 2>&1 ||
  { tail -n 30 "$WORK/one_host.out" >&2; fail "the run on one host failed"; }
expect_line "$WORK/one_host.out" "hierarchical: 2 nodes x 2 ranks cut from host .* by RINGTRAIN_RANKS_PER_NODE"
same_parameters "$WORK/one_host" "$WORK/hosts"
same_metrics "$WORK/one_host" "$WORK/hosts" train,eval
echo "PASS"
