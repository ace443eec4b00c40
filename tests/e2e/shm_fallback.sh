#!/usr/bin/env bash
# A shared-memory filesystem without room for the gradient buckets (Docker's 64 MB /dev/shm
# with a large model would SIGBUS on first touch): when one rank sees no free space
# (test-only RINGTRAIN_FAULT shm_full), every rank falls back to the ring's messages together,
# rank 0 warns once with the fix, and training is bitwise what it is with shared memory (the
# shared-memory sums are the ring's).
source "$(dirname "$0")/fault_common.bash"
STEPS=(--set train.max_steps=20 --set checkpoint.every_steps=0)

train_np2 "$WORK/shared" "${STEPS[@]}" >"$WORK/shared.out" 2>&1 || fail "the shared-memory run failed"
! grep -q "these buffers need" "$WORK/shared.out" || fail "a fallback warning without a fault"
grep -q "backend ring (shared memory, one node)" "$WORK/shared.out" ||
  fail "the start-up line does not say the buckets take shared memory"

with_fault "shm_full:rank=1" train_np2 "$WORK/full" "${STEPS[@]}" >"$WORK/full.out" 2>&1 ||
  fail "the run with rank 1's shared memory full failed"
expect_line "$WORK/full.out" \
  "^warning: .* has 0 B free on some rank, less than the .* these buffers need in shared memory; they use the ring's messages instead \(slower\)\. HINT: "
[ "$(grep -c "these buffers need" "$WORK/full.out")" = 1 ] || fail "the warning was not printed exactly once"
grep -q "backend ring (MPI messages)" "$WORK/full.out" ||
  fail "the start-up line does not say the buckets fell back to messages"
[ "$(last_metric "$WORK/full/metrics.jsonl" summary step)" = "20" ] || fail "the fallback run did not finish"
same_parameters "$WORK/shared" "$WORK/full"

# The real check (statvfs of Open MPI's window directory) on a real 1 MB tmpfs, where
# mounting is permitted (root in most sandboxes and CI containers).
mkdir -p "$WORK/small"
if mount -t tmpfs -o size=1m tmpfs "$WORK/small" 2>/dev/null; then
  trap 'umount "$WORK/small" 2>/dev/null; rm -rf "$WORK"' EXIT
  OMPI_MCA_osc_sm_backing_directory="$WORK/small" train_np2 "$WORK/tmpfs" "${STEPS[@]}" \
    >"$WORK/tmpfs.out" 2>&1 || fail "the run with a 1 MB window directory failed"
  expect_line "$WORK/tmpfs.out" \
    "^warning: $WORK/small has 1.0 MB free on some rank, less than the .* these buffers need"
  same_parameters "$WORK/shared" "$WORK/tmpfs"
else
  echo "ok: (no tmpfs: mount not permitted) only the injected fault was checked"
fi
echo "PASS"
