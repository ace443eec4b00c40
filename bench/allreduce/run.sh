#!/usr/bin/env bash
# Runs bench_allreduce at world sizes 2 and 4 (4 is oversubscribed on a 2-core machine) and
# prints one table per world size; then np 4 as two "nodes" of two ranks
# (RINGTRAIN_RANKS_PER_NODE=2): the hierarchical all-reduce against the flat ring and
# MPI_Allreduce, CSV in <csv>_two_nodes.csv. Extra arguments go to bench_allreduce.
#   bench/allreduce/run.sh [BUILD_DIR] [bench_allreduce flags...]
#   CSV=out.csv bench/allreduce/run.sh build --max-bytes 67108864
set -euo pipefail

build=${1:-build}
[[ $# -gt 0 ]] && shift
bin=$build/bench/allreduce/bench_allreduce
csv=${CSV:-$build/allreduce.csv}
if [[ ! -x $bin ]]; then
  echo "no $bin: build it with cmake --build $build --target bench_allreduce" >&2
  exit 1
fi
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMP_NUM_THREADS=1  # LibTorch's intra-op threads would compete with the ranks

rm -f "$csv"
for np in 2 4; do
  echo "== np $np"
  extra=()
  [[ $np -gt $(nproc) ]] && extra=(--oversubscribe)
  mpirun "${extra[@]}" -np "$np" "$bin" --csv "$csv" "$@"
  echo
done
two_nodes_csv=${csv%.csv}_two_nodes.csv
rm -f "$two_nodes_csv"
echo "== np 4 as 2 nodes of 2 ranks (RINGTRAIN_RANKS_PER_NODE=2)"
extra=()
[[ 4 -gt $(nproc) ]] && extra=(--oversubscribe)
RINGTRAIN_RANKS_PER_NODE=2 mpirun "${extra[@]}" -np 4 "$bin" --impls ring,hier,mpi \
  --csv "$two_nodes_csv" "$@"
echo
echo "CSV: $csv $two_nodes_csv"
