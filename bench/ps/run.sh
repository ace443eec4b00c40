#!/usr/bin/env bash
# Parameter-server benchmark: 1 server + 3 workers under bsp, asp and ssp against all-reduce
# with 4 ranks, same model and per-worker batch, real Fashion-MNIST data. Prints one markdown
# table: samples/s, time per step and the servers' CPU use (getrusage over their serving
# time, 100% = one core spinning).
#   bench/ps/run.sh [BUILD_DIR]
#   STEPS=300 MODEL=fashion_cnn BATCH=64 REPEATS=3 bench/ps/run.sh build
# Throughput of a run is the mean of its training-interval records after the first (warm-up;
# the final evaluation is excluded); the table shows the median over REPEATS runs of each
# mode, the modes alternating within a repeat, and each mode's ratio to all-reduce. Time per step = samples per step / samples per second,
# where a step is one batch on every worker (4 x BATCH for all-reduce, 3 x BATCH for PS).
set -euo pipefail

build=${1:-build}
bin=$build/ringtrain
src=$(cd "$(dirname "$0")/../.." && pwd)
steps=${STEPS:-300}
model=${MODEL:-fashion_mlp}
batch=${BATCH:-64}
staleness=${STALENESS:-2}
repeats=${REPEATS:-3}
if [[ ! -x $bin ]]; then
  echo "no $bin: build it with cmake --build $build --target ringtrain_cli" >&2
  exit 1
fi
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMP_NUM_THREADS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

common=(--config "$src/configs/fashion_mnist_mlp.yaml" --set "model.name=$model"
        --set "data.batch_size=$batch" --set "train.max_steps=$steps" --set train.log_every=25
        --set checkpoint.enabled=false --set train.threads=1)

run() {  # name, extra --set arguments...
  local name=$1
  shift
  timeout 900 mpirun --oversubscribe --bind-to none -np 4 "$bin" train "${common[@]}" "$@" \
    --run-dir "$work/$name" >"$work/$name.log" 2>&1 || {
    echo "run $name failed:" >&2
    tail -20 "$work/$name.log" >&2
    exit 1
  }
}

for ((r = 1; r <= repeats; r++)); do
  run "allreduce.$r" --set distributed.mode=allreduce
  run "ps_bsp.$r" --set distributed.mode=ps --set ps.consistency=bsp
  run "ps_asp.$r" --set distributed.mode=ps --set ps.consistency=asp
  run "ps_ssp.$r" --set distributed.mode=ps --set ps.consistency=ssp --set "ps.staleness=$staleness"
done

/usr/bin/python3 - "$work" "$batch" "$steps" "$model" "$staleness" "$repeats" <<'PYEOF'
import json, statistics, sys
work, batch, steps, model, staleness = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
repeats = int(sys.argv[6])
rows = [("all-reduce (ring), 4 workers", "allreduce", 4),
        ("PS bsp, 1 server + 3 workers", "ps_bsp", 3),
        ("PS asp, 1 server + 3 workers", "ps_asp", 3),
        (f"PS ssp (s={staleness}), 1 server + 3 workers", "ps_ssp", 3)]
def one_run(name):
    recs = [json.loads(l) for l in open(f"{work}/{name}/metrics.jsonl") if l.strip()]
    train = [r["samples_per_s"] for r in recs if r["kind"] == "train"][1:]
    cpu = [r["cpu_fraction"] for r in recs if r["kind"] == "ps_server"]
    acc = [r["test_accuracy"] for r in recs if r["kind"] == "eval"][-1]
    return sum(train) / len(train), cpu, acc

print(f"model {model}, batch {batch} per worker, {steps} steps, 4 ranks, median of {repeats} runs\n")
print("| mode | samples/s | vs all-reduce | ms per step | server CPU (% of a core) | final test acc |")
print("|---|---:|---:|---:|---:|---:|")
base = None
for label, name, workers in rows:
    runs = [one_run(f"{name}.{r}") for r in range(1, repeats + 1)]
    sps = statistics.median(r[0] for r in runs)
    base = base or sps
    ms = 1000.0 * batch * workers / sps
    cpus = [c for r in runs for c in r[1]]
    cpu = f"{100 * statistics.median(cpus):.1f}" if cpus else "-"
    acc = statistics.median(r[2] for r in runs)
    print(f"| {label} | {sps:.0f} | {sps / base:.2f}x | {ms:.1f} | {cpu} | {100 * acc:.1f}% |")
PYEOF
