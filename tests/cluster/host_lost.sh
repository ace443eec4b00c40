#!/usr/bin/env bash
# A host dies: every process on rt-h2 (its two ranks and its MPI daemon) is killed with
# SIGKILL at a random step of a 2 hosts x 2 ranks run under launch/ringtrain-run. The ranks on
# rt-h1 end within the collective timeout + 10 s, no checkpoint is corrupted, a host the
# supervisor names as lost is rt-h2, and the supervisor's restart (the same host list,
# rt-h2 being back at once) resumes from the newest valid checkpoint and finishes the run
# bitwise as a run that never lost a host.
source "$(dirname "$0")/../e2e/fault_common.bash"
source "$(dirname "$0")/cluster.bash"
TIMEOUT_S=5
RUN=(--set train.max_steps=300 --set checkpoint.every_steps=50 --set train.log_every=10
  --set train.threads=1 --set data.prefetch=2 --set distributed.timeout_s=$TIMEOUT_S)
HOSTS=(--launcher-args "${CLUSTER_MPI_ARGS[*]} --host rt-h1:2,rt-h2:2")

cluster_up 2
cluster_mpirun -np 4 --host rt-h1:2,rt-h2:2 "$RINGTRAIN_BIN" train --config "$MLP_CFG" \
  --run-dir "$WORK/reference" "${RUN[@]}" >"$WORK/reference.out" 2>&1 ||
  { tail -n 30 "$WORK/reference.out" >&2; fail "the run without a lost host failed"; }

# The step to lose rt-h2 at: past the first checkpoint, before the last.
kill_step=$((60 + RANDOM % 180))
kill_step=$((kill_step / 10 * 10))
echo "rt-h2 dies after step $kill_step"
cluster_on rt-h1 timeout 300 "$SUPERVISOR" -np 4 --max-restarts 1 --backoff 1 --abort-grace 3 \
  "${HOSTS[@]}" -- train --config "$MLP_CFG" --run-dir "$WORK/run" "${RUN[@]}" \
  >"$WORK/run.out" 2>&1 &
job=$!
wait_for_step "$WORK/run" "$kill_step"
cluster_kill_host rt-h2
SECONDS=0
# The attempt that lost rt-h2 ends (the supervisor logs it) within the timeout + 10 s.
while ! grep -q "attempt 1 failed" "$WORK/run.out" && [ "$SECONDS" -le $((TIMEOUT_S + 10)) ]; do
  sleep 0.2
done
ended=$SECONDS
grep -q "attempt 1 failed" "$WORK/run.out" ||
  { cat "$WORK/run.out" >&2; fail "the job had not ended $((TIMEOUT_S + 10)) s after rt-h2 died"; }
echo "the attempt that lost rt-h2 ended ${ended} s after it died"
set +e
wait "$job"
rc=$?
set -e
[ "$rc" -eq 0 ] || { tail -n 30 "$WORK/run.out" >&2; fail "the supervised run did not recover (exit $rc)"; }
# Open MPI names the host in some of its messages ("Peer host: rt-h2") but not in all ("ORTE
# was unable to reliably start one or more daemons"): the supervisor names it, with its
# ranks, when one does, and must never blame a host that is alive.
! grep -q "lost contact with host rt-h1" "$WORK/run.out" || fail "the supervisor blamed rt-h1"
# It named it in 9 of 9 runs here; the one message that names no host is allowed, no other.
if ! grep -q "lost contact with host" "$WORK/run.out"; then
  grep -q "unable to reliably start one or more daemons" "$WORK/run.out" ||
    { cat "$WORK/run.out" >&2; fail "the supervisor did not name the lost host rt-h2"; }
  echo "note: Open MPI named no host this time (\"unable to reliably start\")"
else
  expect_line "$WORK/run.out" "^ringtrain-run: the job lost contact with host rt-h2 \(rank\(s\) 2, 3\)$"
fi
! grep -q "frame #" "$WORK/run.out" || fail "a stack trace was printed"
expect_line "$WORK/run.out" "resumed from .*step-0000"
for ckpt in "$WORK"/run/checkpoints/step-*; do
  "$RINGTRAIN_BIN" eval --checkpoint "$ckpt" >/dev/null 2>&1 || fail "$ckpt is not valid"
done
same_parameters "$WORK/reference" "$WORK/run"
echo "PASS"
