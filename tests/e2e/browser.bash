# Renders pages in a real headless browser (Debian's chromium-headless-shell), sourced by
# the e2e tests that check what a user sees. A machine without it fails these tests with one
# line naming the package (launch/setup.sh installs it): never a silent pass.
BROWSER="$(command -v chromium-headless-shell || command -v chromium || true)"
[ -n "$BROWSER" ] || fail "no headless browser: apt-get install chromium-headless-shell (launch/setup.sh)"

# screenshot PAGE.html OUT.png WIDTHxHEIGHT: the page as the browser draws it, after its load.
# A copy goes to $RINGTRAIN_ARTIFACTS when that is set (CI keeps it, the note shows it).
screenshot() {
  local page=$1 png=$2 size=$3
  timeout 120 "$BROWSER" --no-sandbox --disable-gpu --hide-scrollbars --headless \
    --window-size="${size/x/,}" --screenshot="$png" "file://$(realpath "$page")" \
    >"$WORK/browser.log" 2>&1 || { cat "$WORK/browser.log" >&2; fail "the browser did not render $page"; }
  [ -s "$png" ] || fail "the browser wrote no screenshot of $page"
  if [ -n "${RINGTRAIN_ARTIFACTS:-}" ]; then
    mkdir -p "$RINGTRAIN_ARTIFACTS" && cp "$png" "$RINGTRAIN_ARTIFACTS/"
  fi
}

# dom PAGE.html: the document as the browser holds it once loaded (stdout).
dom() {
  timeout 120 "$BROWSER" --no-sandbox --disable-gpu --headless --dump-dom \
    "file://$(realpath "$1")" 2>"$WORK/browser.log" || { cat "$WORK/browser.log" >&2; fail "the browser did not load $1"; }
}

# png_colours PNG '#rrggbb'...: for each colour, how many pixels are within 24 of it (per
# channel), one "colour count" line each; then "size WxH".
png_colours() {
  "$PY" "$RINGTRAIN_SOURCE_DIR/tests/e2e/png_colours.py" "$@"
}
