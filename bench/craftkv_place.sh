#!/usr/bin/env bash
# craftkv sharded, scale-out: the same two shard groups on 3 processes (each hosting both)
# and on 6 (each group on its own 3: --replicas 3), side by side in one run, to show what
# placement buys: the work of a write is done by its group's three replicas wherever they
# run, so with twice the processes each one does about half of it, and on machines of
# their own twice the throughput fits. This 2-core VM runs every process on the same two
# cores, so ops/s cannot grow here; the figure that shows the gain is the CPU per request
# of the busiest process (utime+stime over the run / requests), next to the CPU per
# request of all processes summed (the cost of a write, which placement must not raise).
#
# Each layout: `craftkv local --nodes N --groups 2 --replicas 3`, leaders spread (one
# group per process at most), then redis-benchmark --cluster, -r 100000, SET and GET, -c 50,
# with and without -P 16. It prints figures; it never fails on speed.
#
# Usage: bench/craftkv_place.sh [path/to/craftkv]   (default build/bin/craftkv)
# Environment: REQUESTS (per shape, default 100000), BENCH_DIR (default /tmp), BASE_PORT
# (default 7601: clients BASE..BASE+5, peers BASE+100..).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${1:-build/bin/craftkv}
N=${REQUESTS:-100000}
BASE=${BASE_PORT:-7601}
source bench/local_cluster.bash
bench_cluster_init craftkv_place_bench
HZ=$(getconf CLK_TCK)

# Every process hosting a group settled it, every group has a leader, and no process leads
# two (CLUSTER NODES lists one master per group).
settled() { # nodes
    local i info
    for ((i = 0; i < $1; i++)); do
        info=$(cli $((BASE + i)) craft.shard info)
        echo "$info" | grep -q '^configuration:1$' || return 1
        echo "$info" | grep -qE "(pulling|giving|notifying):[1-9]|leader:\?" && return 1
    done
    [ "$(cli "$BASE" cluster nodes | awk '$3 ~ /master/' | wc -l)" = 2 ] &&
        [ "$(cli "$BASE" cluster nodes | awk '$3 ~ /master/ {print $2}' | sort -u | wc -l)" = 2 ]
}

echo "redis-benchmark --cluster -r 100000 -n $N, $(nproc) CPUs; 2 shard groups of 3 replicas,"
echo "fdatasync on. cpu all: every process summed; cpu max: the busiest process (us/request)."
printf '%-10s %-14s %9s %6s %9s %9s\n' processes shape ops/s p50ms "cpu all" "cpu max"
for nodes in 3 6; do
    stop_cluster
    "$BIN" local --nodes "$nodes" --groups 2 --replicas 3 --dir "$TMP/n$nodes" \
        --base-port "$BASE" >"$TMP/local$nodes.log" 2>&1 &
    LOCAL_PID=$!
    ok=0
    for _ in $(seq 1 300); do
        if settled "$nodes"; then ok=1; break; fi
        sleep 0.1
    done
    [ "$ok" = 1 ] || { cat "$TMP/local$nodes.log"; echo "craftkv: $nodes processes did not settle" >&2; exit 1; }
    PIDS=$(pgrep -P "$LOCAL_PID" | tr '\n' ' ')
    for s in "set 50 1" "set 50 16" "get 50 1" "get 50 16"; do
        read -r t c p <<<"$s"
        before=$(for q in $PIDS; do awk '{ print $14 + $15 }' "/proc/$q/stat"; done | tr '\n' ' ')
        line=$(redis-benchmark --cluster -p "$BASE" -c "$c" -n "$N" -P "$p" -r 100000 -t "$t" \
            --csv 2>/dev/null | tr -d '"' | awk -F, '$1 ~ /^(SET|GET)$/ { print $2, $5 }')
        after=$(for q in $PIDS; do awk '{ print $14 + $15 }' "/proc/$q/stat"; done | tr '\n' ' ')
        [ -n "$line" ] || { echo "redis-benchmark gave no figures for $t -P$p" >&2; exit 1; }
        awk -v nodes="$nodes" -v shape="${t^^} -c$c -P$p" -v line="$line" -v b="$before" \
            -v a="$after" -v hz="$HZ" -v n="$N" 'BEGIN {
            split(line, f, " "); k = split(b, x, " "); split(a, y, " ")
            all = 0; max = 0
            for (i = 1; i <= k; i++) { d = y[i] - x[i]; all += d; if (d > max) max = d }
            printf "%-10s %-14s %9s %6s %9.1f %9.1f\n", nodes, shape, f[1], f[2],
                all * 1e6 / hz / n, max * 1e6 / hz / n
        }'
    done
done
