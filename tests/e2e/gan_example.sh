#!/usr/bin/env bash
# examples/gan: a user's own loop with two models made data-parallel by DataParallel. On 2
# ranks the generator must learn the ring's radius, and the replicas (which start from
# different seeds) must end bitwise identical.
source "$(dirname "$0")/common.bash"
: "${RINGTRAIN_BUILD_DIR:?set by ctest}"
gan="$RINGTRAIN_BUILD_DIR/examples/gan/gan"
[ -x "$gan" ] || fail "examples/gan was not built ($gan)"

timeout --kill-after=10 600 mpirun --oversubscribe --bind-to none -np 2 "$gan" 1500 \
  | tee "$WORK/out.txt" || fail "the GAN example failed (or missed the ring's radius)"
grep -q "^gan: 2 ranks, 1500 steps" "$WORK/out.txt" || fail "the example did not report its run"
grep -q "replicas identical" "$WORK/out.txt" || fail "the replicas differ"
echo "PASS"
