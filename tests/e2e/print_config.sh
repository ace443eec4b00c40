#!/usr/bin/env bash
# train --print-config: prints the resolved config (the file, the defaults and --set) as
# YAML and exits 0 without training or writing anything; the printed YAML is itself a config
# that resolves to the same text; a bad key still fails with its one line; under mpirun only
# rank 0 prints. train --dry-run builds the model, the data and the shards and says what the
# run would do (parameters, global batch, steps per epoch, the checkpoint it would resume
# from) without training or writing.
source "$(dirname "$0")/common.bash"
CFG="$RINGTRAIN_SOURCE_DIR/configs/fashion_mnist_mlp.yaml"

"$RINGTRAIN_BIN" train --config "$CFG" --set optimizer.lr=0.0125 --set distributed.zero=1 \
  --run-dir "$WORK/run" --print-config >"$WORK/resolved.yaml"
grep -q "^  lr: 0.0125$" "$WORK/resolved.yaml" || fail "--set optimizer.lr is not in the printed config"
grep -q "^  zero: 1$" "$WORK/resolved.yaml" || fail "--set distributed.zero is not in the printed config"
grep -q "^  timeout_s: 300$" "$WORK/resolved.yaml" || fail "a default (distributed.timeout_s) is missing"
[ ! -e "$WORK/run" ] || fail "--print-config created the run directory"

"$RINGTRAIN_BIN" train --config "$WORK/resolved.yaml" --print-config >"$WORK/again.yaml"
cmp -s "$WORK/resolved.yaml" "$WORK/again.yaml" || fail "the printed config does not resolve to itself"

set +e
"$RINGTRAIN_BIN" train --config "$CFG" --set optimizer.lrr=1 --print-config >"$WORK/bad.out" 2>"$WORK/bad.err"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a misspelt key was printed instead of refused"
grep -q "did you mean 'lr'" "$WORK/bad.err" || fail "the misspelt key's line does not suggest 'lr'"
[ ! -s "$WORK/bad.out" ] || fail "a config was printed for a bad key"

run_np 2 60 train --config "$CFG" --print-config >"$WORK/np2.yaml"
cmp -s "$WORK/np2.yaml" <("$RINGTRAIN_BIN" train --config "$CFG" --print-config) ||
  fail "under mpirun -np 2 the config was not printed exactly once"
# --dry-run at np 2: Fashion-MNIST's 60000 samples in global batches of 2 x 64 give 468 steps
# and leave 96 samples out; the MLP has 784*256+256 + 256*128+128 + 128*10+10 parameters.
run_np 2 120 train --config "$CFG" --run-dir "$WORK/dry" --dry-run >"$WORK/dry.out" 2>&1 ||
  { cat "$WORK/dry.out" >&2; fail "--dry-run failed"; }
expect() { grep -Eq -- "$2" "$1" || { cat "$1" >&2; fail "no line matching '$2' in $1"; }; }
expect "$WORK/dry.out" "^dry run: nothing is trained"
expect "$WORK/dry.out" "^  model fashion_mlp: 235146 parameters, 0.94 MB$"
expect "$WORK/dry.out" "^  data fashion_mnist: 60000 training samples, 10000 test samples$"
expect "$WORK/dry.out" "^  shards: 2 replica\(s\) x 64 samples per micro-batch x 1 micro-batch\(es\) = global batch 128$"
expect "$WORK/dry.out" "^  steps: 468 per epoch \(96 samples of each epoch left out\), 1 epoch\(s\), 468 in all$"
expect "$WORK/dry.out" "^  resume: none, a fresh run$"
[ "$(grep -c "^dry run" "$WORK/dry.out")" = 1 ] || fail "--dry-run printed more than once"
! grep -q "^step \|^done:" "$WORK/dry.out" || fail "--dry-run trained"
[ ! -e "$WORK/dry" ] || fail "--dry-run created the run directory"

# A run with checkpoints, then a dry run of its --resume auto: it names the checkpoint, and
# at np 1 (elastic resume) the shards change while the global batch does not.
run_np 2 300 train --config "$CFG" --run-dir "$WORK/real" --set train.max_steps=20 \
  --set checkpoint.every_steps=10 >"$WORK/real.out" 2>&1 || { cat "$WORK/real.out" >&2; fail "the short run failed"; }
run_np 1 120 train --config "$CFG" --run-dir "$WORK/real" --resume auto --dry-run \
  --set train.max_steps=20 --set checkpoint.every_steps=10 >"$WORK/resume.out" 2>&1 ||
  { cat "$WORK/resume.out" >&2; fail "--dry-run --resume auto failed"; }
expect "$WORK/resume.out" "^  resume: from .*/step-00000020 at step 20 \(written by 2 rank\(s\)\)$"
expect "$WORK/resume.out" "global batch 128$"
ls "$WORK/real/checkpoints" >"$WORK/before.txt"
cmp -s "$WORK/before.txt" <(ls "$WORK/real/checkpoints") || fail "--dry-run changed the checkpoints"
echo "PASS"
