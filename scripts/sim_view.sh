#!/usr/bin/env bash
# `make sim-view`: a simulated 5-node cluster under faults,
# shown as one column per node through craft-log (network events hidden).
#
# SCENARIO and SEED override what runs: SCENARIO=raft/figure8-unreliable-2c SEED=7 make sim-view.
# On a terminal the view opens in `less -R` (q quits); otherwise it is printed in full.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCENARIO=${SCENARIO:-raft/figure8-2c}
SEED=${SEED:-1}

for bin in build/bin/craft-sim build/bin/craft-log; do
    if [ ! -x "$bin" ]; then
        echo "sim_view.sh: $bin is not built; run make first" >&2
        exit 1
    fi
done

sim=(build/bin/craft-sim run "$SCENARIO" --seed "$SEED" --trace)
view=(build/bin/craft-log --exclude-topics NET,PERSIST --width 30)

# The statuses are read from PIPESTATUS, so a failing stage must not stop the script here.
set +e
if [ -t 1 ]; then
    "${sim[@]}" 2>&1 | "${view[@]}" --color | less -R
else
    "${sim[@]}" 2>&1 | "${view[@]}"
fi
statuses=("${PIPESTATUS[@]}")
set -e

# Quitting less early stops the writers with SIGPIPE (exit 141): that is not a failure.
names=(craft-sim craft-log)
for i in 0 1; do
    st=${statuses[$i]}
    if [ "$st" -ne 0 ] && [ "$st" -ne 141 ]; then
        echo "sim_view.sh: $SCENARIO seed $SEED: ${names[$i]} exited $st" >&2
        exit "$st"
    fi
done
