#!/usr/bin/env bash
# Fails if a library or CLI source includes a header from a layer above it. The layers, top
# down (docs/architecture.md):
#   5 launch/            the CLI
#   4 trainer/*          the training loop
#   3 trainer/<part>/    its parts (allreduce, ps, checkpoint, config, report, host); siblings
#                        may include each other
#   2 collectives/ models/ data/   each includes only itself and core/
#   1 core/              errors, fault injection, name helpers: includes nothing above it
# tests/, bench/ and examples/ sit outside the layers. Lists every upward include.
set -uo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 1

# Prints "<level> <group>" for a path; group tells same-level peers apart.
layer_of() {
  case "$1" in
    core/*) echo "1 core" ;;
    collectives/* | models/* | data/*) echo "2 ${1%%/*}" ;;
    trainer/*/*) echo "3 trainer-part" ;;
    trainer/*) echo "4 trainer" ;;
    launch/*) echo "5 launch" ;;
    *) echo "0 -" ;;
  esac
}

bad=0
checked=0
while IFS= read -r file; do
  read -r level group < <(layer_of "$file")
  [ "$level" = 0 ] && continue
  checked=$((checked + 1))
  while IFS=: read -r line target; do
    read -r tlevel tgroup < <(layer_of "$target")
    [ "$tlevel" = 0 ] && continue  # not a project header (e.g. "gtest/gtest.h")
    if [ "$tlevel" -gt "$level" ] || { [ "$tlevel" = 2 ] && [ "$level" = 2 ] && [ "$tgroup" != "$group" ]; }; then
      echo "upward include: $file:$line includes \"$target\" ($group may include only lower layers)"
      bad=1
    fi
  done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" |
    sed -E 's/^([0-9]+):[^"]*"([^"]+)".*/\1:\2/')
done < <(git ls-files '*.cpp' '*.h' '*.cu' 2>/dev/null ||
  find core collectives models data trainer launch \( -name '*.cpp' -o -name '*.h' \) -print)

if [ "$checked" = 0 ]; then
  echo "check_layering: no sources found under $root"
  exit 1
fi
exit $bad
