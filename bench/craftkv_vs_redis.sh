#!/usr/bin/env bash
# craftkv against Redis, side by side in one run (part of `make bench`):
#   - a local 3-node craftkv cluster (craftkv local: WAL with fdatasync on every node),
#     redis-benchmark against the leader's client port (and, for reference, a follower's);
#   - one redis-server with appendonly yes, appendfsync always, on the same machine.
# Shapes (redis-benchmark -r 100000): SET -c 1, SET -c 50, SET -c 50 -P 16, GET -c 50,
# GET -c 50 -P 16, SET -c 256 -d 128. For each: ops/s, p50/p99 latency, and CPU per request
# (utime+stime of the server processes over the run, all three craftkv nodes summed, divided
# by the requests), then the ratios against the targets of docs/design/craftkv.md. CPU per
# request is the figure to compare across runs: noise on a shared VM moves it less than ops/s.
# For SET shapes it also prints the leader's log entries per fdatasync (INFO raft: the group
# commit's batch size).
# It prints figures; it never fails on speed (only if something cannot start).
#
# Usage: bench/craftkv_vs_redis.sh [path/to/craftkv]   (default build/bin/craftkv)
# Environment: REQUESTS (per run, default 100000; SET -c 1 runs REQUESTS/10), BENCH_DIR
# (default /tmp), BASE_PORT (default 7401: craftkv clients BASE..BASE+2, peers BASE+100..,
# redis BASE+99), FOLLOWER=1 also runs every shape through a follower.
# Installs redis-server (Debian package) if it is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${1:-build/bin/craftkv}
N=${REQUESTS:-100000}
BASE=${BASE_PORT:-7401}
REDIS_PORT_WANTED=$((BASE + 99))

source bench/local_cluster.bash
bench_cluster_init craftkv_bench
start_local3 "$BASE"
start_redis "$REDIS_PORT_WANTED"
leader=$LEADER
follower=$BASE
[ "$follower" = "$leader" ] && follower=$((BASE + 1))

# The leader's entries written and fdatasyncs so far (INFO raft), "entries syncs".
raft_io() {
    redis-cli -p "$leader" info raft 2>/dev/null | tr -d '\r' |
        awk -F: '$1 == "entries_written" { e = $2 } $1 == "disk_syncs" { s = $2 }
                 END { print e + 0, s + 0 }'
}

# bench NAME PORT TEST CLIENTS PIPELINE SIZE REQUESTS PIDS...: one redis-benchmark run;
# prints "NAME SHAPE rps p50 p99 cpu_us_per_request".
bench() {
    local name=$1 port=$2 t=$3 c=$4 p=$5 d=$6 n=$7
    shift 7
    local before after line
    before=$(cpu_ticks "$@")
    line=$(redis-benchmark -p "$port" -c "$c" -n "$n" -P "$p" -d "$d" -r 100000 -t "$t" --csv \
        2>/dev/null | tr -d '"' | awk -F, 'NR == 2 { print $2, $5, $7 }')
    after=$(cpu_ticks "$@")
    echo "$name $t-c$c-P$p-d$d $line" |
        awk -v cpu=$((after - before)) -v hz="$HZ" -v n="$n" \
            '{ printf "%s %.1f\n", $0, cpu * 1e6 / hz / n }'
}

SHAPES=(
    "set 1 1 3 $((N / 10))"
    "set 50 1 3 $N"
    "set 50 16 3 $N"
    "get 50 1 3 $N"
    "get 50 16 3 $N"
    "set 256 1 128 $N"
)
results="$TMP/results"
: >"$results"
for shape in "${SHAPES[@]}"; do
    read -r t c p d n <<<"$shape"
    # shellcheck disable=SC2086 # the pid lists split on purpose
    bench redis "$REDIS_PORT" "$t" "$c" "$p" "$d" "$n" $REDIS_PIDS | tee -a "$results"
    # shellcheck disable=SC2086
    io_before=$(raft_io)
    bench craftkv "$leader" "$t" "$c" "$p" "$d" "$n" $CRAFT_PIDS | tee -a "$results"
    # Group commit on the leader: log entries per fdatasync over this shape's run.
    if [ "$t" = set ]; then
        read -r e1 s1 <<<"$io_before"
        read -r e2 s2 <<<"$(raft_io)"
        awk -v e=$((e2 - e1)) -v s=$((s2 - s1)) -v shape="$t-c$c-P$p-d$d" \
            'BEGIN { if (s > 0) printf "craftkv %s entries per fdatasync (leader): %.1f\n", shape, e / s }' |
            tee -a "$TMP/batching"
    fi
    if [ "${FOLLOWER:-0}" = 1 ]; then
        # shellcheck disable=SC2086
        bench craftkv-follower "$follower" "$t" "$c" "$p" "$d" "$n" $CRAFT_PIDS |
            tee -a "$results"
    fi
done

get() { awk -v n="$1" -v s="$2" -v f="$3" '$1 == n && $2 == s { print $f }' "$results"; }

echo
echo "redis-benchmark -r 100000, $(nproc) CPUs; craftkv: 3 nodes on this machine, fdatasync on"
echo "every node, client on the leader; redis: one server, appendfsync always."
echo "ops/s (p50 / p99 ms); CPU us per request (craftkv: the three nodes summed)."
printf '%-18s %-26s %-26s %-7s %-8s %-8s %-7s %s\n' shape craftkv redis ratio \
    cpu-kv cpu-redis cpu-x target
for shape in "${SHAPES[@]}"; do
    read -r t c p d n <<<"$shape"
    s="$t-c$c-P$p-d$d"
    cell() { printf '%s (%s / %s)' "$(get "$1" "$s" 3)" "$(get "$1" "$s" 4)" "$(get "$1" "$s" 5)"; }
    ratio=$(awk -v a="$(get craftkv "$s" 3)" -v b="$(get redis "$s" 3)" \
        'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    cpux=$(awk -v a="$(get craftkv "$s" 6)" -v b="$(get redis "$s" 6)" \
        'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }')
    case "$s" in
    set-c1-P1-d3) target="p50 <= 1.5x redis's" ;;
    set-c50-P1-d3) target="ops >= 1.0x, cpu <= 3x" ;;
    set-c50-P16-d3) target="ops >= 0.5x, cpu <= 3x" ;;
    get-c50-P1-d3) target="ops >= 1.0x (linearizable)" ;;
    *) target="-" ;;
    esac
    printf '%-18s %-26s %-26s %-7s %-8s %-8s %-7s %s\n' "${t^^} -c$c -P$p -d$d" \
        "$(cell craftkv)" "$(cell redis)" "$ratio" "$(get craftkv "$s" 6)" \
        "$(get redis "$s" 6)" "$cpux" "$target"
done
echo
cat "$TMP/batching"
