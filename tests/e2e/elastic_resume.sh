#!/usr/bin/env bash
# Elastic resume: a checkpoint written at N ranks resumes mid-epoch at M ranks (4->2, 2->3,
# 2->1, and 2->3 from a checkpoint of the previous format, which has no
# micro_batch_samples). The global batch of N x 64 samples is kept, split across the M ranks
# (unevenly at 3: 43/43/42, each gradient weighted by its share). Checked:
#  * exactly once: per step, the samples the killed attempt read before its checkpoint plus
#    the resumed attempt's are the uninterrupted N-rank run's, none missing, none twice
#    (train.sample_log logs every rank's indices per step);
#  * the final parameters match the uninterrupted N-rank run's within float tolerance (the
#    sum over ranks is taken in another order, so bitwise equality is impossible), and far
#    from a run that read other samples (the check can fail);
#  * a changed data.batch_size mid-epoch is refused with one line (the cursor would drift);
#  * the parameter-server mode refuses another world size with one line.
# (An N->N resume stays bitwise: resume_exact.sh.)
source "$(dirname "$0")/fault_common.bash"

train_np() {
  local np=$1 run=$2
  shift 2
  run_np "$np" 300 train --config "$MLP_CFG" --run-dir "$run" "${SHORT[@]}" "$@"
}

# exactly_once REFERENCE_LOG_DIR KILLED_LOG_DIR RESUMED_LOG_DIR CURSOR_STEP
exactly_once() {
  $PY - "$@" <<'PYEOF' || fail "the samples of the resumed run are not the reference's, exactly once"
import os, sys
sys.path.insert(0, os.path.join(os.environ["RINGTRAIN_SOURCE_DIR"], "tests"))
from sample_log import steps
ref, killed, resumed, cursor = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
a = steps(ref)
b = steps(killed, lambda e, s: (e, s) < (0, cursor))
for key, idx in steps(resumed).items():
    b[key].extend(idx)
assert sorted(a) == sorted(b), f"steps differ: {sorted(set(a) ^ set(b))[:5]}"
for key in a:
    assert sorted(a[key]) == sorted(b[key]), f"step {key} read other samples"
    assert len(set(b[key])) == len(b[key]), f"step {key} read a sample twice"
flat = [i for v in b.values() for i in v]
assert len(flat) == len(set(flat)), "a sample was read twice in the epoch"
print(f"ok: {len(a)} steps, {len(flat)} samples, each exactly once")
PYEOF
}

# killed_at_30 NP RUN: a run killed after step 30, which leaves the checkpoint of step 20.
killed_at_30() {
  expect_failure "killed-$(basename "$2")" with_fault "kill:rank=1:step=30" \
    train_np "$1" "$2" --set train.sample_log="$2.samples-killed"
  [ -f "$2/checkpoints/step-00000020/MANIFEST" ] || fail "no checkpoint of step 20 in $2"
}

# --- 4 -> 2 ---
train_np 4 "$WORK/ref4" --set train.sample_log="$WORK/ref4.samples" >"$WORK/ref4.out"
killed_at_30 4 "$WORK/run4"
cp -a "$WORK/run4" "$WORK/run4-batch"
train_np 2 "$WORK/run4" --resume auto --set train.sample_log="$WORK/run4.samples" \
  >"$WORK/resumed4.out"
expect_line "$WORK/resumed4.out" "resumed from .*step-00000020 at step 20"
expect_line "$WORK/resumed4.out" "elastic resume: written by 4 ranks, resumed on 2; the global micro-batch stays 256 samples, 128 per rank"
exactly_once "$WORK/ref4.samples" "$WORK/run4.samples-killed" "$WORK/run4.samples" 20
close_parameters "$WORK/ref4" "$WORK/run4" || fail "4->2 parameters are not the 4-rank run's"

# A run that reads other samples from step 20 on is far from the reference: the tolerance
# above is a real check.
train_np 2 "$WORK/other" >/dev/null
if close_parameters "$WORK/ref4" "$WORK/other" >"$WORK/other.cmp"; then
  fail "a 2-rank run (another global batch) matched the 4-rank reference: the tolerance is too loose"
fi
cat "$WORK/other.cmp"

# A changed data.batch_size mid-epoch is refused, with the way out.
expect_failure batch-changed train_np 2 "$WORK/run4-batch" --resume auto --set data.batch_size=32
expect_line "$WORK/batch-changed.err" "data.batch_size changed from 64 to 32 .* in the middle of epoch 0"
expect_line "$WORK/batch-changed.err" "keep data.batch_size 64"

# --- 2 -> 3 (uneven) and 2 -> 1 ---
train_np 2 "$WORK/ref2" --set train.sample_log="$WORK/ref2.samples" >"$WORK/ref2.out"
killed_at_30 2 "$WORK/run2"
cp -a "$WORK/run2" "$WORK/run2-to1"
cp -a "$WORK/run2" "$WORK/run2-old"
cp -a "$WORK/run2" "$WORK/run2-ps"
train_np 3 "$WORK/run2" --resume auto --set train.sample_log="$WORK/run2.samples" \
  >"$WORK/resumed3.out"
expect_line "$WORK/resumed3.out" "the global micro-batch stays 128 samples, 42 or 43 per rank"
exactly_once "$WORK/ref2.samples" "$WORK/run2.samples-killed" "$WORK/run2.samples" 20
close_parameters "$WORK/ref2" "$WORK/run2" || fail "2->3 parameters are not the 2-rank run's"
# The checkpoints written at 3 ranks say so, and keep the global micro-batch.
grep -q "^world_size: 3" "$WORK/run2/checkpoints/step-00000060/state.yaml" ||
  fail "the checkpoint written after the resume does not record 3 ranks"
grep -q "^micro_batch_samples: 128" "$WORK/run2/checkpoints/step-00000060/state.yaml" ||
  fail "the checkpoint written after the resume does not keep 128 samples per step"

train_np 1 "$WORK/run2-to1" --resume auto --set train.sample_log="$WORK/run2-to1.samples" \
  >"$WORK/resumed1.out"
expect_line "$WORK/resumed1.out" "resumed on 1; the global micro-batch stays 128 samples, 128 per rank"
exactly_once "$WORK/ref2.samples" "$WORK/run2.samples-killed" "$WORK/run2-to1.samples" 20
close_parameters "$WORK/ref2" "$WORK/run2-to1" || fail "2->1 parameters are not the 2-rank run's"

# --- a checkpoint of the previous format (no micro_batch_samples) resumes at 3 ---
old="$WORK/run2-old/checkpoints/step-00000020"
$PY - "$old" <<'PYEOF'
import os, sys, zlib
d = sys.argv[1]
state = os.path.join(d, "state.yaml")
lines = [l for l in open(state) if not l.startswith("micro_batch_samples:")]
open(state, "w").writelines(lines)
entries = []
for line in open(os.path.join(d, "MANIFEST")):
    name = line.split()[0]
    if name == "manifest-crc32":
        continue
    data = open(os.path.join(d, name), "rb").read()
    entries.append(f"{name} {len(data)} {zlib.crc32(data)}\n")
body = "".join(entries)
open(os.path.join(d, "MANIFEST"), "w").write(body + f"manifest-crc32 {zlib.crc32(body.encode())}\n")
PYEOF
! grep -q micro_batch_samples "$old/state.yaml" || fail "the old-format checkpoint was not made"
train_np 3 "$WORK/run2-old" --resume auto >"$WORK/resumed-old.out"
expect_line "$WORK/resumed-old.out" "resumed from .*step-00000020 at step 20"
expect_line "$WORK/resumed-old.out" "the global micro-batch stays 128 samples"
close_parameters "$WORK/ref2" "$WORK/run2-old" || fail "the old-format 2->3 resume differs"

# --- the parameter-server mode refuses another world size ---
expect_failure ps-elastic train_np 3 "$WORK/run2-ps" --resume auto \
  --set distributed.mode=ps --set ps.servers=1
expect_line "$WORK/ps-elastic.err" "resumes only at the world size it was written with"
echo "PASS"
