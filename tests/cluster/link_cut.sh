#!/usr/bin/env bash
# A link is cut mid-run: rt-h2's link goes down while 2 hosts x 1 rank train under
# launch/ringtrain-run. The job ends within the collective timeout + 10 s with the watchdog's
# line naming the operation, the step and the peer (and its host) it waited for: mpirun
# cannot deliver the abort to the host it lost, so every rank ends itself after its grace
# and the supervisor kills mpirun. The checkpoints written before the cut stay valid; with
# the link back up, --resume auto continues exactly (bitwise the uninterrupted run).
source "$(dirname "$0")/../e2e/fault_common.bash"
source "$(dirname "$0")/cluster.bash"
TIMEOUT_S=5
RUN=(--set train.max_steps=400 --set checkpoint.every_steps=50 --set train.log_every=10
  --set train.threads=1 --set data.prefetch=2 --set distributed.timeout_s=$TIMEOUT_S)
train_hosts() {
  local run=$1
  shift
  cluster_mpirun -np 2 --host rt-h1:1,rt-h2:1 "$RINGTRAIN_BIN" train --config "$MLP_CFG" \
    --run-dir "$run" "${RUN[@]}" "$@"
}

cluster_up 2
train_hosts "$WORK/reference" >"$WORK/reference.out" 2>&1 ||
  { tail -n 30 "$WORK/reference.out" >&2; fail "the uninterrupted run failed"; }

# Cut the link once the run is past its first checkpoints.
cluster_on rt-h1 timeout 120 "$SUPERVISOR" -np 2 --max-restarts 0 --abort-grace 3 \
  --launcher-args "${CLUSTER_MPI_ARGS[*]} --host rt-h1:1,rt-h2:1" -- train --config "$MLP_CFG" \
  --run-dir "$WORK/run" "${RUN[@]}" >"$WORK/cut.out" 2>&1 &
job=$!
wait_for_step "$WORK/run" 120
cluster_link rt-h2 down
SECONDS=0
set +e
wait "$job"
rc=$?
set -e
ended=$SECONDS
cluster_link rt-h2 up
[ "$rc" -ne 0 ] || fail "the run with a cut link exited 0"
echo "the job ended ${ended} s after the cut (exit $rc)"
[ "$ended" -le $((TIMEOUT_S + 10)) ] ||
  fail "the job took ${ended} s to end after the cut, more than the timeout ${TIMEOUT_S} s + 10 s"
expect_line "$WORK/cut.out" \
  "ringtrain: \[rank [01]\] timeout error: [a-z]+\(step [0-9]+.*\) did not complete within $((TIMEOUT_S * 1000)) ms; waiting for .*rank [01] on host rt-h[12]" \
  "no watchdog line naming the operation, step and peer host"
! grep -q "frame #" "$WORK/cut.out" || fail "a stack trace was printed"
expect_line "$WORK/cut.out" "ringtrain-run: the launcher has not ended the job 3 s after a rank's error"
expect_line "$WORK/cut.out" "^ringtrain-run: the job lost contact with host rt-h[12] \(rank\(s\) [01]\)$"
# No rank outlives the timeout + 10 s: each ends itself when the abort cannot reach it.
ranks_left() {
  local host
  for host in rt-h1 rt-h2; do
    ip netns pids "${RINGTRAIN_CLUSTER_PREFIX}$host" | xargs -r ps -o comm= -p | grep ringtrain || true
  done
}
while [ -n "$(ranks_left)" ] && [ "$SECONDS" -le $((TIMEOUT_S + 10)) ]; do sleep 0.5; done
[ -z "$(ranks_left)" ] || fail "ringtrain processes outlived the timeout + 10 s: $(ranks_left)"
for ckpt in "$WORK"/run/checkpoints/step-*; do
  [ -f "$ckpt/MANIFEST" ] || continue
  "$RINGTRAIN_BIN" eval --checkpoint "$ckpt" >/dev/null 2>&1 || fail "$ckpt is not valid after the cut"
done

train_hosts "$WORK/run" --resume auto >"$WORK/resumed.out" 2>&1 ||
  { tail -n 30 "$WORK/resumed.out" >&2; fail "the resumed run failed"; }
expect_line "$WORK/resumed.out" "resumed from .*step-0000"
same_parameters "$WORK/reference" "$WORK/run"
echo "PASS"
