#!/usr/bin/env bash
# All-reduce bandwidth across hosts: bench_allreduce on the test cluster of
# tests/cluster/cluster.bash (network-namespace hosts, TCP between them over a bridge), every
# host's link shaped to RATE and DELAY (cluster_shape: netem, or tbf without the delay). For
# each rate: 2 hosts x 1 rank and 4 hosts x 1 rank (ring, MPI_Allreduce, Gloo), and 2 hosts x 2 ranks (ring, hierarchical,
# MPI_Allreduce, Gloo). As root. Each host's qdisc shapes what it sends, so every link of the
# ring runs at RATE.
#   bench/cluster/allreduce.sh [BUILD_DIR] [--rates 10gbit,1gbit] [--delay 0.05ms]
#                              [bench_allreduce flags...]
#   CSV=out.csv bench/cluster/allreduce.sh build --rates 10gbit --max-bytes 268435456
default_rates=10gbit,1gbit
source "$(dirname "$0")/common.bash"
bin=$build/bench/allreduce/bench_allreduce
[[ -x $bin ]] || { echo "no $bin: cmake --build $build --target bench_allreduce" >&2; exit 1; }
csv=${CSV:-$build/allreduce_cluster.csv}
CLUSTER_MPI_LIMIT=${CLUSTER_MPI_LIMIT:-1800}
cluster_up 4
rm -f "$csv"
for rate in ${rates//,/ }; do
  for host in "${CLUSTER_HOSTS[@]}"; do cluster_shape "$host" "$rate" "$delay"; done
  for layout in "rt-h1:1,rt-h2:1 2 ring,mpi,gloo" "rt-h1:1,rt-h2:1,rt-h3:1,rt-h4:1 4 ring,mpi,gloo" \
    "rt-h1:2,rt-h2:2 4 ring,hier,mpi,gloo"; do
    read -r hosts np impls <<<"$layout"
    # More ranks than cores (4 on a 2-core machine): Open MPI's busy-polling waits take
    # whole scheduler ticks (4 ms) from the rank that has work, and every time comes out a
    # multiple of 4 ms; yielding while idle lets that rank run.
    yield=0
    ((np > $(getconf _NPROCESSORS_ONLN))) && yield=1  # (nproc obeys OMP_NUM_THREADS)
    echo "== $rate, delay $delay: --host $hosts (mpi_yield_when_idle $yield)"
    cluster_mpirun -np "$np" --host "$hosts" -x OMP_NUM_THREADS -x OMPI_MCA_mpi_yield_when_idle=$yield \
      "$bin" --impls "$impls" \
      --csv "$WORK/run.csv" "${args[@]}"
    # The run's rows, tagged with the link and the layout.
    tail -n +2 "$WORK/run.csv" | sed "s/^/$rate,${hosts//,/+},/" >>"$WORK/all.csv"
    rm -f "$WORK/run.csv"
    echo
  done
done
{ echo "rate,hosts,impl,np,bytes,time_us,algbw_gbps,busbw_gbps"; cat "$WORK/all.csv"; } >"$csv"
echo "CSV: $csv"
