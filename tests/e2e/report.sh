#!/usr/bin/env bash
# `ringtrain report`: three short runs that differ in learning rate and world size, one
# HTML file; it must parse, be self-contained, and hold one curve per run in every chart.
# Then a real headless browser loads it: its DOM has the six charts with one curve per run,
# and its screenshot shows each run's colour.
source "$(dirname "$0")/common.bash"
source "$(dirname "$0")/browser.bash"
[ -d /usr/share/datasets/fashion-mnist ] || fail "dataset-fashion-mnist is not installed"

cfg="$RINGTRAIN_SOURCE_DIR/configs/fashion_mnist_mlp.yaml"
short=(--set train.max_steps=40 --set train.log_every=10 --set checkpoint.enabled=false)
run_np 2 300 train --config "$cfg" --run-dir "$WORK/lr05" "${short[@]}" > /dev/null
run_np 2 300 train --config "$cfg" --run-dir "$WORK/lr01" "${short[@]}" --set optimizer.lr=0.01 \
  > /dev/null
run_np 1 300 train --config "$cfg" --run-dir "$WORK/np1" "${short[@]}" --set data.batch_size=128 \
  > /dev/null

"$RINGTRAIN_BIN" report "$WORK/lr05" "$WORK/lr01" "$WORK/np1" -o "$WORK/report.html"
[ -s "$WORK/report.html" ] || fail "no report written"

$PY - "$WORK/report.html" <<'PYEOF'
import re, sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

html = open(sys.argv[1], encoding="utf-8").read()
assert html.startswith("<!DOCTYPE html>"), "not an HTML5 document"
assert "http" not in html and "<script" not in html and "<link" not in html, "not self-contained"

# Every non-void element is closed, in order.
VOID = {"meta", "br", "hr", "img", "input", "link", "polyline", "line", "rect", "circle"}
class Checker(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack = []
    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append(tag)
    def handle_startendtag(self, tag, attrs):
        pass
    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
checker = Checker()
checker.feed(html)
assert not checker.stack, f"unclosed: {checker.stack}"

# Each chart is well-formed XML with one curve per run.
svgs = re.findall(r"<svg.*?</svg>", html, re.S)
assert len(svgs) == 6, f"{len(svgs)} charts"
for svg in svgs:
    root = ET.fromstring(svg)
    title = root.get("aria-label")
    runs = [p.get("data-run") for p in root.iter("polyline")]
    if "accuracy" in title or "loss" in title:
        assert sorted(runs) == ["lr01", "lr05", "np1"], f"{title}: curves {runs}"
    for p in root.iter("polyline"):
        assert len(p.get("points").split()) >= 1
train = [s for s in svgs if "training loss vs step" in s][0]
points = [len(p.get("points").split()) for p in ET.fromstring(train).iter("polyline")]
assert points == [4, 4, 4], f"training-loss points per run: {points}"

# The config table lists what differs, and not what is the same.
for key in ("optimizer.lr", "data.batch_size"):
    assert f"<code>{key}</code>" in html, f"{key} missing from the differences"
assert "<code>model.name</code>" not in html, "identical keys listed as differences"
print(f"report OK: {len(svgs)} charts, 3 runs")
PYEOF

# What the browser made of it: the loaded DOM, then the pixels.
dom "$WORK/report.html" >"$WORK/report.dom"
$PY - "$WORK/report.dom" <<'PYEOF'
import re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
svgs = re.findall(r"<svg.*?</svg>", dom, re.S)
assert len(svgs) == 6, f"the browser's DOM holds {len(svgs)} charts, not 6"
for svg in svgs:
    title = re.search(r'aria-label="([^"]*)"', svg).group(1)
    if "accuracy" in title or "loss" in title:
        runs = sorted(re.findall(r'<polyline[^>]*data-run="([^"]*)"', svg))
        assert runs == ["lr01", "lr05", "np1"], f"{title}: the browser shows curves {runs}"
print("browser DOM OK: 6 charts, one curve per run")
PYEOF
screenshot "$WORK/report.html" "$WORK/report.png" 1280x2400
# The first three colours of the report's palette, one per run, in legend order.
png_colours "$WORK/report.png" '#1f77b4' '#d62728' '#2ca02c' | tee "$WORK/colours.txt"
while read -r colour count; do
  [ "$colour" = size ] && continue
  [ "$count" -ge 200 ] || fail "the screenshot shows only $count pixels of $colour: a run's curve is not drawn"
done <"$WORK/colours.txt"
echo "PASS"
