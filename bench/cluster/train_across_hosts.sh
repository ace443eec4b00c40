#!/usr/bin/env bash
# Training across hosts against PyTorch DDP: makes 2 hosts of the test cluster
# (tests/cluster/cluster.bash), and for each link rate shapes both hosts' links, measures
# one message round (alpha: a 4 KiB ring all-reduce over its 2 rounds) and runs
# bench/cluster/train_across_hosts.py on 2 hosts x 1 rank. As root, under the venv's Python.
#   bench/cluster/train_across_hosts.sh [BUILD_DIR] [--rates 1gbit,10gbit] [--delay 0.05ms]
#                                       [train_across_hosts.py flags: --repeats 3 ...]
default_rates=1gbit,10gbit
source "$(dirname "$0")/common.bash"
py=${PYTHON:-$root/.venv/bin/python}
CLUSTER_MPI_LIMIT=${CLUSTER_MPI_LIMIT:-900}
cluster_up 2
"$build/ringtrain" prepare-text --out "$WORK/fortunes" \
  --in $(find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat') >/dev/null
hosts=rt-h1:1,rt-h2:1
launcher="$CLUSTER_AGENT rt-h1 timeout --kill-after=10 $CLUSTER_MPI_LIMIT mpirun ${CLUSTER_MPI_ARGS[*]} --host $hosts"
for rate in ${rates//,/ }; do
  for host in "${CLUSTER_HOSTS[@]}"; do cluster_shape "$host" "$rate" "$delay"; done
  ring_us=$(cluster_mpirun -np 2 --host "$hosts" "$build/bench/allreduce/bench_allreduce" \
    --impls ring --min-bytes 4096 --max-bytes 4096 --repeats 50 | awk '$1 == 4 && $2 == "KiB" { print $3 }')
  alpha_us=$(awk -v t="$ring_us" 'BEGIN { printf "%.1f", t / 2 }')
  echo "== $rate (delay $delay): a 4 KiB ring all-reduce took $ring_us us, alpha $alpha_us us"
  (cd "$root" && "$py" "$here/train_across_hosts.py" --ringtrain "$build/ringtrain" \
    --launcher "$launcher" --ddp-master rt-h1 --rate "$rate" --alpha-us "$alpha_us" \
    --gpt-data "$WORK/fortunes" "${args[@]}")
done
