#!/usr/bin/env bash
# SLURM's stop signals reach every rank of a job on 2 hosts x 2 ranks (srun --mpi=pmix):
#  1. time limit: `sbatch --time=2 --signal=USR1@60` makes slurmctld send SIGUSR1 to every
#     task about a minute before the limit (its timer checks every 30 s, so 30-60 s in);
#  2. `scancel --signal=TERM` (what a preemption sends first) while the job runs.
# Each time every rank finishes its step, the job writes the checkpoint of the step it
# stopped at, srun and the job end with exit code 75 (which a requeue script resumes on),
# and an sbatch with --resume auto ends bitwise as an uninterrupted job.
source "$(dirname "$0")/../e2e/fault_common.bash"
source "$(dirname "$0")/cluster.bash"
source "$(dirname "$0")/slurm.bash"
RUN="--set train.max_steps=1500 --set train.epochs=8 --set checkpoint.every_steps=500"
RUN+=" --set train.log_every=50 --set train.threads=1 --set data.prefetch=2"
export OMPI_MCA_btl=tcp,vader,self OMPI_MCA_btl_tcp_if_include=mpi0 OMPI_MCA_oob_tcp_if_include=mpi0

# job_script NAME RUN SBATCH_OPTIONS FAULT [train args]: $WORK/NAME.sh, the batch script of a
# 2 x 2 job training in $WORK/RUN; FAULT (RINGTRAIN_FAULT) slows its steps so that it is
# still running when a signal comes.
job_script() {
  local name=$1 run=$2 options=$3 fault=$4
  shift 4
  cat >"$WORK/$name.sh" <<JOB
#!/bin/bash
#SBATCH --nodes=2 --ntasks-per-node=2 --output=$WORK/$name.out $options
export RINGTRAIN_FAULT="$fault"
srun --mpi=pmix "$RINGTRAIN_BIN" train --config "$MLP_CFG" --run-dir "$WORK/$run" $RUN $*
rc=\$?
echo "srun exit \$rc"
exit \$rc
JOB
}

# stopped NAME SIGNAL: the job stopped with code 75 at a step before the end, with that
# step's checkpoint; sets $step.
stopped() {
  local name=$1 signal=$2
  expect_line "$WORK/$name.out" "^srun exit 75$" "$name: srun did not end with 75"
  expect_line "$WORK/$name.out" \
    "^stopping after step [0-9]+ for $signal: checkpoint of step [0-9]+ written; continue with --resume auto"
  ! grep -q "frame #" "$WORK/$name.out" || fail "$name: a stack trace was printed"
  step=$(grep -oE "stopping after step [0-9]+" "$WORK/$name.out" | grep -oE "[0-9]+$")
  [ "$step" -lt 1500 ] || fail "$name: stopped only at the end"
  [ -f "$WORK/$name/checkpoints/$(printf 'step-%08d' "$step")/MANIFEST" ] ||
    fail "$name: no checkpoint of step $step"
}

# resume NAME STEP: an sbatch with --resume auto from STEP to the end, bitwise the reference.
resume() {
  local name=$1 step=$2
  job_script "$name.resumed" "$name" "" "" --resume auto
  slurm_on timeout 300 sbatch --wait "$WORK/$name.resumed.sh" >/dev/null ||
    { tail -n 20 "$WORK/$name.resumed.out" >&2; fail "$name: the resumed job failed"; }
  expect_line "$WORK/$name.resumed.out" "resumed from .*step-$(printf '%08d' "$step") at step $step"
  same_parameters "$WORK/reference" "$WORK/$name"
}

cluster_up 2
slurm_up

job_script reference reference "" ""
slurm_on timeout 300 sbatch --wait "$WORK/reference.sh" >/dev/null ||
  { tail -n 20 "$WORK/reference.out" >&2; fail "the uninterrupted job failed"; }
expect_line "$WORK/reference.out" "^done: 1500 steps"

echo "== 1. time limit: --time=2 --signal=USR1@60"
# 60 ms per step: 1500 steps would take 90 s, past the signal.
job_script limit limit "--time=2 --signal=USR1@60" "slow:rank=0:ms=60"
set +e
slurm_on timeout 200 sbatch --wait "$WORK/limit.sh" >/dev/null
rc=$?
set -e
[ "$rc" -eq 75 ] || { tail -n 20 "$WORK/limit.out" >&2; fail "time limit: sbatch --wait gave $rc, not the job's 75"; }
stopped limit SIGUSR1
[ "$step" -gt 0 ] || fail "time limit: no step before the signal"
echo "ok: the time-limited job stopped after step $step for SIGUSR1 with code 75"
resume limit "$step"

echo "== 2. scancel --signal=TERM"
job_script preempted preempted "" "slow:rank=0:ms=60"
job=$(slurm_on sbatch --parsable "$WORK/preempted.sh")
wait_for_step "$WORK/preempted" 100
slurm_on scancel --signal=TERM "$job"
for _ in $(seq 600); do
  [ -z "$(slurm_on squeue -h -j "$job" 2>/dev/null)" ] && break
  sleep 0.2
done
[ -z "$(slurm_on squeue -h -j "$job" 2>/dev/null)" ] || fail "scancel: the job did not end in 120 s"
stopped preempted SIGTERM
echo "ok: scancel --signal=TERM stopped the job after step $step with code 75"
resume preempted "$step"
echo "PASS"
