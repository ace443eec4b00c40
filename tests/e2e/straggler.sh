#!/usr/bin/env bash
# A rank that is slower at every step is named in every train record (slowest_rank, and by how
# much its work per step exceeded the other's) and in one warning, and training goes on.
source "$(dirname "$0")/fault_common.bash"

# check_records RUN_DIR RANK: every train record names RANK, whose 20 ms sleep per step shows.
check_records() {
  $PY - "$1/metrics.jsonl" "$2" <<'PYEOF'
import json, sys
path, rank = sys.argv[1], int(sys.argv[2])
train = [r for r in map(json.loads, open(path)) if r["kind"] == "train"]
assert len(train) == 6, f"expected 6 train records, got {len(train)}"
for r in train:
    assert r["slowest_rank"] == rank, r
    assert r["slowest_rank_lead_ms"] >= 10.0, r  # slept 20 ms per step
    assert r["sync_wait_ms"] >= 5.0, r  # the other rank waited for it
print(f"ok: all {len(train)} train records name rank {rank} the slowest")
PYEOF
}

with_fault "slow:rank=1:ms=20" train_np2 "$WORK/slow1" | tee "$WORK/slow1.txt"
check_records "$WORK/slow1" 1
warnings=$(grep -c "warning: rank 1 is a straggler: over steps 1-10 its steps took" "$WORK/slow1.txt" || true)
[ "$warnings" = 1 ] || fail "expected one straggler warning for rank 1, got $warnings"
[ "$(grep -c "is a straggler" "$WORK/slow1.txt")" = 1 ] || fail "the warning was repeated"

# Rank 0 slow, warnings off: the records still name it; no warning.
with_fault "slow:rank=0:ms=20" train_np2 "$WORK/slow0" --set train.straggler_ratio=0 |
  tee "$WORK/slow0.txt"
check_records "$WORK/slow0" 0
! grep -q "straggler" "$WORK/slow0.txt" || fail "train.straggler_ratio: 0 did not silence the warning"
echo "PASS"
