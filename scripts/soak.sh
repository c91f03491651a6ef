#!/usr/bin/env bash
# The long seed sweep (`make soak`): every simulator scenario over many seeds, on all cores,
# longer fuzz runs, black-box linearizability runs with random fault schedules, and a
# mutation score of the core's tests.
# SEEDS overrides the range (default 1-1000), e.g. SEEDS=1-100000 scripts/soak.sh.
# craft-sim prints the table of runs and, for a failed one, the command that replays it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SEEDS=${SEEDS:-1-1000}
JOBS=${JOBS:-$(nproc)}

make -j"$JOBS"
status=0
# --capped-share 200: the costly kvraft scenarios run a fifth of the seeds (200 of 1000).
build/bin/craft-sim run all --seeds "$SEEDS" --jobs "$JOBS" --capped-share 200 || status=1
# Swarm runs are cheap (a few ms each) and every seed is a new fault mix: ten times as many.
SWARM_SEEDS=${SWARM_SEEDS:-1001-11000}
build/bin/craft-sim run --swarm --seeds "$SWARM_SEEDS" --jobs "$JOBS" || status=1

# Then every fuzz target for SOAK_FUZZ_SECONDS (default 120) with a seed libFuzzer picks,
# so each soak explores new inputs (the test command's short runs use a fixed seed).
if command -v clang >/dev/null 2>&1; then
    make -j"$JOBS" BUILD=fuzz
    for target in build/fuzz/fuzz/*; do
        name=$(basename "$target")
        mkdir -p "build/fuzz/corpus/$name" "build/fuzz/artifacts/$name"
        dirs=("build/fuzz/corpus/$name")
        [ -d "tests/fuzz/corpus/$name" ] && dirs+=("tests/fuzz/corpus/$name")
        echo "=== fuzz $name (${SOAK_FUZZ_SECONDS:-120}s)"
        "$target" -max_total_time="${SOAK_FUZZ_SECONDS:-120}" -timeout=10 \
            -artifact_prefix="build/fuzz/artifacts/$name/" "${dirs[@]}" 2>&1 | tail -3 ||
            status=1
    done
fi

# Then the black-box linearizability test against real processes, SOAK_LINEAR_RUNS times
# (default 10) with random fault schedules of SOAK_LINEAR_SECONDS (default 60) each; a
# failing run prints its seed (SEED=... tests/blackbox/craftkv_linear.sh replays it).
for _ in $(seq 1 "${SOAK_LINEAR_RUNS:-10}"); do
    SECONDS_RUN=${SOAK_LINEAR_SECONDS:-60} tests/blackbox/craftkv_linear.sh build/bin/craftkv |
        grep -E "^seed|^faults|verdict|FAIL|passed" || status=1
done

# Then a mutation score of the core's tests (scripts/mutate.py, docs/design/mutation.md):
# SOAK_MUTANTS (default 100) mutants drawn with a new seed each soak. It reports the score
# and the survivors; a low score is for a person to read, not a failed soak.
python3 scripts/mutate.py --mutants "${SOAK_MUTANTS:-100}" --seed "$RANDOM" --jobs "$JOBS" || status=1
exit "$status"
