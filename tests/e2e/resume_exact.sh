#!/usr/bin/env bash
# Exact resume: a run whose rank 1 is killed with SIGKILL after step 30 and that is resumed
# with --resume auto (from the checkpoint of step 20) ends with parameters bitwise identical
# to an uninterrupted run of the same config, and the same metrics from the resume point on.
source "$(dirname "$0")/fault_common.bash"

train_np2 "$WORK/reference" >"$WORK/reference.out"

expect_failure killed with_fault "kill:rank=1:step=30" train_np2 "$WORK/run"
expect_line "$WORK/killed.err" "rank 1 kills itself \(SIGKILL\) at step 30"
[ -f "$WORK/run/checkpoints/step-00000020/MANIFEST" ] || fail "no checkpoint of step 20"
[ ! -e "$WORK/run/checkpoints/step-00000040" ] || fail "a checkpoint after the kill exists"
expect_line "$WORK/run/metrics.jsonl" '"step":30' "the killed run did not get to step 30"

train_np2 "$WORK/run" --resume auto >"$WORK/resumed.out"
expect_line "$WORK/resumed.out" "resumed from .*step-00000020 at step 20"

same_parameters "$WORK/reference" "$WORK/run"
same_metrics "$WORK/reference" "$WORK/run"
# The checkpoints written after the resume match the uninterrupted run's too.
cmp -s "$WORK/reference/checkpoints/step-00000040/model.pt" \
  "$WORK/run/checkpoints/step-00000040/model.pt" || fail "model.pt of step 40 differs"
# optimizer.pt is not byte-comparable: LibTorch keys optimizer state by the address of each
# parameter's TensorImpl, which differs between processes. Its tensors (the momentum
# buffers) must be bitwise the same, as a multiset of the archive's raw tensor records.
$PY - "$WORK/reference/checkpoints/step-00000040/optimizer.pt" \
  "$WORK/run/checkpoints/step-00000040/optimizer.pt" <<'PYEOF' || fail "optimizer state of step 40 differs"
import sys, zipfile
def tensors(path):
    z = zipfile.ZipFile(path)
    return sorted(z.read(n) for n in z.namelist() if "/data/" in n)
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
assert a, "no tensors in " + sys.argv[1]
sys.exit(0 if a == b else 1)
PYEOF
echo "PASS"
