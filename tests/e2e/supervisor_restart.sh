#!/usr/bin/env bash
# The supervisor launch/ringtrain-run:
#  1. rank 1 is killed with SIGKILL after step 30 (once: a marker file stops the fault from
#     firing again); the supervisor logs the failure and its cause, restarts with
#     --resume auto after the back-off, and the job ends bitwise identical to an
#     uninterrupted run;
#  2. a job that keeps dying is restarted --max-restarts times with a growing back-off, then
#     the supervisor gives up with the last error and a non-zero exit;
#  3. a config error is not retried, nor is a data error: the restart policy by exit status
#     (core/exit_codes.h); the supervisor passes the job's status on.
source "$(dirname "$0")/fault_common.bash"
export RINGTRAIN_BIN
SUP=("$SUPERVISOR" -np 2 --launcher-args "--oversubscribe --bind-to none")

train_np2 "$WORK/reference" >"$WORK/reference.out"

# 1. One crash, one restart.
with_fault "kill:rank=1:step=30:once=$WORK/fired" timeout 600 "${SUP[@]}" --max-restarts 2 \
  --backoff 1 -- train --config "$MLP_CFG" --run-dir "$WORK/run" "${SHORT[@]}" \
  >"$WORK/sup.out" 2>"$WORK/sup.err" || { cat "$WORK/sup.err" >&2; fail "supervised run failed"; }
expect_line "$WORK/sup.err" "ringtrain-run: attempt 1 failed \(exit [0-9]+\)"
expect_line "$WORK/sup.err" "ringtrain-run:   .*(process rank 1 .*signal 9|killed)"
expect_line "$WORK/sup.err" "ringtrain-run: restart 1 of 2 in 1 s with --resume auto"
expect_line "$WORK/sup.err" "ringtrain-run: attempt 2: .* --resume auto"
expect_line "$WORK/sup.err" "ringtrain-run: job finished after 1 restart"
expect_line "$WORK/sup.out" "resumed from .*step-00000020 at step 20"
same_parameters "$WORK/reference" "$WORK/run"

# 2. A job that dies every time (rank 0 at step 2): 1 + 2 attempts, back-off 1 s then 2 s.
expect_failure give_up with_fault "kill:rank=0:step=2" timeout 600 "${SUP[@]}" \
  --max-restarts 2 --backoff 1 -- train --config "$MLP_CFG" --run-dir "$WORK/doomed" "${SHORT[@]}"
expect_line "$WORK/give_up.err" "restart 1 of 2 in 1 s"
expect_line "$WORK/give_up.err" "restart 2 of 2 in 2 s"
expect_line "$WORK/give_up.err" "attempt 3 failed"
expect_line "$WORK/give_up.err" "giving up after 2 restart\(s\); last error:"
! grep -q "attempt 4" "$WORK/give_up.err" || fail "more attempts than --max-restarts allows"

# 3. Not retried: the same config error would fail every attempt.
expect_failure config timeout 600 "${SUP[@]}" --max-restarts 3 --backoff 1 -- train \
  --config "$MLP_CFG" --run-dir "$WORK/bad" --set optimizer.lrr=1
expect_line "$WORK/config.err" "unknown key 'lrr'"
expect_line "$WORK/config.err" "not restarting \(exit 3\): a config or usage error"
! grep -q "attempt 2" "$WORK/config.err" || fail "a config error was retried"
set +e
"${SUP[@]}" --max-restarts 3 --backoff 1 -- train --config "$MLP_CFG" --run-dir "$WORK/nodata" \
  --set data.dir="$WORK/no-such-data" >"$WORK/data.out" 2>"$WORK/data.err"
rc=$?
set -e
[ "$rc" -eq 4 ] || { tail -n 20 "$WORK/data.err" >&2; fail "a data error ended with exit $rc, not 4"; }
expect_line "$WORK/data.err" "not restarting \(exit 4\): a data error"
! grep -q "attempt 2" "$WORK/data.err" || fail "a data error was retried"
echo "PASS"
