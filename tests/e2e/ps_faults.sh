#!/usr/bin/env bash
# The fault-tolerance e2e tests again in parameter-server mode (1 server, 2 workers, bsp; one
# loop serves both modes, so the same features must hold):
#  1. straggler: a slow worker is named in every train record and in one warning, and the
#     server, waiting for it, does not spin;
#  2. watchdog: a worker that hangs ends the job on the deadline, in a step and in the
#     checkpoint hand-shake, and the checkpoint written before the hang is valid;
#  3. exact resume: a worker killed after step 30 and the run resumed with --resume auto ends
#     bitwise identical to an uninterrupted run (the servers reload their partitions of step
#     20, momentum included), with the same train and eval records;
#  4. checkpoint faults: the first worker killed while writing the checkpoint of step 40
#     leaves no partial checkpoint and the run resumes from step 20 to the same parameters;
#     with every checkpoint corrupt, --resume auto refuses; another world size is refused.
source "$(dirname "$0")/fault_common.bash"
PS=(--set distributed.mode=ps --set ps.servers=1 --set ps.consistency=bsp)

# train_ps RUN_DIR [extra args...]: the short run of fault_common.bash on 3 ranks (rank 2
# serves), at most 300 s.
train_ps() {
  local run=$1
  shift
  run_np 3 300 train --config "$MLP_CFG" --run-dir "$run" "${SHORT[@]}" "${PS[@]}" "$@"
}

echo "== 1. straggler"
with_fault "slow:rank=1:ms=20" train_ps "$WORK/slow" | tee "$WORK/slow.txt"
grep -q "parameter-server mode (bsp)" "$WORK/slow.txt" || fail "did not train in parameter-server mode"
$PY - "$WORK/slow/metrics.jsonl" <<'PYEOF'
import json, sys
records = list(map(json.loads, open(sys.argv[1])))
train = [r for r in records if r["kind"] == "train"]
assert len(train) == 6, f"expected 6 train records, got {len(train)}"
for r in train:
    assert r["slowest_rank"] == 1, r
    assert r["slowest_rank_lead_ms"] >= 10.0, r  # slept 20 ms per step
    assert r["sync_wait_ms"] >= 5.0, r  # the other worker waited for it, in its pull
server = [r for r in records if r["kind"] == "ps_server"]
assert server, "no ps_server record"
# Each step waits ~20 ms for rank 1, so a server that sleeps while it waits is mostly idle;
# one that spins on its receives would use its whole core.
assert server[0]["cpu_fraction"] < 0.5, f"the server spins while it waits: {server[0]}"
print(f"ok: all {len(train)} train records name worker rank 1 the slowest; "
      f"the waiting server used {server[0]['cpu_fraction']:.0%} of a core")
PYEOF
[ "$(grep -c "warning: rank 1 is a straggler: over steps 1-10" "$WORK/slow.txt")" = 1 ] ||
  fail "expected one straggler warning for rank 1"

echo "== 2. watchdog"
HANG=(--set distributed.timeout_s=3 --set train.max_steps=20 --set checkpoint.every_steps=10)
SECONDS=0
expect_failure grad with_fault "hang:rank=1:step=5:seconds=600" run_np 3 90 train \
  --config "$MLP_CFG" --run-dir "$WORK/grad" "${SHORT[@]}" "${PS[@]}" "${HANG[@]}"
echo "the job ended ${SECONDS} s after it started (the hang alone would take 600 s)"
expect_line "$WORK/grad.err" "fault injection: rank 1 hangs"
# The other worker waits for its pull of step 5 (under bsp the server waits for rank 1's push).
expect_line "$WORK/grad.err" \
  "^ringtrain: \[rank 0\] timeout error: rank 0 waited 3.0 s for parameters from server rank\(s\) 2 after its push of step 5 HINT:"
expect_failure checkpoint with_fault "hang:rank=1:step=10:at=checkpoint:seconds=600" \
  run_np 3 90 train --config "$MLP_CFG" --run-dir "$WORK/ckpt" "${SHORT[@]}" "${PS[@]}" "${HANG[@]}"
expect_line "$WORK/checkpoint.err" \
  "^ringtrain: \[rank 0\] timeout error: allreduce\(checkpoint hand-shake, step 10, .*\) did not complete within 3000 ms; waiting for (data from )?rank 1"
"$RINGTRAIN_BIN" eval --checkpoint "$WORK/ckpt/checkpoints/step-00000010" >/dev/null 2>&1 ||
  fail "the checkpoint written before the hang is not valid"
[ -f "$WORK/ckpt/ps/server-0/checkpoints/step-00000010/MANIFEST" ] ||
  fail "the server's partition of step 10 is missing"

echo "== 3. exact resume"
train_ps "$WORK/reference" >"$WORK/reference.out"
expect_failure killed with_fault "kill:rank=1:step=30" train_ps "$WORK/run"
expect_line "$WORK/killed.err" "rank 1 kills itself \(SIGKILL\) at step 30"
[ -f "$WORK/run/checkpoints/step-00000020/MANIFEST" ] || fail "no checkpoint of step 20"
[ ! -e "$WORK/run/checkpoints/step-00000040" ] || fail "a checkpoint after the kill exists"
expect_line "$WORK/run/metrics.jsonl" '"step":30' "the killed run did not get to step 30"
train_ps "$WORK/run" --resume auto >"$WORK/resumed.out"
expect_line "$WORK/resumed.out" "resumed from .*step-00000020 at step 20"
same_parameters "$WORK/reference" "$WORK/run"
# (The servers' records count what each attempt served, so only train and eval compare.)
same_metrics "$WORK/reference" "$WORK/run" train,eval

echo "== 4. checkpoint faults"
expect_failure crash with_fault "kill:rank=0:step=40:at=checkpoint" train_ps "$WORK/crash"
expect_line "$WORK/crash.err" "kills itself \(SIGKILL\) at step 40 while writing a checkpoint"
[ ! -e "$WORK/crash/checkpoints/step-00000040" ] || fail "a partial checkpoint got a real name"
train_ps "$WORK/crash" --resume auto >"$WORK/crash_resumed.out"
expect_line "$WORK/crash_resumed.out" "resumed from .*step-00000020 at step 20"
same_parameters "$WORK/reference" "$WORK/crash"

cp -r "$WORK/crash" "$WORK/corrupt"
for f in "$WORK"/corrupt/checkpoints/step-*/model.pt; do
  corrupt_byte "$f" 100
done
expect_failure all_corrupt train_ps "$WORK/corrupt" --resume auto
expect_line "$WORK/all_corrupt.err" "checkpoint error: --resume auto: none of the [0-9]+ checkpoints in .* is valid"
expect_failure other_world run_np 4 300 train --config "$MLP_CFG" --run-dir "$WORK/run" \
  "${SHORT[@]}" "${PS[@]}" --resume auto
expect_line "$WORK/other_world.err" "it was written by 3 ranks, this job has 4.*HINT: .*mpirun -np 3"
echo "PASS"
