#!/usr/bin/env bash
# The cost of watching a run, on fashion_mnist_mlp at np 2 with several overlapped gradient
# buckets, the cases alternating within each repeat:
#   off           nothing but metrics.jsonl every 50 steps
#   timeline idle train.timeline set to steps after the run (the object exists, never records)
#   timeline all  every step traced (each phase, each bucket's launch, start and end)
#   log 1         a metrics.jsonl record every step (and its gather across ranks)
#   + tensorboard the same, each record also encoded into the TensorBoard event file
#   + prometheus  the same, each record also into the gauges and the textfile (replaced atomically)
# The last two are measured against "log 1", so their ratio is the sink's own cost per record.
# Prints one markdown table: the median over REPEATS runs of the time per step (the mean of
# the training-interval records after the first, warm-up) and the ratio against its base.
#   bench/watching/run.sh [BUILD_DIR]
#   STEPS=300 REPEATS=5 bench/watching/run.sh build
set -euo pipefail

build=${1:-build}
bin=$build/ringtrain
src=$(cd "$(dirname "$0")/../.." && pwd)
steps=${STEPS:-300}
repeats=${REPEATS:-5}
[[ -x $bin ]] || { echo "no $bin: build it first (launch/build.sh)" >&2; exit 1; }
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMP_NUM_THREADS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() {  # name, extra arguments...
  local name=$1
  shift
  timeout 900 mpirun --oversubscribe --bind-to none -np 2 "$bin" train \
    --config "$src/configs/fashion_mnist_mlp.yaml" --set "train.max_steps=$steps" \
    --set checkpoint.enabled=false --set train.threads=1 \
    --set distributed.bucket_mb=0.2 --run-dir "$work/$name" "$@" >"$work/$name.log" 2>&1 || {
    echo "run $name failed:" >&2
    tail -20 "$work/$name.log" >&2
    exit 1
  }
}

for ((r = 1; r <= repeats; r++)); do
  run "off.$r" --set train.log_every=50
  run "idle.$r" --set train.log_every=50 --set "train.timeline=steps $((steps + 1000))"
  run "traced.$r" --set train.log_every=50 --set "train.timeline=steps 1-$steps"
  run "log1.$r" --set train.log_every=1
  run "tb.$r" --set train.log_every=1 --set metrics.tensorboard=true
  run "prom.$r" --set train.log_every=1 --set "metrics.prometheus_textfile=$work/prom.$r.prom"
done

/usr/bin/python3 - "$work" "$repeats" "$steps" <<'PYEOF'
import json, os, statistics, sys
work, repeats, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def ms_per_step(name):
    recs = [json.loads(l) for l in open(f"{work}/{name}/metrics.jsonl") if l.strip()]
    sps = [r["samples_per_s"] for r in recs if r["kind"] == "train"][1:]
    return 1000.0 * 128 / (sum(sps) / len(sps))  # global batch 2 x 64
print(f"fashion_mnist_mlp, np 2, bucket_mb 0.2, {steps} steps, median of {repeats} runs\n")
print("| case | ms per step | vs | ratio | written by rank 0 |")
print("|---|---:|---|---:|---:|")
def written(case):
    import glob
    files = glob.glob(f"{work}/{case}.1/timeline/rank-0.json") + glob.glob(f"{work}/{case}.1/events.out.*")
    return f"{sum(os.path.getsize(f) for f in files) / 1e6:.3f} MB" if files else "-"
cases = [("off", "off", "off"), ("timeline idle", "idle", "off"), ("timeline all steps", "traced", "off"),
         ("log every step", "log1", "off"), ("+ tensorboard", "tb", "log1"), ("+ prometheus textfile", "prom", "log1")]
ms = {key: statistics.median(ms_per_step(f"{key}.{r}") for r in range(1, repeats + 1)) for _, key, _ in cases}
labels = {key: label for label, key, _ in cases}
for label, key, base in cases:
    print(f"| {label} | {ms[key]:.3f} | {labels[base]} | {ms[key] / ms[base]:.3f} | {written(key)} |")
PYEOF
