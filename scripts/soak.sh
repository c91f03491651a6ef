#!/usr/bin/env bash
# The long seed sweep (`make soak`): every simulator scenario over many seeds, on all cores.
# SEEDS overrides the range (default 1-1000), e.g. SEEDS=1-100000 scripts/soak.sh.
# craft-sim prints the table of runs and, for a failed one, the command that replays it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SEEDS=${SEEDS:-1-1000}
JOBS=${JOBS:-$(nproc)}

make -j"$JOBS"
exec build/bin/craft-sim run all --seeds "$SEEDS" --jobs "$JOBS"
