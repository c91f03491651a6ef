#!/usr/bin/env bash
# The main job (`make run`, `./dev run`): a local 3-node craftkv cluster on loopback.
# Client ports 7001-7003 (redis-cli -p 7001), peer ports 7101-7103, data in ./craftkv-local.
# Ctrl-C stops every node. NODES, DIR and BASE_PORT override the defaults; SHARD_GROUPS=G runs a
# sharded cluster of G shard groups (INITIAL_GROUPS=K: only K own slots at first; REPLICAS=R:
# each group on R of the NODES, default 3).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bin=build/bin/craftkv
if [ ! -x "$bin" ]; then
    echo "run.sh: $bin is not built; run make first" >&2
    exit 1
fi
sharded=()
if [ -n "${SHARD_GROUPS:-}" ]; then
    sharded=(--groups "$SHARD_GROUPS")
    [ -z "${INITIAL_GROUPS:-}" ] || sharded+=(--initial-groups "$INITIAL_GROUPS")
    [ -z "${REPLICAS:-}" ] || sharded+=(--replicas "$REPLICAS")
fi
exec "$bin" local --nodes "${NODES:-3}" --dir "${DIR:-./craftkv-local}" \
    --base-port "${BASE_PORT:-7001}" "${sharded[@]}"
