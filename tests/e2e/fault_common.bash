# Helpers shared by the fault-tolerance end-to-end tests (sourced, not a test itself).
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
[ -d /usr/share/datasets/fashion-mnist ] || fail "dataset-fashion-mnist is not installed"
MLP_CFG="$RINGTRAIN_SOURCE_DIR/configs/fashion_mnist_mlp.yaml"
SUPERVISOR="$RINGTRAIN_SOURCE_DIR/launch/ringtrain-run"

# A short deterministic fashion_mlp run: 60 steps, a checkpoint every 20, one thread per
# rank (the same arithmetic in every run), progress every 10 steps.
SHORT=(--set train.max_steps=60 --set checkpoint.every_steps=20 --set train.log_every=10
  --set train.threads=1 --set data.prefetch=2)

# train_np2 RUN_DIR [extra args...]: the short run on 2 ranks, at most 300 s.
train_np2() {
  local run=$1
  shift
  run_np 2 300 train --config "$MLP_CFG" --run-dir "$run" "${SHORT[@]}" "$@"
}

# expect_failure NAME CMD...: runs CMD (stdout/stderr to $WORK/NAME.out/.err) and fails the
# test if it succeeded or was stopped by the wall-clock limit of run_np (exit 124).
expect_failure() {
  local name=$1
  shift
  set +e
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  local rc=$?
  set -e
  [ "$rc" -ne 0 ] || fail "$name: expected a failure, got exit 0"
  [ "$rc" -ne 124 ] || { cat "$WORK/$name.err" >&2; fail "$name: hung until the time limit"; }
  ! grep -q "frame #" "$WORK/$name.err" || fail "$name: a stack trace was printed"
  echo "ok: $name failed as expected (exit $rc)"
}

# with_fault SPEC CMD...: runs CMD (a command or a function) with RINGTRAIN_FAULT=SPEC.
with_fault() {
  RINGTRAIN_FAULT="$1" "${@:2}"
}

# corrupt_byte FILE OFFSET: flips every bit of one byte.
corrupt_byte() {
  $PY - "$1" "$2" <<'PYEOF'
import sys
path, offset = sys.argv[1], int(sys.argv[2])
data = bytearray(open(path, "rb").read())
data[offset] ^= 0xFF
open(path, "wb").write(data)
PYEOF
}

# expect_line FILE REGEX [WHAT]: FILE has a line matching REGEX.
expect_line() {
  grep -Eq -- "$2" "$1" || { echo "--- $1:" >&2; tail -n 30 "$1" >&2; fail "${3:-no line matching '$2' in $1}"; }
}

# export_safetensors RUN_OR_CHECKPOINT FILE
export_safetensors() {
  "$RINGTRAIN_BIN" export --checkpoint "$1" --format safetensors --out "$2" >/dev/null
}

# same_parameters A B: the exported parameters of two runs are bitwise identical.
same_parameters() {
  export_safetensors "$1" "$WORK/a.safetensors"
  export_safetensors "$2" "$WORK/b.safetensors"
  cmp -s "$WORK/a.safetensors" "$WORK/b.safetensors" ||
    fail "final parameters of $1 and $2 differ"
  echo "ok: final parameters of $(basename "$1") and $(basename "$2") are bitwise identical"
}

# same_metrics A B [KINDS]: metrics.jsonl of two runs agree on every record (or on those
# of the comma-separated KINDS) except timings.
same_metrics() {
  $PY - "$1/metrics.jsonl" "$2/metrics.jsonl" "${3:-}" <<'PYEOF'
import json, sys
kinds = set(filter(None, sys.argv[3].split(",")))
def load(path):
    drop = {"samples_per_s", "time_s", "wall_s", "data_ms", "forward_backward_ms",
            "sync_wait_ms", "update_ms", "slowest_rank", "slowest_rank_lead_ms",
            "slowest_link_rank", "slowest_link_wait_ms"}
    return [{k: v for k, v in r.items() if k not in drop}
            for r in (json.loads(l) for l in open(path) if l.strip())
            if not kinds or r["kind"] in kinds]
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a, "no records to compare in " + sys.argv[1]
if a != b:
    for x, y in zip(a, b):
        if x != y:
            print("first difference:", x, "vs", y)
            break
    sys.exit(f"metrics differ ({len(a)} vs {len(b)} records)")
print(f"ok: {len(a)} metrics records identical (timings aside)")
PYEOF
}

# wait_for_step RUN_DIR STEP: until the run's metrics.jsonl holds a record of STEP (120 s at
# most), for a fault or a signal to strike a running job at a known point.
wait_for_step() {
  local _
  for _ in $(seq 2400); do
    grep -q "\"step\":$2," "$1/metrics.jsonl" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "the run in $1 did not get to step $2"
}

# close_parameters A B [TOL]: exported parameters agree within TOL (max abs difference).
close_parameters() {
  export_safetensors "$1" "$WORK/a.safetensors"
  export_safetensors "$2" "$WORK/b.safetensors"
  $PY - "$WORK/a.safetensors" "$WORK/b.safetensors" "${3:-1e-5}" <<'PYEOF'
import sys
from safetensors.torch import load_file
a, b, tol = load_file(sys.argv[1]), load_file(sys.argv[2]), float(sys.argv[3])
assert sorted(a) == sorted(b), "different parameter names"
worst = max((a[k] - b[k]).abs().max().item() for k in a)
print(f"max |difference| {worst:.3g} (tolerance {tol:g})")
sys.exit(0 if worst <= tol else 1)
PYEOF
}

# same_tensors A B: the exported tensors of two runs are bitwise identical (the files' config
# metadata may differ).
same_tensors() {
  export_safetensors "$1" "$WORK/a.safetensors"
  export_safetensors "$2" "$WORK/b.safetensors"
  $PY - "$WORK/a.safetensors" "$WORK/b.safetensors" <<'PYEOF' ||
import sys
from safetensors.torch import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
assert sorted(a) == sorted(b), "different parameter names"
differ = [k for k in a if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape or
          a[k].numpy().tobytes() != b[k].numpy().tobytes()]
sys.exit(f"tensors differ: {differ[:5]}" if differ else 0)
PYEOF
    fail "the tensors of $1 and $2 differ"
  echo "ok: the tensors of $(basename "$1") and $(basename "$2") are bitwise identical"
}
