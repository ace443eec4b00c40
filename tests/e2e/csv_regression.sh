#!/usr/bin/env bash
# Regression from a config: configs/regression_csv.yaml (an MLP, MSE, float CSV targets) on a
# synthetic table, in all-reduce mode on 2 ranks and parameter-server mode on 3. The test
# loss must fall well below the target's variance, evaluation must report no accuracy, and
# `ringtrain eval` must reproduce the final test loss of the checkpoint.
source "$(dirname "$0")/common.bash"
CONFIG="$RINGTRAIN_SOURCE_DIR/configs/regression_csv.yaml"

# y = 2 x1 - x2 + x3 * x4 + 0.05 noise, x ~ U(-1, 1): variance about 1.78.
$PY - "$WORK/data" <<'PYEOF'
import os, random, sys
out = sys.argv[1]
os.makedirs(out)
rng = random.Random(11)
for name, rows in (("train", 4000), ("test", 1000)):
    with open(os.path.join(out, name + ".csv"), "w") as f:
        f.write("x1,x2,x3,x4,y\n")
        for _ in range(rows):
            x = [rng.uniform(-1, 1) for _ in range(4)]
            y = 2 * x[0] - x[1] + x[2] * x[3] + 0.05 * rng.gauss(0, 1)
            f.write(",".join(f"{v:.6f}" for v in x + [y]) + "\n")
PYEOF

check_run() {  # run dir, label
  local loss acc
  loss=$(last_metric "$1/metrics.jsonl" eval test_loss)
  acc=$(last_metric "$1/metrics.jsonl" eval test_accuracy)
  echo "$2: final test MSE $loss (target variance about 1.78)"
  $PY -c "import sys; sys.exit(0 if float('$loss') < 0.05 else 1)" || fail "$2: test MSE $loss"
  [ "$acc" = "None" ] || fail "$2: an accuracy ($acc) was reported for a regression"
}

run_np 2 600 train --config "$CONFIG" --set data.dir="$WORK/data" --run-dir "$WORK/allreduce" \
  | tee "$WORK/allreduce.txt"
grep -q "final test loss" "$WORK/allreduce.txt" || fail "the last line does not give the test loss"
if grep -q "accuracy" "$WORK/allreduce.txt"; then fail "accuracy printed for a regression"; fi
check_run "$WORK/allreduce" allreduce

run_np 3 600 train --config "$CONFIG" --set data.dir="$WORK/data" --set distributed.mode=ps \
  --set ps.servers=1 --run-dir "$WORK/ps" | tee "$WORK/ps.txt"
check_run "$WORK/ps" ps

# `ringtrain eval` reads the objective from the checkpoint's config.
run_np 2 120 eval --checkpoint "$WORK/allreduce" --set data.dir="$WORK/data" | tee "$WORK/eval.txt"
evaluated=$(sed -n 's/.*test loss \([0-9.]*\).*/\1/p' "$WORK/eval.txt")
final=$(last_metric "$WORK/allreduce/metrics.jsonl" eval test_loss)
$PY -c "import sys; sys.exit(0 if abs(float('$evaluated') - float('$final')) < 1e-4 else 1)" \
  || fail "eval gave test loss $evaluated, training ended at $final"
if grep -q "accuracy" "$WORK/eval.txt"; then fail "eval printed an accuracy for a regression"; fi

# A misconfigured objective is one clear line, from the config check.
if run_np 1 60 train --config "$CONFIG" --set data.dir="$WORK/data" --set train.metric=accuracy \
     --run-dir "$WORK/bad" > "$WORK/bad.txt" 2>&1; then
  fail "train.metric: accuracy with train.loss: mse was accepted"
fi
grep -q "train.metric: loss" "$WORK/bad.txt" || { cat "$WORK/bad.txt"; fail "no hint for the metric"; }

# Data the model cannot take ends before the first step, exit 4 (data), one line: test.csv with
# other columns than train.csv (an extra one, the same ones reordered), a test.csv with no
# rows, and files that agree with each other but not with the model's in_features.
bad_data() {  # bad_data <name> <pattern> <python that rewrites train.csv/test.csv in $dir>
  local dir="$WORK/bad-$1" rc
  cp -r "$WORK/data" "$dir"
  $PY - "$dir" <<<"import sys, os; dir = sys.argv[1]
def rewrite(name, f):
    path = os.path.join(dir, name)
    lines = open(path).read().splitlines()
    open(path, 'w').write(''.join(f(i, l) + chr(10) for i, l in enumerate(lines) if f(i, l) is not None))
$3"
  set +e
  run_np 2 60 train --config "$CONFIG" --set data.dir="$dir" --run-dir "$WORK/run-$1" \
    >"$WORK/$1.out" 2>"$WORK/$1.err"
  rc=$?
  set -e
  [ "$rc" -eq 4 ] || { cat "$WORK/$1.err"; fail "$1: exit $rc, not 4 (data)"; }
  grep -E "ringtrain: \[rank [01]\] data error: .*$2" "$WORK/$1.err" >/dev/null ||
    { cat "$WORK/$1.err"; fail "$1: no line matching '$2'"; }
  ! grep -q "frame #\|internal error" "$WORK/$1.err" || fail "$1: not one clear line"
  ! grep -q "^epoch " "$WORK/$1.out" || fail "$1: training started"
  echo "ok: $1: $(grep -o 'data error: .*' "$WORK/$1.err" | head -1 | cut -c1-150)"
}
bad_data extra-column "column 5 is 'x5' in test.csv and 'y' in train.csv" \
  "rewrite('test.csv', lambda i, l: (l.replace('y', 'x5,y') if i == 0 else '0.5,' + l))"
bad_data reordered "column 1 is 'x2' in test.csv and 'x1' in train.csv" \
  "rewrite('test.csv', lambda i, l: ','.join([l.split(',')[1], l.split(',')[0]] + l.split(',')[2:]))"
bad_data header-only "the test split of dataset 'csv' .* has no samples" \
  "rewrite('test.csv', lambda i, l: l if i == 0 else None)"
bad_data in-features "the model cannot take the training data .*mat1 and mat2 .*HINT: .*in_features" \
  "[rewrite(n, lambda i, l: (l.replace('y', 'x5,y') if i == 0 else '0.5,' + l)) for n in ('train.csv', 'test.csv')]"
echo "PASS"
