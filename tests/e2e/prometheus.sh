#!/usr/bin/env bash
# Prometheus metrics: while a run trains on 2 ranks, a real HTTP client scrapes rank 0's
# /metrics (metrics.prometheus_port, on loopback) and prometheus_client's parser reads it:
# step, loss, samples/s, the straggler fields, checkpoint age and restarts, labelled with the
# run; other paths get 404. metrics.prometheus_textfile holds the same gauges for
# node_exporter, and at the end equals metrics.jsonl's last records. A port already taken is
# a config error (exit 3) with one line; the server is gone once the run ends.
source "$(dirname "$0")/common.bash"
CFG="$RINGTRAIN_SOURCE_DIR/configs/fashion_mnist_mlp.yaml"
"$PY" -c "import prometheus_client" 2>/dev/null || fail "the venv has no prometheus_client (launch/requirements.txt)"
port=$("$PY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")

run_np 2 300 train --config "$CFG" --run-dir "$WORK/run" --set metrics.prometheus_port="$port" \
  --set metrics.prometheus_textfile="$WORK/ringtrain.prom" --set train.max_steps=400 \
  --set train.log_every=10 --set checkpoint.every_steps=100 --set train.threads=1 \
  >"$WORK/run.out" 2>&1 &
job=$!

"$PY" - "$port" <<'PYEOF' || { kill "$job" 2>/dev/null; cat "$WORK/run.out" >&2; fail "the scrapes failed"; }
import sys, time, urllib.error, urllib.request
from prometheus_client.parser import text_string_to_metric_families

port = int(sys.argv[1])
url = f"http://127.0.0.1:{port}/metrics"
deadline = time.time() + 240
samples = {}
while time.time() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            if response.status != 200:
                sys.exit(f"GET /metrics: status {response.status}")
            kind = response.headers["Content-Type"]
            text = response.read().decode()
    except (urllib.error.URLError, ConnectionError):
        time.sleep(0.2)  # not serving yet
        continue
    samples = {s.name: s for f in text_string_to_metric_families(text) for s in f.samples}
    if samples.get("ringtrain_step") and samples["ringtrain_step"].value >= 120 and \
            "ringtrain_train_loss" in samples:
        break
    time.sleep(0.2)
else:
    sys.exit(f"no scrape showed step 120 in time; last: {sorted(samples)}")
if not kind.startswith("text/plain; version=0.0.4"):
    sys.exit(f"Content-Type {kind}")
for name in ("ringtrain_step", "ringtrain_train_loss", "ringtrain_train_samples_per_s",
             "ringtrain_train_slowest_rank", "ringtrain_train_slowest_rank_lead_ms",
             "ringtrain_train_sync_wait_ms", "ringtrain_checkpoint_age_seconds",
             "ringtrain_restarts"):
    if name not in samples:
        sys.exit(f"no {name} in the scrape: {sorted(samples)}")
    if samples[name].labels.get("run") != "fashion_mnist_mlp":
        sys.exit(f"{name} has labels {samples[name].labels}, not run=fashion_mnist_mlp")
if not 0 < samples["ringtrain_train_loss"].value < 10:
    sys.exit(f"loss {samples['ringtrain_train_loss'].value}")
if samples["ringtrain_train_samples_per_s"].value <= 0:
    sys.exit("samples/s not positive")
if samples["ringtrain_train_slowest_rank"].value not in (0, 1):
    sys.exit(f"slowest rank {samples['ringtrain_train_slowest_rank'].value} of 2")
age = samples["ringtrain_checkpoint_age_seconds"].value
if not 0 <= age < 240:
    sys.exit(f"checkpoint age {age}")
if samples["ringtrain_restarts"].value != 0:
    sys.exit("restarts not 0 in a run the supervisor did not restart")
try:
    urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
    sys.exit("GET /other did not fail")
except urllib.error.HTTPError as e:
    if e.code != 404:
        sys.exit(f"GET /other: status {e.code}, not 404")
print(f"ok: scraped step {samples['ringtrain_step'].value:.0f}, loss "
      f"{samples['ringtrain_train_loss'].value:.4f}, checkpoint age {age:.2f} s")
PYEOF
wait "$job" || { cat "$WORK/run.out" >&2; fail "the run failed"; }

# The textfile: the last records' values, as metrics.jsonl has them.
"$PY" - "$WORK/ringtrain.prom" "$WORK/run/metrics.jsonl" <<'PYEOF' || fail "the textfile does not match metrics.jsonl"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
samples = {s.name: s.value for f in text_string_to_metric_families(open(sys.argv[1]).read())
           for s in f.samples}
last = {}
for line in open(sys.argv[2]):
    record = json.loads(line)
    last[record["kind"]] = record
for kind, field in (("eval", "test_accuracy"), ("eval", "test_loss"), ("summary", "best_accuracy"),
                    ("train", "loss"), ("summary", "samples_per_s")):
    name = f"ringtrain_{kind}_{field}"
    if name not in samples or abs(samples[name] - last[kind][field]) > 1e-9 * max(1, abs(last[kind][field])):
        sys.exit(f"{name}: {samples.get(name)} in the textfile, {last[kind][field]} in metrics.jsonl")
if samples["ringtrain_step"] != 400:
    sys.exit(f"ringtrain_step {samples['ringtrain_step']} at the end, not 400")
print("ok: the textfile holds the final records")
PYEOF
"$PY" -c "
import socket, sys
s = socket.socket()
sys.exit(0 if s.connect_ex(('127.0.0.1', $port)) != 0 else 'the metrics port is still open after the run')"

# A port that is taken: one config line, exit 3.
"$PY" -c "
import socket, subprocess, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $port)); s.listen()
rc = subprocess.run(sys.argv[1:], stdout=open('$WORK/taken.out', 'w'), stderr=open('$WORK/taken.err', 'w'), timeout=120).returncode
sys.exit(0 if rc == 3 else f'exit {rc} for a port in use, not 3')" \
  "$RINGTRAIN_BIN" train --config "$CFG" --run-dir "$WORK/taken" --set metrics.prometheus_port="$port" \
  --set train.max_steps=5 || { cat "$WORK/taken.err" >&2; fail "a port in use was not refused with exit 3"; }
grep -q "config error: cannot serve Prometheus metrics on 127.0.0.1:$port: Address already in use" "$WORK/taken.err" ||
  { cat "$WORK/taken.err" >&2; fail "no line naming the port in use"; }
echo "PASS"
