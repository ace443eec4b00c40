#!/usr/bin/env bash
# Fails if a tracked C++ file differs from what clang-format (with the committed .clang-format)
# makes of it; lists the files. Run `clang-format -i FILE` to fix one.
set -uo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 1
bad=0
while IFS= read -r file; do
  if ! clang-format --style=file --dry-run -Werror "$file" >/dev/null 2>&1; then
    echo "not clang-formatted: $file"
    bad=1
  fi
done < <(git ls-files '*.cpp' '*.h' 2>/dev/null ||
  find . \( -name 'build*' -o -name runs -o -name .git \) -prune -o \
    \( -name '*.cpp' -o -name '*.h' \) -print)
exit $bad
