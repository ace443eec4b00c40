#!/usr/bin/env bash
# The environment report: `ringtrain env` under mpirun -np 2 names this build's commit, the
# LibTorch it links (the version the venv's torch reports), the MPI library (as ompi_info
# names it), NCCL and CUDA when built in, BLAS, the CPU, the launcher and the topology; a
# training run logs the one-line form first and writes the same report to env.yaml.
source "$(dirname "$0")/common.bash"
CFG="$RINGTRAIN_SOURCE_DIR/configs/fashion_mnist_mlp.yaml"
expect() { grep -Eq -- "$2" "$1" || { cat "$1" >&2; fail "${3:-no line matching '$2' in $1}"; }; }

run_np 2 60 env >"$WORK/env.yaml" 2>"$WORK/env.err" || { cat "$WORK/env.err" >&2; fail "ringtrain env failed"; }
for key in ringtrain libtorch mpi nccl cuda blas cpu gpus launcher topology; do
  [ "$(grep -c "^$key: " "$WORK/env.yaml")" = 1 ] || { cat "$WORK/env.yaml" >&2; fail "env: no single '$key:' line"; }
done
torch_version=$("$PY" -c "import torch; print(torch.__version__.split('+')[0])")
expect "$WORK/env.yaml" "^libtorch: ${torch_version//./\\.} \\((CUDA|CPU) build\\)$" \
  "env does not name LibTorch $torch_version"
ompi=$(ompi_info --version 2>/dev/null | grep -oE "v[0-9]+\.[0-9]+\.[0-9]+" | head -n 1)
expect "$WORK/env.yaml" "^mpi: Open MPI ${ompi//./\\.} \\(MPI [0-9]\\.[0-9]\\)$" "env does not name Open MPI $ompi"
expect "$WORK/env.yaml" "^launcher: mpirun$"
expect "$WORK/env.yaml" "^topology: 1 host\\(s\\) x 2 rank\\(s\\)$"
expect "$WORK/env.yaml" "^cpu: .*, $(nproc --all) logical cores$"
expect "$WORK/env.yaml" "^(nccl: [0-9]+\\.[0-9]+\\.[0-9]+|nccl: not built in)$"
if commit=$(git -C "$RINGTRAIN_SOURCE_DIR" rev-parse --short=12 HEAD 2>/dev/null); then
  expect "$WORK/env.yaml" "^ringtrain: [0-9.]+ \\(commit $commit\\)$" "env does not name the commit $commit"
fi

# A single process outside mpirun: no launcher, one rank; --line is the log's form.
"$RINGTRAIN_BIN" env >"$WORK/single.yaml"
expect "$WORK/single.yaml" "^launcher: none \\(a single process\\)$"
expect "$WORK/single.yaml" "^topology: 1 host\\(s\\) x 1 rank\\(s\\)$"
"$RINGTRAIN_BIN" env --line >"$WORK/line.txt"
expect "$WORK/line.txt" "^env: ringtrain .*, LibTorch ${torch_version//./\\.} .*, Open MPI .*, launcher none"

# A run logs the line first and writes env.yaml beside config.yaml.
run_np 2 300 train --config "$CFG" --run-dir "$WORK/run" --set train.max_steps=5 >"$WORK/run.out" 2>&1 ||
  { cat "$WORK/run.out" >&2; fail "the run failed"; }
head -n 1 "$WORK/run.out" | grep -Eq "^env: ringtrain .*, launcher mpirun, 1 host\\(s\\) x 2 rank\\(s\\)$" ||
  { head -n 3 "$WORK/run.out" >&2; fail "the run's log does not start with the env line"; }
[ -f "$WORK/run/env.yaml" ] || fail "the run wrote no env.yaml"
diff <(grep -v "^launcher\|^topology" "$WORK/env.yaml") <(grep -v "^launcher\|^topology" "$WORK/run/env.yaml") ||
  fail "env.yaml of the run differs from ringtrain env"
echo "PASS"
