#!/usr/bin/env bash
# craftkv against Redis, side by side in one run (part of `make bench`):
#   - a local 3-node craftkv cluster (craftkv local: WAL with fdatasync on every node),
#     redis-benchmark against the leader's client port (and, for reference, a follower's);
#   - one redis-server with appendonly yes, appendfsync always, on the same machine.
# SET and GET, -c 50, with -P 1 and -P 16: ops/s and p50/p99 latency, then the ratios
# against the issue's targets (SET -P1 >= 1x Redis, SET -P16 >= 0.5x, GET -P1 >= 0.8x).
# It prints figures; it never fails on speed (only if something cannot start).
#
# Usage: bench/craftkv_vs_redis.sh [path/to/craftkv]   (default build/bin/craftkv)
# Environment: REQUESTS (per run, default 100000), BENCH_DIR (default /tmp), BASE_PORT
# (default 7401: craftkv clients BASE..BASE+2, peers BASE+100.., redis BASE+99).
# Installs redis-server (Debian package) if it is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${1:-build/bin/craftkv}
N=${REQUESTS:-100000}
BASE=${BASE_PORT:-7401}
REDIS_PORT=$((BASE + 99))

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-benchmark >/dev/null 2>&1; then
    echo "installing redis-server and redis-tools (Debian) for the comparison"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get install -y -q redis-server redis-tools >/dev/null
fi
[ -x "$BIN" ] || { echo "$BIN is not built: run make" >&2; exit 1; }

TMP=$(mktemp -d "${BENCH_DIR:-/tmp}/craftkv_bench.XXXXXX")
LOCAL_PID=""
cleanup() {
    [ -n "$LOCAL_PID" ] && kill -INT "$LOCAL_PID" 2>/dev/null && wait "$LOCAL_PID" 2>/dev/null
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT

"$BIN" local --nodes 3 --dir "$TMP/craftkv" --base-port "$BASE" >"$TMP/local.log" 2>&1 &
LOCAL_PID=$!
leader=""
for _ in $(seq 1 100); do
    for p in $BASE $((BASE + 1)) $((BASE + 2)); do
        if redis-cli -p "$p" info raft 2>/dev/null | grep -q '^role:leader'; then
            leader=$p
        fi
    done
    [ -n "$leader" ] && break
    sleep 0.1
done
[ -n "$leader" ] || { cat "$TMP/local.log"; echo "craftkv: no leader" >&2; exit 1; }
follower=$BASE
[ "$follower" = "$leader" ] && follower=$((BASE + 1))

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$TMP" --appendonly yes \
    --appendfsync always --save "" --daemonize yes --logfile "$TMP/redis.log" >/dev/null
for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done

# bench NAME PORT PIPELINE: one redis-benchmark run of SET and GET; prints lines
# "NAME TEST P rps p50 p99".
bench() {
    local name=$1 port=$2 p=$3
    redis-benchmark -p "$port" -c 50 -n "$N" -P "$p" -r 100000 -t set,get --csv 2>/dev/null |
        tr -d '"' | awk -F, -v name="$name" -v p="$p" \
        'NR > 1 { printf "%s %s %s %s %s %s\n", name, $1, p, $2, $5, $7 }'
}

results="$TMP/results"
: >"$results"
for p in 1 16; do
    bench redis "$REDIS_PORT" "$p" | tee -a "$results"
    bench craftkv "$leader" "$p" | tee -a "$results"
    bench craftkv-follower "$follower" "$p" | tee -a "$results"
done

get() { awk -v n="$1" -v t="$2" -v p="$3" -v f="$4" \
    '$1 == n && $2 == t && $3 == p { print $f }' "$results"; }

echo
echo "redis-benchmark -c 50 -n $N, $(nproc) CPUs; craftkv: 3 nodes on this machine, fdatasync"
echo "on every node; redis: one server, appendfsync always. ops/s (p50 / p99 ms)."
printf '%-10s %-26s %-26s %-26s %-8s %s\n' test craftkv-leader craftkv-follower redis ratio target
for t in SET GET; do
    for p in 1 16; do
        cell() { printf '%s (%s / %s)' "$(get "$1" $t $p 4)" "$(get "$1" $t $p 5)" "$(get "$1" $t $p 6)"; }
        ratio=$(awk -v a="$(get craftkv $t $p 4)" -v b="$(get redis $t $p 4)" \
            'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        case "$t-$p" in
        SET-1) target=">= 1.0" ;;
        SET-16) target=">= 0.5" ;;
        GET-1) target=">= 0.8" ;;
        *) target="-" ;;
        esac
        printf '%-10s %-26s %-26s %-26s %-8s %s\n' "$t -P$p" "$(cell craftkv)" \
            "$(cell craftkv-follower)" "$(cell redis)" "$ratio" "$target"
    done
done
