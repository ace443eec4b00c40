#!/usr/bin/env bash
# train --print-config: prints the resolved config (the file, the defaults and --set) as
# YAML and exits 0 without training or writing anything; the printed YAML is itself a config
# that resolves to the same text; a bad key still fails with its one line; under mpirun only
# rank 0 prints.
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
echo "PASS"
