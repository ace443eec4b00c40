#!/usr/bin/env bash
# The prepared GPU check of the NCCL backend (issue 6), for a session that has a GPU machine.
#
# Here, first:  bash bench/gpu/prepare_carry.sh      (dataset + Debian build deps, ~40 MB)
# Then:         device run(command="bash bench/gpu/run_gpu_checks.sh",
#                          carry=["build-gpucarry"], timeout_s=590)
#
# On the GPU machine it:
#   1. reports the GPU, CUDA, PyTorch and NCCL it finds;
#   2. uses the machine's OpenMPI/yaml-cpp/cxxopts/GoogleTest/zlib, or else unpacks the carried
#      Debian packages under /tmp (OpenMPI relocated with OPAL_PREFIX);
#   3. configures against the CUDA LibTorch inside python3's PyTorch
#      (-DCMAKE_PREFIX_PATH=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)'))
#      with -DRINGTRAIN_NCCL=ON and PyTorch's own NCCL, and builds the CLI and the unit tests;
#   4. runs the unit tests (the NCCL communicator's GPU test runs only here);
#   5. trains fashion_cnn for 1 epoch on 1 rank with distributed.backend=nccl, in fp32 and
#      with train.precision=bf16;
#   6. checks that 2 ranks on 1 GPU are refused with one clear line;
#   7. trains the same model the same way with PyTorch on the same GPU
#      (bench/gpu/pytorch_fashion_cnn.py) and writes the comparison table.
# Everything lands in $OUT (the device tool's folder) or build-gpu/results: gpu_results.md (the
# table for bench/RESULTS.md) and one log per step. It goes on after a failed step so that one
# run tells as much as possible, and exits non-zero if any step failed.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
results="${OUT:-$root/build-gpu/results}"
build="${RINGTRAIN_GPU_BUILD:-$root/build-gpu}"
carry="$root/build-gpucarry"
PY="${PYTHON:-python3}"
mkdir -p "$results" "$build"
log="$results/gpu_checks.log"
: >"$log"
failed=()
say() { echo "== $*" | tee -a "$log"; }
step() {  # step <name> <logfile> <command...>: runs, logs, records a failure
  local name=$1 file=$2
  shift 2
  say "$name"
  local start=$SECONDS
  "$@" >"$results/$file" 2>&1
  local rc=$?
  tail -n 25 "$results/$file" | sed 's/^/   /' | tee -a "$log"
  say "$name: rc=$rc in $((SECONDS - start)) s"
  [ "$rc" -eq 0 ] || failed+=("$name")
  return "$rc"
}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=4
export PYTHONUNBUFFERED=1

# 1. What is here.
say "machine"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  command -v nvcc >/dev/null && nvcc --version | tail -n 2
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
"available", torch.cuda.is_available(), "nccl", torch.cuda.nccl.version())' 2>&1
  echo "nproc $(nproc)"
} | tee -a "$log"
torch_prefix="$("$PY" -c 'import torch;print(torch.utils.cmake_prefix_path)' 2>/dev/null)"
[ -n "$torch_prefix" ] || { say "FATAL: $PY has no torch"; exit 2; }
"$PY" -c 'import sys, torch; sys.exit(0 if int(torch.__version__.split(".")[0]) >= 2 else 1)' ||
  say "WARNING: $PY's torch is older than 2.x, the primary target (launch/requirements.txt)"
# Link PyTorch's own NCCL (pip nvidia-nccl-*), so one libnccl.so.2 serves both.
site="$("$PY" -c 'import site;print(site.getsitepackages()[0])')"
nccl_lib="$(find "$site/nvidia" -name 'libnccl.so*' 2>/dev/null | head -n 1)"
nccl_root=""
[ -n "$nccl_lib" ] && nccl_root="$(dirname "$(dirname "$nccl_lib")")"
say "NCCL_ROOT=${nccl_root:-<CUDA toolkit>}"

# 2. Build dependencies.
cmake_args=()
missing=()
command -v mpicxx >/dev/null || missing+=(openmpi)
for h in yaml-cpp/yaml.h cxxopts.hpp gtest/gtest.h zlib.h; do
  [ -e "/usr/include/$h" ] || missing+=("$h")
done
data="/usr/share/datasets/fashion-mnist"
if ((${#missing[@]})); then
  say "missing here: ${missing[*]}; using the carried Debian packages"
  [ -d "$carry/debs" ] || { say "FATAL: no $carry/debs: run bench/gpu/prepare_carry.sh and carry build-gpucarry"; exit 2; }
  deps=/tmp/ringtrain-deps
  rm -rf "$deps" && mkdir -p "$deps"
  for d in "$carry"/debs/*.deb; do dpkg-deb -x "$d" "$deps"; done
  D="$deps/usr"
  arch="$D/lib/x86_64-linux-gnu"
  export OPAL_PREFIX="$D" PATH="$D/bin:$PATH"
  export LD_LIBRARY_PATH="$arch:$arch/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  ln -sf mpirun.openmpi "$D/bin/mpirun"
  cmake_args+=(-DMPI_CXX_COMPILER="$D/bin/mpicxx.openmpi" -DMPIEXEC_EXECUTABLE="$D/bin/mpirun"
    -DZLIB_ROOT="$D" -DCMAKE_CXX_FLAGS="-isystem $D/include")
  extra_prefix=";$D"
fi
if [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
  mkdir -p "$(dirname "$data")" && ln -sfn "$carry/fashion-mnist" "$data"
fi
[ -e "$data/train-images-idx3-ubyte.gz" ] || say "WARNING: no Fashion-MNIST at $data"

# 3. Configure and build against the CUDA LibTorch.
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
step "configure" configure.txt cmake -S "$root" -B "$build" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DRINGTRAIN_BUILD_BENCH=OFF -DRINGTRAIN_NCCL=ON \
  -DCMAKE_PREFIX_PATH="$torch_prefix${extra_prefix:-}" ${nccl_root:+-DNCCL_ROOT="$nccl_root"} \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DTORCH_CUDA_ARCH_LIST=9.0 "${cmake_args[@]}"
step "build" build.txt cmake --build "$build" -j"$(nproc)" --target ringtrain_cli \
  ringtrain_unit_tests
bin="$build/ringtrain"

# 4. Unit tests (NcclGpu.* run only where a GPU is usable).
step "unit tests" unit_tests.txt "$build/tests/ringtrain_unit_tests" --gtest_brief=1

# 5. fashion_cnn, 1 epoch, 1 rank, NCCL.
launch() {  # mpirun when it works here, else an MPI singleton
  if command -v mpirun >/dev/null; then
    timeout --kill-after=10 300 mpirun --bind-to none -np 1 "$@"
  else
    timeout --kill-after=10 300 "$@"
  fi
}
# Scratch runs of earlier checks: a fresh run is refused in an earlier run's directory.
rm -rf "$results/run_nccl" "$build/run_nccl" "$build/run_nccl_bf16" "$build/run_np2"
step "ringtrain train (nccl, 1 rank, 1 epoch)" ringtrain_train.txt launch "$bin" train \
  --config "$root/configs/fashion_mnist_cnn.yaml" --run-dir "$build/run_nccl" \
  --set distributed.backend=nccl --set train.epochs=1 --set data.dir="$data" \
  --set checkpoint.enabled=false
cp "$build/run_nccl/metrics.jsonl" "$results/metrics_nccl.jsonl" 2>/dev/null

# 5b. The same with train.precision: bf16 (autocast on the GPU, float32 master weights).
step "ringtrain train (nccl, 1 rank, 1 epoch, bf16)" ringtrain_train_bf16.txt launch "$bin" \
  train --config "$root/configs/fashion_mnist_cnn.yaml" --run-dir "$build/run_nccl_bf16" \
  --set distributed.backend=nccl --set train.epochs=1 --set data.dir="$data" \
  --set checkpoint.enabled=false --set train.precision=bf16
cp "$build/run_nccl_bf16/metrics.jsonl" "$results/metrics_nccl_bf16.jsonl" 2>/dev/null

# 6. Two ranks cannot share the one GPU: refused at start with one clear line.
if command -v mpirun >/dev/null; then
  say "2 ranks on 1 GPU"
  timeout --kill-after=10 60 mpirun --oversubscribe --bind-to none -np 2 "$bin" train \
    --config "$root/configs/fashion_mnist_cnn.yaml" --run-dir "$build/run_np2" \
    --set distributed.backend=nccl --set data.dir="$data" >>"$log" 2>&1
  rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "needs one GPU per rank" "$log"; then
    say "2 ranks on 1 GPU: refused clearly (rc=$rc)"
  else
    say "2 ranks on 1 GPU: NOT refused as expected (rc=$rc)"
    failed+=("2 ranks on 1 GPU")
  fi
fi

# 7. PyTorch on the same GPU, same model, data, optimizer and schedule.
step "pytorch baseline (1 epoch)" pytorch.txt "$PY" "$root/bench/gpu/pytorch_fashion_cnn.py" \
  --data "$data" --epochs 1

# The table for bench/RESULTS.md.
"$PY" - "$results" >"$results/gpu_results.md" 2>>"$log" <<'PYEOF'
import json, os, subprocess, sys
res = sys.argv[1]
def records(path):
    try:
        return [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    except OSError:
        return []
def run(name):
    recs = records(os.path.join(res, name))
    summary = next((r for r in reversed(recs) if r.get("kind") == "summary"), None)
    evals = [r for r in recs if r.get("kind") == "eval"]
    return summary, evals
summary, evals = run("metrics_nccl.jsonl")
py = next((r for r in reversed(records(os.path.join(res, "pytorch.txt")))
           if r.get("kind") == "pytorch_summary"), None)
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip() or "?"
except OSError:
    gpu = "no nvidia-smi"
print(f"## GPU: fashion_cnn, 1 epoch, batch 64, 1 rank, {gpu}\n")
print("| run | steps | wall s | samples/s | test accuracy |")
print("|---|---|---|---|---|")
def row(name, summary, evals):
    if not summary:
        print(f"| {name} | failed | | | |")
        return
    acc = evals[-1]["test_accuracy"] if evals else float("nan")
    print(f"| {name} | {summary['step']} | {summary['wall_s']:.2f} | "
          f"{summary['samples_per_s']:.0f} | {acc:.4f} |")
row("ringtrain, backend nccl", summary, evals)
row("ringtrain, backend nccl, bf16", *run("metrics_nccl_bf16.jsonl"))
if py:
    print(f"| PyTorch {py['torch']} | {py['steps']} | {py['wall_s']:.2f} | "
          f"{py['samples_per_s']:.0f} | {py['test_accuracy']:.4f} |")
else:
    print("| PyTorch | failed | | | |")
if summary and py:
    print(f"\nringtrain / PyTorch wall time: {summary['wall_s'] / py['wall_s']:.2f}x")
PYEOF
tee -a "$log" <"$results/gpu_results.md"
if ((${#failed[@]})); then
  say "FAILED: ${failed[*]}"
  exit 1
fi
say "all GPU checks passed"
