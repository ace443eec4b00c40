#!/usr/bin/env bash
# One job per run directory, and a fresh run never lands in an earlier run's files:
# - a second fresh run into a finished run's directory is refused (exit 73) and touches nothing;
# - a second job on a directory another job holds is refused naming the holder's pid and host,
#   and the holder's end (SIGTERM, or SIGKILL of the whole job) leaves no stale lock;
# - --overwrite moves the earlier run aside whole (never deletes it); with --resume it is a
#   usage error;
# - a finished run resumed with another config is refused (it would train nothing and exit 0),
#   also under the supervisor, which does not retry it; the same config finishes at once;
# - train.run_name cannot escape runs/.
source "$(dirname "$0")/fault_common.bash"
QUICK=(--set train.max_steps=20 --set checkpoint.every_steps=10 --set train.log_every=10
  --set train.threads=1 --set data.prefetch=2)
quick_np2() { local run=$1; shift; run_np 2 300 train --config "$MLP_CFG" --run-dir "$run" "${QUICK[@]}" "$@"; }
expect_status() {  # expect_status NAME STATUS: the last expect_failure NAME exited STATUS
  [ "$rc_of_last" -eq "$2" ] || { cat "$WORK/$1.err" >&2; fail "$1: exit $rc_of_last, not $2"; }
}
fails_with() {  # fails_with NAME STATUS CMD...
  local name=$1 status=$2
  shift 2
  set +e
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  rc_of_last=$?
  set -e
  [ "$rc_of_last" -ne 124 ] || fail "$name: hung until the time limit"
  ! grep -q "frame #" "$WORK/$name.err" || fail "$name: a stack trace was printed"
  expect_status "$name" "$status"
  echo "ok: $name exits $status"
}
digest() { (cd "$1" && find . -type f ! -name .lock | sort | xargs sha256sum); }

RUN="$WORK/run"
quick_np2 "$RUN" >"$WORK/first.out"
[ -f "$RUN/.lock" ] || fail "no lock file in the run directory"
before=$(digest "$RUN")

# A fresh run into it: refused on every rank's path, nothing touched.
fails_with again 73 quick_np2 "$RUN"
expect_line "$WORK/again.err" "ringtrain: \[rank [01]\] run directory error: run directory $RUN holds an earlier run \(.*\), and this run was not told to resume it HINT: continue it with --resume auto.*--overwrite"
[ "$(digest "$RUN")" = "$before" ] || fail "the refused run changed the earlier run's files"
fails_with dry 73 quick_np2 "$RUN" --dry-run
expect_line "$WORK/dry.err" "holds an earlier run"

# --overwrite with --resume contradicts itself.
fails_with both 2 quick_np2 "$RUN" --overwrite --resume auto
expect_line "$WORK/both.err" "usage error: --overwrite moves an earlier run aside and --resume continues it"

# A finished run resumed with another config is refused; with its own config it finishes.
fails_with edited 73 quick_np2 "$RUN" --resume auto --set optimizer.lr=0.01
expect_line "$WORK/edited.err" "run directory error: the run in $RUN finished at step 20, and this config differs from its \(optimizer.lr: 0.[0-9]+ -> 0.01\): resuming it would train nothing"
quick_np2 "$RUN" --resume auto >"$WORK/same.out" 2>&1 || { cat "$WORK/same.out"; fail "resuming a finished run with its own config failed"; }
expect_line "$WORK/same.out" "the run in $RUN finished at step 20: nothing is left to train"
# The supervisor stops at once on it (exit 73 is not worth a restart).
fails_with supervised 73 "$SUPERVISOR" -np 2 --backoff 1 --launcher-args "--oversubscribe --bind-to none" -- \
  train --config "$MLP_CFG" --run-dir "$RUN" "${QUICK[@]}" --set optimizer.lr=0.01
expect_line "$WORK/supervised.err" "not restarting \(exit 73\): a run directory error"
[ "$(digest "$RUN" | grep -v metrics.jsonl)" = "$(echo "$before" | grep -v metrics.jsonl)" ] ||
  { diff <(echo "$before") <(digest "$RUN") >&2; fail "the refused resumes changed the earlier run's checkpoints"; }

# --overwrite: the earlier run moves aside whole; the new one starts clean.
quick_np2 "$RUN" --overwrite >"$WORK/over.out" 2>&1 || { cat "$WORK/over.out"; fail "--overwrite failed"; }
aside=$(ls -d "$RUN".replaced-* | head -n 1)
[ -d "$aside" ] || fail "no $RUN.replaced-* directory"
expect_line "$WORK/over.out" "--overwrite: moved the earlier run in $RUN to $aside"
[ "$(cd "$aside" && sha256sum checkpoints/step-00000020/* | sort)" = "$(echo "$before" | grep 'checkpoints/step-00000020/' | sed 's| \./| |' | sort)" ] ||
  fail "the moved run's final checkpoint differs from the original"
[ "$(grep -c '"kind":"train"' "$RUN/metrics.jsonl")" = "$(grep -c '"kind":"train"' "$aside/metrics.jsonl")" ] ||
  fail "the new run's metrics.jsonl holds the earlier run's records too"

# Two jobs, one directory: the second is refused naming the first's pid and host.
HELD="$WORK/held"
HOLD=(--set train.threads=1 --set train.log_every=5 --set checkpoint.every_steps=10)
run_np 2 300 train --config "$MLP_CFG" --run-dir "$HELD" "${HOLD[@]}" --set train.max_steps=5000 \
  >"$WORK/holder.out" 2>&1 &
holder=$!
for _ in $(seq 1 600); do grep -q "step 5/" "$WORK/holder.out" 2>/dev/null && break; sleep 0.1; done
grep -q "step 5/" "$WORK/holder.out" || { cat "$WORK/holder.out"; fail "the holding job did not start"; }
read -r lock_host lock_pid _ <"$HELD/.lock"
fails_with second 73 quick_np2 "$HELD" --resume auto
expect_line "$WORK/second.err" "run directory error: run directory $HELD is in use by the job of pid $lock_pid on host $lock_host \(since .*\) HINT: wait for that job to end, or give this one another --run-dir"
kill -0 "$holder" || fail "the refused second job ended the first"
# SIGKILL of every process of the holding job: the kernel drops its lock with them.
pkill -KILL -f "run-dir $HELD " || true
wait "$holder" || true
last=$(ls "$HELD/checkpoints" 2>/dev/null | grep '^step-' | tail -n 1 | sed 's/^step-0*//')
run_np 2 300 train --config "$MLP_CFG" --run-dir "$HELD" "${HOLD[@]}" --resume auto \
  --set train.max_steps=$((${last:-0} + 10)) >"$WORK/after.out" 2>&1 ||
  { cat "$WORK/after.out"; fail "a killed holder left a stale lock"; }
echo "ok: a killed job's lock is gone with it"

# run_name stays one directory under runs/.
fails_with escape 3 run_np 1 60 train --config "$MLP_CFG" --set train.run_name=../escape
expect_line "$WORK/escape.err" "config error: train.run_name '../escape' is not a name"
echo "PASS"
