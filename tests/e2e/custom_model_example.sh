#!/usr/bin/env bash
# The C++ API as an installed package: `cmake --install` into a temporary prefix, build
# examples/custom_model against it with find_package(ringtrain), and train its own model and
# dataset on 2 ranks (registered by name, then handed to the Trainer directly).
source "$(dirname "$0")/common.bash"
: "${RINGTRAIN_BUILD_DIR:?set by ctest}"

prefix="$WORK/prefix"
cmake --install "$RINGTRAIN_BUILD_DIR" --prefix "$prefix" > "$WORK/install.log" \
  || { cat "$WORK/install.log"; fail "cmake --install failed"; }
for f in lib/cmake/ringtrain/ringtrainConfig.cmake lib/cmake/ringtrain/ringtrainTargets.cmake \
         lib/cmake/ringtrain/ringtrainConfigVersion.cmake include/ringtrain/trainer/trainer.h \
         include/ringtrain/models/registry.h include/ringtrain/data/dataset_registry.h bin/ringtrain; do
  [ -e "$prefix/$f" ] || fail "the install lacks $f"
done
ls "$prefix"/lib*/libringtrain.* >/dev/null 2>&1 || ls "$prefix"/lib/*/libringtrain.* >/dev/null \
  || fail "the install lacks the library"

# A separate project: it sees ringtrain only through the installed package.
cmake -S "$RINGTRAIN_SOURCE_DIR/examples/custom_model" -B "$WORK/build" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release > "$WORK/configure.log" \
  || { cat "$WORK/configure.log"; fail "configuring the example against the package failed"; }
grep -q "ringtrain" "$WORK/build/CMakeCache.txt" || fail "the example did not find ringtrain"
cmake --build "$WORK/build" -j1 > "$WORK/build.log" \
  || { tail -50 "$WORK/build.log"; fail "building the example failed"; }

timeout --kill-after=10 600 mpirun --oversubscribe --bind-to none -np 2 \
  "$WORK/build/custom_model" "$WORK/runs" | tee "$WORK/out.txt" \
  || fail "the example's training failed (or missed its 90% accuracy bar)"
grep -q "custom_model: 2 ranks" "$WORK/out.txt" || fail "the example did not report its run"
for run in registered direct; do
  acc=$(last_metric "$WORK/runs/$run/metrics.jsonl" eval test_accuracy)
  echo "$run: test accuracy $acc"
  $PY -c "import sys; sys.exit(0 if float('$acc') >= 0.9 else 1)" || fail "$run accuracy $acc"
  ls "$WORK"/runs/$run/checkpoints/step-*/MANIFEST >/dev/null || fail "$run wrote no checkpoint"
done
grep -q "name: spiral_mlp" "$WORK/runs/registered/config.yaml" \
  || fail "the registered run's config does not name the custom model"
echo "PASS"
