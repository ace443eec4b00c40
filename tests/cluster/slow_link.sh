#!/usr/bin/env bash
# A slow link: 3 hosts x 1 rank, rt-h2's link shaped 10x slower (netem rate) than the
# others'. Every rank of the ring then runs at that link's speed, so no rank is a
# straggler, but the ring's waits name the link: its sender (rank 1 on rt-h2) waits for its
# sends to drain while its receiver (rank 2) waits for the data. The job warns of that link,
# its train records name rank 1 as the slowest link's sender, and training completes. The
# same ring with every link equally slow names no link.
source "$(dirname "$0")/../e2e/fault_common.bash"
source "$(dirname "$0")/cluster.bash"
# straggler_ratio 3: 3 ranks share this machine's 2 cores, and the scheduler alone makes one
# rank's work 1.5-2x the others' now and then (a true straggler warning, but not this test's
# subject). A link misread as a rank's work would be ~20x; the slow link itself waits ~60x
# the other links.
RUN=(--set train.max_steps=120 --set train.log_every=20 --set train.threads=1 --set train.epochs=1
  --set checkpoint.enabled=false --set train.straggler_ratio=3)
train_hosts() {
  local run=$1
  cluster_mpirun -np 3 --host rt-h1:1,rt-h2:1,rt-h3:1 "$RINGTRAIN_BIN" train --config "$MLP_CFG" \
    --run-dir "$run" "${RUN[@]}" >"$run.out" 2>&1 ||
    { tail -n 30 "$run.out" >&2; fail "the run in $run failed"; }
  [ "$(last_metric "$run/metrics.jsonl" summary step)" = "120" ] || fail "$run did not finish its 120 steps"
}
# How many train records name rank $2 as the slowest link's sender.
records_naming() {
  $PY - "$1" "$2" <<'PYEOF'
import json, sys
path, rank = sys.argv[1], float(sys.argv[2])
records = [json.loads(l) for l in open(path) if l.strip()]
print(sum(1 for r in records if r.get("kind") == "train" and r.get("slowest_link_rank") == rank))
PYEOF
}

cluster_up 3
cluster_shape rt-h1 200mbit 0.1ms
cluster_shape rt-h2 20mbit 0.1ms
cluster_shape rt-h3 200mbit 0.1ms
train_hosts "$WORK/slow"
expect_line "$WORK/slow.out" \
  "warning: the link from rank 1 \(host rt-h2\) to rank 2 \(host rt-h3\) is the ring's slowest" \
  "no warning naming rt-h2's link"
! grep -q "is a straggler" "$WORK/slow.out" || fail "a slow link was reported as a straggling rank"
named=$(records_naming "$WORK/slow/metrics.jsonl" 1)
# (The first interval includes start-up.)
[ "$named" -ge 4 ] || fail "only $named of the 6 train records name rank 1's link as the slowest"
echo "ok: the slow link rt-h2 -> rt-h3 was named ($named of 6 records)"
grep -m1 "is the ring's slowest" "$WORK/slow.out"

for host in rt-h1 rt-h2 rt-h3; do cluster_shape "$host" 20mbit 0.1ms; done
train_hosts "$WORK/even"
! grep -q "is the ring's slowest" "$WORK/even.out" ||
  fail "a ring of equal links named one: $(grep -m1 "is the ring's slowest" "$WORK/even.out")"
echo "PASS"
