#!/usr/bin/env bash
# Checkpoints under faults:
#  1. rank 0 killed while writing the checkpoint of step 40: no partial checkpoint is ever
#     taken for a valid one; with a corrupt and an incomplete newer checkpoint planted as
#     well, --resume auto warns about each, resumes from step 20 and still ends bitwise
#     identical to an uninterrupted run;
#  2. every checkpoint corrupt: --resume auto, eval and export fail with a clear error;
#  3. resuming with another model or another world size is refused, saying what differs;
#  4. a full file system (a 3 MB tmpfs) fails the write with the system's reason, and the
#     previous checkpoint stays valid.
source "$(dirname "$0")/fault_common.bash"

train_np2 "$WORK/reference" >"$WORK/reference.out"

# 1. A crash in the middle of a checkpoint write.
expect_failure crash with_fault "kill:rank=0:step=40:at=checkpoint" train_np2 "$WORK/run"
expect_line "$WORK/crash.err" "kills itself \(SIGKILL\) at step 40 while writing a checkpoint"
[ -d "$WORK/run/checkpoints/.step-00000040.tmp" ] || fail "the interrupted write left nothing"
[ ! -e "$WORK/run/checkpoints/step-00000040" ] || fail "a partial checkpoint got a real name"
"$RINGTRAIN_BIN" export --checkpoint "$WORK/run" --format safetensors --out "$WORK/x.st" \
  >"$WORK/export.out" 2>&1 || fail "export of the run after the crash failed"
expect_line "$WORK/export.out" "step-00000020" "export did not use the step-20 checkpoint"
# Plant a corrupt (bad checksum) and an incomplete (no MANIFEST) newer checkpoint.
cp -r "$WORK/run/checkpoints/step-00000020" "$WORK/run/checkpoints/step-00000030"
corrupt_byte "$WORK/run/checkpoints/step-00000030/model.pt" 200
cp -r "$WORK/run/checkpoints/step-00000020" "$WORK/run/checkpoints/step-00000035"
rm "$WORK/run/checkpoints/step-00000035/MANIFEST"

train_np2 "$WORK/run" --resume auto >"$WORK/resumed.out"
expect_line "$WORK/resumed.out" "warning: skipping invalid checkpoint: .*step-00000035 has no MANIFEST"
expect_line "$WORK/resumed.out" "warning: skipping invalid checkpoint: .*step-00000030/model.pt is corrupt"
expect_line "$WORK/resumed.out" "resumed from .*step-00000020 at step 20"
same_parameters "$WORK/reference" "$WORK/run"
[ ! -e "$WORK/run/checkpoints/.step-00000040.tmp" ] || fail "the crash leftover was not cleaned"

# 2. Every checkpoint corrupt.
cp -r "$WORK/run" "$WORK/corrupt"
for f in "$WORK"/corrupt/checkpoints/step-*/model.pt; do
  corrupt_byte "$f" 100
done
expect_failure all_corrupt train_np2 "$WORK/corrupt" --resume auto
expect_line "$WORK/all_corrupt.err" "checkpoint error: --resume auto: none of the [0-9]+ checkpoints in .* is valid"
expect_failure eval_corrupt "$RINGTRAIN_BIN" eval --checkpoint "$WORK/corrupt"
expect_line "$WORK/eval_corrupt.err" "no valid checkpoint in .*every one is incomplete or corrupt"

# 3. Refusals, each naming what differs.
expect_failure other_model train_np2 "$WORK/run" --resume auto --set model.name=fashion_cnn
expect_line "$WORK/other_model.err" \
  "cannot resume from .*holds model 'fashion_mlp' and the config builds 'fashion_cnn'.*conv1.weight"
# (All-reduce replicas resume at another world size: elastic_resume.sh. The parameter-server
# mode cannot, and says so.)
expect_failure other_world run_np 3 300 train --config "$MLP_CFG" --run-dir "$WORK/run" \
  "${SHORT[@]}" --resume auto --set distributed.mode=ps --set ps.servers=1
expect_line "$WORK/other_world.err" \
  "it was written by 2 ranks, this job has 3, and distributed.mode: ps resumes only .*HINT: .*mpirun -np 2, ps.servers"

# 4. Disk full. A tmpfs needs mount rights (root in most sandboxes and CI containers).
mkdir -p "$WORK/small"
if mount -t tmpfs -o size=3m tmpfs "$WORK/small" 2>/dev/null; then
  trap 'umount "$WORK/small" 2>/dev/null; rm -rf "$WORK"' EXIT
  # One checkpoint (model + momentum, about 1.9 MB) fits; the second does not.
  expect_failure disk_full train_np2 "$WORK/small/run"
  expect_line "$WORK/disk_full.err" \
    "checkpoint error: cannot write checkpoint .*step-00000040: .*No space left on device.*HINT: free space"
  "$RINGTRAIN_BIN" eval --checkpoint "$WORK/small/run/checkpoints/step-00000020" \
    >"$WORK/eval_small.out" 2>&1 || fail "the previous checkpoint is no longer valid"
  [ ! -e "$WORK/small/run/checkpoints/.step-00000040.tmp" ] || fail "partial write left behind"
  echo "ok: disk full (tmpfs) fails cleanly and keeps the step-20 checkpoint"
else
  # No mount rights: an unwritable checkpoint directory instead (a file in its place; root
  # ignores permission bits). The unit test FullFileSystemFailsWithItsCauseAndKeepsThePrevious
  # covers a write that fails part-way.
  mkdir -p "$WORK/blocked"
  touch "$WORK/blocked/checkpoints"
  expect_failure unwritable train_np2 "$WORK/blocked"
  expect_line "$WORK/unwritable.err" "checkpoint error: cannot write checkpoint .*step-00000020"
  echo "ok: (no tmpfs: mount not permitted) an unwritable checkpoint directory fails cleanly"
fi
echo "PASS"
