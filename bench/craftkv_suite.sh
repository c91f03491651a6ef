#!/usr/bin/env bash
# redis-benchmark's default suite (PING, SET, GET, INCR, LPUSH, RPUSH, LPOP, RPOP, SADD,
# HSET, SPOP, ZADD, ZPOPMIN, LRANGE_100..600, MSET) against craftkv and Redis, side by side
# in one run (part of `make bench`): a local 3-node craftkv cluster (fdatasync on every
# node, client on the leader) and one redis-server with appendonly yes, appendfsync always.
# Each test runs on its own (`-t name`), so that the CPU of the server processes
# (utime+stime, the three craftkv nodes summed) is counted per test; prints ops/s, the ratio
# to Redis, and CPU per request of both. It prints figures; it never fails on speed.
#
# Usage: bench/craftkv_suite.sh [path/to/craftkv]   (default build/bin/craftkv)
# Environment: REQUESTS (per test, default 20000), CLIENTS (default 50), BENCH_DIR,
# BASE_PORT (default 7501: craftkv BASE..BASE+2, peers BASE+100.., redis BASE+99).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${1:-build/bin/craftkv}
N=${REQUESTS:-20000}
C=${CLIENTS:-50}
BASE=${BASE_PORT:-7501}
source bench/local_cluster.bash
bench_cluster_init craftkv_suite
start_local3 "$BASE"
start_redis $((BASE + 99))
leader=$LEADER

# one PORT TEST PIDS...: "ops_per_s cpu_us_per_request" of the test's own line (lrange
# tests also run their LPUSH fill, which is not counted in the ops but is in the CPU: the
# CPU figure of those four is an upper bound).
one() {
    local port=$1 t=$2
    shift 2
    local before after line
    before=$(cpu_ticks "$@")
    line=$(redis-benchmark -p "$port" -c "$C" -n "$N" -r 100000 -t "$t" --csv 2>/dev/null |
        tr -d '"' | awk -F, 'NR > 1 && $1 !~ /needed/ { rps = $2 } END { print rps + 0 }')
    after=$(cpu_ticks "$@")
    awk -v r="$line" -v cpu=$((after - before)) -v hz="$HZ" -v n="$N" \
        'BEGIN { printf "%s %.1f\n", r, cpu * 1e6 / hz / n }'
}

TESTS=(ping_inline ping_mbulk set get incr lpush rpush lpop rpop sadd hset spop zadd zpopmin
    lrange_100 lrange_300 lrange_500 lrange_600 mset)
echo "redis-benchmark default suite, -c $C -n $N -r 100000, $(nproc) CPUs; craftkv: 3 nodes"
echo "(fdatasync on every node, client on the leader); redis: appendfsync always."
printf '%-12s %12s %12s %7s %10s %10s %7s\n' test craftkv redis ratio cpu-kv cpu-redis cpu-x
for t in "${TESTS[@]}"; do
    # shellcheck disable=SC2086 # the pid lists split on purpose
    read -r rr rc <<<"$(one "$REDIS_PORT" "$t" $REDIS_PIDS)"
    # shellcheck disable=SC2086
    read -r kr kc <<<"$(one "$leader" "$t" $CRAFT_PIDS)"
    awk -v t="$t" -v kr="$kr" -v rr="$rr" -v kc="$kc" -v rc="$rc" 'BEGIN {
        ratio = "-"; cpux = "-"
        if (rr > 0) ratio = sprintf("%.2f", kr / rr)
        if (rc > 0) cpux = sprintf("%.1f", kc / rc)
        printf "%-12s %12.0f %12.0f %7s %10.1f %10.1f %7s\n", t, kr, rr, ratio, kc, rc, cpux }'
done
echo "(ops/s; CPU in us per request, craftkv's three nodes summed)"
