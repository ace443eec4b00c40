#!/usr/bin/env bash
# metrics.tensorboard: true: rank 0 writes TensorBoard event files into the run directory.
# The tensorboard package's own reader (EventAccumulator, which checks every record's CRC)
# reads back one scalar per field of every train, eval and summary record of metrics.jsonl,
# at the record's step, equal to it to float32 precision. A run resumed from an earlier checkpoint
# rewrites the steps after it in a new event file; TensorBoard drops the first file's copies
# of them (the resume's SessionLog START), so the scalars still equal metrics.jsonl, once each.
source "$(dirname "$0")/common.bash"
CFG="$RINGTRAIN_SOURCE_DIR/configs/fashion_mnist_mlp.yaml"
"$PY" -c "import tensorboard" 2>/dev/null || fail "the venv has no tensorboard package (launch/requirements.txt)"
RUN=(--set metrics.tensorboard=true --set train.max_steps=60 --set train.log_every=10
  --set checkpoint.every_steps=20 --set train.threads=1)

run_np 2 300 train --config "$CFG" --run-dir "$WORK/run" "${RUN[@]}" >"$WORK/run.out" 2>&1 ||
  { cat "$WORK/run.out" >&2; fail "the run failed"; }
ls "$WORK/run"/events.out.tfevents.* >/dev/null 2>&1 || fail "no event file in the run directory"

compare() {
  "$PY" - "$1" "$2" <<'PYEOF'
import json, sys
import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

run, expected_files = sys.argv[1], int(sys.argv[2])
import glob
files = glob.glob(run + "/events.out.tfevents.*")
if len(files) != expected_files:
    sys.exit(f"{len(files)} event files, expected {expected_files}")
acc = EventAccumulator(run, size_guidance={"scalars": 0})
acc.Reload()
tags = set(acc.Tags()["scalars"])
want = {}
for line in open(run + "/metrics.jsonl"):
    record = json.loads(line)
    kind = record.pop("kind")
    step = int(record.pop("step"))
    for key, value in record.items():
        want.setdefault(f"{kind}/{key}", []).append((step, value))
for needed in ("train/loss", "train/lr", "train/samples_per_s", "eval/test_accuracy",
               "eval/test_loss", "summary/best_accuracy", "summary/wall_s"):
    if needed not in want:
        sys.exit(f"metrics.jsonl has no {needed}: the test's premise is wrong")
missing = set(want) - tags
if missing:
    sys.exit(f"TensorBoard has no scalars {sorted(missing)}; it has {sorted(tags)}")
checked = 0
for tag, points in want.items():
    got = [(e.step, e.value) for e in acc.Scalars(tag)]
    if [s for s, _ in got] != [s for s, _ in points]:
        sys.exit(f"{tag}: steps {[s for s, _ in got]} in TensorBoard, {[s for s, _ in points]} in metrics.jsonl")
    for (step, value), (_, expected) in zip(got, points):
        if expected is None:
            continue  # a non-finite value: JSON has no NaN
        # metrics.jsonl keeps 10 significant digits, TensorBoard a float32 (about 7).
        if abs(np.float32(expected) - np.float32(value)) > 2e-7 * max(1.0, abs(expected)):
            sys.exit(f"{tag} at step {step}: {value} in TensorBoard, {expected} in metrics.jsonl")
        checked += 1
print(f"ok: {checked} scalars in {len(want)} tags equal metrics.jsonl "
      f"(train/loss at steps {[s for s, _ in want['train/loss']]})")
PYEOF
}
compare "$WORK/run" 1 || fail "the TensorBoard scalars differ from metrics.jsonl"

# Resume from the checkpoint of step 20: steps 30..60 are logged again, in a second file.
sleep 1  # (event files are named by the second they were made in: keep them in order)
run_np 2 300 train --config "$CFG" --run-dir "$WORK/run" "${RUN[@]}" \
  --resume "$WORK/run/checkpoints/step-00000020" >"$WORK/resumed.out" 2>&1 ||
  { cat "$WORK/resumed.out" >&2; fail "the resumed run failed"; }
compare "$WORK/run" 2 || fail "after a resume, the TensorBoard scalars differ from metrics.jsonl"

# Off by default: no event file.
run_np 1 300 train --config "$CFG" --run-dir "$WORK/off" --set train.max_steps=5 >"$WORK/off.out" 2>&1 ||
  { cat "$WORK/off.out" >&2; fail "the run without TensorBoard failed"; }
! ls "$WORK/off"/events.out.tfevents.* >/dev/null 2>&1 || fail "an event file was written with metrics.tensorboard off"
echo "PASS"
