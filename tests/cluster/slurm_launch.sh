#!/usr/bin/env bash
# SLURM launches ringtrain on 2 hosts x 2 ranks (slurm.bash: slurmctld, a slurmd per host,
# munge, started by the test): `sbatch` of a script that runs `srun --mpi=pmix` (PMIx is the
# plug-in Debian's Open MPI and SLURM share), and `mpirun` inside an `salloc`. Both train to
# bitwise the same parameters (the same 2 x 2 hierarchical all-reduce). `srun` without an MPI
# plug-in would start 4 one-rank jobs writing one run directory: every task refuses with
# one line naming the fix, before MPI starts.
source "$(dirname "$0")/../e2e/fault_common.bash"
source "$(dirname "$0")/cluster.bash"
source "$(dirname "$0")/slurm.bash"
STEPS=(--set train.max_steps=40 --set checkpoint.every_steps=20 --set train.log_every=10
  --set train.threads=1)
# Open MPI's TCP transport over the cluster's interfaces, for srun's tasks and mpirun alike.
export OMPI_MCA_btl=tcp,vader,self OMPI_MCA_btl_tcp_if_include=mpi0 OMPI_MCA_oob_tcp_if_include=mpi0

cluster_up 2
slurm_up

cat >"$WORK/job.sh" <<JOB
#!/bin/bash
#SBATCH --nodes=2 --ntasks-per-node=2 --output=$WORK/sbatch.out
srun --mpi=pmix "$RINGTRAIN_BIN" train --config "$MLP_CFG" --run-dir "$WORK/sbatch" ${STEPS[*]}
JOB
slurm_on timeout 180 sbatch --wait "$WORK/job.sh" >/dev/null ||
  { tail -n 20 "$WORK/sbatch.out" >&2; fail "the sbatch job failed"; }
expect_line "$WORK/sbatch.out" "^hosts: rt-h1 \(ranks 0, 1\), rt-h2 \(ranks 2, 3\)$" \
  "the sbatch job did not run 2 ranks on each host"
expect_line "$WORK/sbatch.out" "^done: 40 steps"
echo "ok: sbatch + srun --mpi=pmix trained on 2 hosts x 2 ranks"

slurm_on timeout 180 salloc --nodes=2 --ntasks-per-node=2 mpirun "$RINGTRAIN_BIN" train \
  --config "$MLP_CFG" --run-dir "$WORK/salloc" "${STEPS[@]}" >"$WORK/salloc.out" 2>&1 ||
  { tail -n 20 "$WORK/salloc.out" >&2; fail "mpirun inside salloc failed"; }
expect_line "$WORK/salloc.out" "^hosts: rt-h1 \(ranks 0, 1\), rt-h2 \(ranks 2, 3\)$"
expect_line "$WORK/salloc.out" "^done: 40 steps"
same_parameters "$WORK/sbatch" "$WORK/salloc"

set +e
slurm_on timeout 120 srun --nodes=2 --ntasks-per-node=2 "$RINGTRAIN_BIN" train --config "$MLP_CFG" \
  --run-dir "$WORK/nompi" "${STEPS[@]}" >"$WORK/nompi.out" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "srun without --mpi trained"
[ "$rc" -ne 124 ] || fail "srun without --mpi hung"
[ "$(grep -c "config error: srun started this process without an MPI plug-in" "$WORK/nompi.out")" = 4 ] ||
  { cat "$WORK/nompi.out" >&2; fail "not every task of srun without --mpi refused with one line"; }
expect_line "$WORK/nompi.out" "HINT: launch with srun --mpi=pmix"
! grep -q "MPI_Init" "$WORK/nompi.out" || fail "MPI started before the refusal"
[ ! -e "$WORK/nompi/metrics.jsonl" ] || fail "srun without --mpi wrote a run directory"
echo "PASS"
