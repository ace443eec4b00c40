#!/usr/bin/env bash
# A scheduler's stop signal: SIGTERM sent to every rank (as SLURM's scancel, preemption and
# time limit do), or SIGUSR1 to mpirun (which forwards it to every rank; sbatch
# --signal=USR1@SECONDS sends it ahead of the time limit). Every rank finishes its step, the
# job writes a checkpoint of the step it stopped at and exits with code 75, and --resume
# auto then ends bitwise as a run that never stopped. Also in parameter-server mode. The
# user's SIGINT (Ctrl-C) to every rank stops the same way with the interrupt's code 130.
source "$(dirname "$0")/fault_common.bash"
RUN=(--set train.max_steps=1500 --set train.epochs=4 --set checkpoint.every_steps=500 --set train.log_every=50
  --set train.threads=1 --set data.prefetch=2)
train() {
  local np=$1 run=$2
  shift 2
  run_np "$np" 300 train --config "$MLP_CFG" --run-dir "$run" "${RUN[@]}" "$@"
}

# stop_run NAME SIGNAL TARGET NP [train args]: starts a run, sends SIGNAL once it has logged
# step 100 (TARGET ranks: to every rank; mpirun: to mpirun), and checks how it stopped.
stop_run() {
  local name=$1 signal=$2 target=$3 np=$4
  shift 4
  train "$np" "$WORK/$name" "$@" >"$WORK/$name.out" 2>&1 &
  local job=$!
  wait_for_step "$WORK/$name" 100
  if [ "$target" = ranks ]; then
    pkill "-$signal" -f "^[^ ]*/ringtrain train .*--run-dir $WORK/$name "
  else
    pkill "-$signal" -f "^mpirun .* train .*--run-dir $WORK/$name "
  fi
  set +e
  wait "$job"
  local rc=$?
  set -e
  local expected=75
  [ "$signal" != INT ] || expected=130
  [ "$rc" -eq "$expected" ] || { tail -n 20 "$WORK/$name.out" >&2; fail "$name: exit $rc, expected $expected"; }
  expect_line "$WORK/$name.out" \
    "^stopping after step [0-9]+ for SIG$signal: checkpoint of step [0-9]+ written; continue with --resume auto \(exit code $expected\)"
  local step
  step=$(grep -oE "stopping after step [0-9]+" "$WORK/$name.out" | grep -oE "[0-9]+$")
  [ "$step" -lt 1500 ] || fail "$name: stopped only at the end"
  [ -f "$WORK/$name/checkpoints/$(printf 'step-%08d' "$step")/MANIFEST" ] ||
    fail "$name: no checkpoint of step $step"
  ! grep -q "frame #" "$WORK/$name.out" || fail "$name: a stack trace was printed"
  train "$np" "$WORK/$name" "$@" --resume auto >"$WORK/$name.resumed.out" 2>&1 ||
    { tail -n 20 "$WORK/$name.resumed.out" >&2; fail "$name: the resumed run failed"; }
  expect_line "$WORK/$name.resumed.out" "resumed from .*step-$(printf '%08d' "$step") at step $step"
  echo "ok: $name stopped after step $step for SIG$signal and resumed"
}

train 2 "$WORK/reference" >"$WORK/reference.out" 2>&1 || fail "the uninterrupted run failed"
stop_run term TERM ranks 2
same_parameters "$WORK/reference" "$WORK/term"
# (The train record of the interval the run stopped in averages fewer steps after the resume.)
same_metrics "$WORK/reference" "$WORK/term" eval
stop_run usr1 USR1 mpirun 2
same_parameters "$WORK/reference" "$WORK/usr1"
stop_run int INT ranks 2
same_parameters "$WORK/reference" "$WORK/int"

PS=(--set distributed.mode=ps --set ps.servers=1 --set ps.consistency=bsp)
train 3 "$WORK/ps_reference" "${PS[@]}" >"$WORK/ps_reference.out" 2>&1 ||
  fail "the uninterrupted parameter-server run failed"
stop_run ps_term TERM ranks 3 "${PS[@]}"
same_parameters "$WORK/ps_reference" "$WORK/ps_term"
echo "PASS"
