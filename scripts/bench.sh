#!/usr/bin/env bash
# Runs every benchmark of the release build (`make bench`). Benchmarks print figures; they
# never pass or fail on time, so this only fails if a benchmark itself errors.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

found=0
status=0
for b in build/bench/*; do
    [[ -f "$b" && -x "$b" ]] || continue
    found=1
    printf '=== %s\n' "$b"
    "$b" || status=$?
done
if [ "$found" -eq 0 ]; then
    echo "no benchmarks yet"
fi
exit "$status"
