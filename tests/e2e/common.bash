# Shared helpers for the end-to-end tests, sourced by tests/e2e/*.sh.
set -euo pipefail
: "${RINGTRAIN_BIN:?set by ctest}"
: "${RINGTRAIN_SOURCE_DIR:?set by ctest}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
PY="${RINGTRAIN_PYTHON:-/usr/bin/python3}"  # set by ctest: the venv's, with torch
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# mpirun with a hard wall-clock limit: a hang is a failure, never a stuck CI.
run_np() {
  local np=$1 limit=$2
  shift 2
  timeout --kill-after=10 "$limit" mpirun --oversubscribe --bind-to none -np "$np" "$RINGTRAIN_BIN" "$@"
}

# Value of `key` in the last record of kind `kind` in a metrics.jsonl file.
last_metric() {
  $PY - "$1" "$2" "$3" <<'PYEOF'
import json, sys
path, kind, key = sys.argv[1:]
records = [json.loads(l) for l in open(path) if l.strip()]
matching = [r for r in records if r.get("kind") == kind]
if not matching:
    sys.exit(f"no '{kind}' record in {path}")
print(matching[-1][key])
PYEOF
}
