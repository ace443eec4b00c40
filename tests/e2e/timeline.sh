#!/usr/bin/env bash
# train.timeline: "steps A-B": every rank writes a Chrome trace of those steps, and
# `ringtrain timeline RUN_DIR` merges them into one trace with a track group per rank.
# Checked on a 2-rank run with several overlapped gradient buckets and a checkpoint in the
# range: each rank has exactly the steps A..B; data wait, forward, backward, sync wait and
# optimizer lie inside their step; each bucket's collective, from its launch to its end
# (async span) and as the communication thread ran it (complete span), lies inside its step,
# and some were launched by backward's hooks. The drawing is loaded in a headless browser
# and its screenshot shows the phases and buckets. A run without the key writes no
# timeline, and a malformed range is refused with exit status 3 and a line naming the key.
source "$(dirname "$0")/common.bash"
source "$(dirname "$0")/browser.bash"
CFG="$RINGTRAIN_SOURCE_DIR/configs/fashion_mnist_mlp.yaml"
RUN=(--set train.max_steps=8 --set train.log_every=4 --set checkpoint.every_steps=5
  --set distributed.bucket_mb=0.2 --set train.threads=1)

run_np 2 300 train --config "$CFG" --run-dir "$WORK/run" "${RUN[@]}" \
  --set "train.timeline=steps 3-6" >"$WORK/run.out" 2>&1 ||
  { cat "$WORK/run.out" >&2; fail "the traced run failed"; }
buckets=$(sed -n 's/.* \([0-9]*\) gradient bucket(s).*/\1/p' "$WORK/run.out" | head -1)
[ "${buckets:-0}" -ge 2 ] || { cat "$WORK/run.out" >&2; fail "expected several gradient buckets, got '${buckets}'"; }
for r in 0 1; do [ -s "$WORK/run/timeline/rank-$r.json" ] || fail "rank $r wrote no timeline"; done

"$RINGTRAIN_BIN" timeline "$WORK/run" --html "$WORK/timeline.html" | tee "$WORK/merge.out"
grep -q "timeline: 2 rank(s)" "$WORK/merge.out" || fail "the merge did not report 2 ranks"
"$PY" - "$WORK/run/timeline.json" "$buckets" <<'PYEOF'
import json, sys
from collections import defaultdict
trace, buckets = json.load(open(sys.argv[1])), int(sys.argv[2])
events = trace["traceEvents"]
EPS = 2.0  # microseconds: timestamps are rounded to fractions of one
by_pid = defaultdict(list)
for e in events:
    by_pid[e["pid"]].append(e)
assert sorted(by_pid) == [0, 1], f"ranks in the merged trace: {sorted(by_pid)}"
summary = []
for pid, evs in sorted(by_pid.items()):
    names = {e["args"]["name"] for e in evs if e["ph"] == "M" and "name" in e.get("args", {})}
    assert f"rank {pid}" in " ".join(names) and "communication" in names, names
    steps = {int(e["name"].split()[1]): e for e in evs if e["ph"] == "X" and e["name"].startswith("step ")}
    assert sorted(steps) == [3, 4, 5, 6], f"rank {pid} traced steps {sorted(steps)}"
    inside = lambda t, s, eps=EPS: steps[s]["ts"] - eps <= t <= steps[s]["ts"] + steps[s]["dur"] + eps
    phases = defaultdict(int)
    for e in evs:
        if e["ph"] == "X" and e["tid"] == 0 and not e["name"].startswith("step "):
            phases[e["name"]] += 1
            s = e["args"]["step"]
            if e["name"] in ("data wait", "forward", "backward", "sync wait", "optimizer"):
                assert inside(e["ts"], s) and inside(e["ts"] + e["dur"], s), f"rank {pid}: {e} outside step {s}"
    for phase in ("data wait", "forward", "backward", "sync wait", "optimizer"):
        assert phases[phase] == 4, f"rank {pid}: {phases[phase]} '{phase}' spans in 4 steps: {dict(phases)}"
    assert phases["checkpoint"] == 1, f"rank {pid}: the checkpoint after step 5 is not traced: {dict(phases)}"
    begins = {e["id"]: e for e in evs if e["ph"] == "b"}
    ends = {e["id"]: e for e in evs if e["ph"] == "e"}
    assert set(begins) == set(ends), f"rank {pid}: unpaired async spans"
    assert len(begins) == 4 * buckets, f"rank {pid}: {len(begins)} bucket spans, {buckets} buckets x 4 steps"
    hooked = 0
    for uid, b in begins.items():
        s, end = b["args"]["step"], ends[uid]["ts"]
        assert inside(b["ts"], s) and inside(end, s), f"rank {pid}: bucket {b['name']} of step {s} [{b['ts']}, {end}] outside its step"
        assert b["ts"] <= end and b["args"]["bytes"] > 0
        hooked += b["args"]["launched_by_backward_hook"] == 1
    assert hooked > 0, f"rank {pid}: no bucket launched during backward (overlap)"
    comm = [e for e in evs if e["ph"] == "X" and e["tid"] == 1]
    assert len(comm) == 4 * buckets, f"rank {pid}: {len(comm)} communication-thread spans"
    for e in comm:
        s = e["args"]["step"]
        assert inside(e["ts"], s) and inside(e["ts"] + e["dur"], s), f"rank {pid}: {e} outside step {s}"
        assert e["args"]["queued_ms"] >= 0 and e["args"]["running_ms"] >= 0
    summary.append(f"rank {pid}: steps 3-6, {len(begins)} bucket spans ({hooked} from hooks)")
print("timeline OK: " + "; ".join(summary))
PYEOF

dom "$WORK/timeline.html" >"$WORK/timeline.dom"
grep -q '2 rank(s), [0-9]* spans' "$WORK/timeline.dom" || fail "the browser's page has no summary of 2 ranks"
[ "$(grep -o '<rect class="bucket"' "$WORK/timeline.dom" | wc -l)" -eq $((8 * buckets)) ] ||
  fail "the browser's page does not draw every bucket span"
screenshot "$WORK/timeline.html" "$WORK/timeline.png" 1280x600
# forward, backward, sync wait and the buckets' colours (trainer/report/timeline_view.cpp).
png_colours "$WORK/timeline.png" '#4e79a7' '#f28e2b' '#e15759' '#ff9d9a' | tee "$WORK/colours.txt"
while read -r colour count; do
  [ "$colour" = size ] && continue
  [ "$count" -ge 20 ] || fail "the timeline's screenshot shows only $count pixels of $colour"
done <"$WORK/colours.txt"

# Off by default: no timeline directory.
run_np 2 300 train --config "$CFG" --run-dir "$WORK/off" --set train.max_steps=3 \
  --set checkpoint.enabled=false >/dev/null 2>&1 || fail "the untraced run failed"
[ ! -e "$WORK/off/timeline" ] || fail "a run without train.timeline wrote a timeline"

# A malformed range: exit 3 (config), one line naming the key from every rank.
set +e
run_np 2 120 train --config "$CFG" --run-dir "$WORK/bad" --set "train.timeline=steps 6-3" \
  >"$WORK/bad.out" 2>&1
status=$?
set -e
[ "$status" = 3 ] || { cat "$WORK/bad.out" >&2; fail "a malformed train.timeline exited $status, not 3"; }
# (Every rank finds it; the first to abort may end the others before they print.)
grep -q 'config error: train.timeline' "$WORK/bad.out" ||
  { cat "$WORK/bad.out" >&2; fail "no line names train.timeline"; }
"$RINGTRAIN_BIN" timeline "$WORK/off" >"$WORK/none.out" 2>&1 && fail "merging a run without a timeline succeeded"
grep -q "no timeline in" "$WORK/none.out" || { cat "$WORK/none.out" >&2; fail "no clear line for a run without a timeline"; }
echo "PASS"
