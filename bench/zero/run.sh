#!/usr/bin/env bash
# ZeRO-1 vs plain all-reduce on the gpt config (configs/lm_fortunes.yaml: AdamW, two moments
# per parameter) at np 2 and 4: optimizer-state bytes on the fullest rank (the run's summary)
# and time per step. Prints one markdown table: the median over REPEATS runs of each case,
# plain and ZeRO-1 alternating within a repeat, ZeRO-1's ratio against plain of the same np.
# Then the memory a GPT-2-small-sized model (124M parameters) would need per rank, computed.
#   bench/zero/run.sh [BUILD_DIR]
#   STEPS=120 REPEATS=3 bench/zero/run.sh build
# Time per step = samples per step / samples per second, the mean of the training-interval
# records after the first (warm-up).
set -euo pipefail

build=${1:-build}
bin=$build/ringtrain
src=$(cd "$(dirname "$0")/../.." && pwd)
steps=${STEPS:-120}
repeats=${REPEATS:-3}
[[ -x $bin ]] || { echo "no $bin: build it first (launch/build.sh)" >&2; exit 1; }
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMP_NUM_THREADS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mapfile -t inputs < <(find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' | sort)
"$bin" prepare-text --in "${inputs[@]}" --out "$work/data" >/dev/null

run() {  # np, name, extra arguments...
  local np=$1 name=$2
  shift 2
  timeout 900 mpirun --oversubscribe --bind-to none -np "$np" "$bin" train \
    --config "$src/configs/lm_fortunes.yaml" --set "data.dir=$work/data" \
    --set "train.max_steps=$steps" --set train.log_every=20 --set checkpoint.enabled=false \
    --set train.threads=1 --run-dir "$work/$name" "$@" >"$work/$name.log" 2>&1 || {
    echo "run $name failed:" >&2
    tail -20 "$work/$name.log" >&2
    exit 1
  }
}

for ((r = 1; r <= repeats; r++)); do
  for np in 2 4; do
    run "$np" "plain$np.$r"
    run "$np" "zero$np.$r" --set distributed.zero=1
  done
done

/usr/bin/python3 - "$work" "$repeats" "$steps" <<'PYEOF'
import json, statistics, sys
work, repeats, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def one_run(name, np):
    recs = [json.loads(l) for l in open(f"{work}/{name}/metrics.jsonl") if l.strip()]
    sps = [r["samples_per_s"] for r in recs if r["kind"] == "train"][1:]
    ms = 1000.0 * np * 32 / (sum(sps) / len(sps))  # 32 windows per rank and step
    summary = [r for r in recs if r["kind"] == "summary"][-1]
    return ms, summary["optimizer_state_bytes"]
print(f"gpt (configs/lm_fortunes.yaml, AdamW), {steps} steps, median of {repeats} runs\n")
print("| np | mode | optimizer state per rank | vs plain | ms per step | vs plain |")
print("|---:|---|---:|---:|---:|---:|")
for np in (2, 4):
    base = None
    for mode in ("plain", "zero"):
        runs = [one_run(f"{mode}{np}.{r}", np) for r in range(1, repeats + 1)]
        ms = statistics.median(r[0] for r in runs)
        state = statistics.median(r[1] for r in runs)
        base = base or (state, ms)
        label = "plain all-reduce" if mode == "plain" else "ZeRO-1"
        print(f"| {np} | {label} | {state / 1e6:.3f} MB | {state / base[0]:.3f} | {ms:.1f} | "
              f"{ms / base[1]:.2f} |")

# GPT-2 small: 124M parameters, float32, AdamW (two moments). Per rank: parameters and
# gradients (buckets) as plain training holds them, plus the optimizer state; ZeRO-1 keeps
# 1/N of the state and its shard's own parameters (1/N), and all-gathers in the buckets.
P = 124_439_808
gb = lambda b: f"{b / 2**30:.2f} GiB"
print("\nGPT-2 small (124.4M parameters, float32, AdamW), per rank, computed:\n")
print("| ranks | plain: params + grads + state | ZeRO-1: params + grads + (shard + state)/N | saved |")
print("|---:|---:|---:|---:|")
for n in (8, 64):
    plain = 4 * P * (1 + 1 + 2)
    zero = 4 * P * (1 + 1) + 4 * (1 + 2) * P / n
    print(f"| {n} | {gb(plain)} | {gb(zero)} | {gb(plain - zero)} |")
PYEOF
