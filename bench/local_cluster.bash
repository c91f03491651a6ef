# Sourced by the craftkv bench scripts (craftkv_shard.sh, craftkv_place.sh, craftkv_suite.sh,
# craftkv_vs_redis.sh): redis-tools installed if missing, the binary checked, a scratch
# directory, one `craftkv local` cluster at a time (its supervisor's pid in LOCAL_PID;
# stop_cluster, also at exit), a redis-server with appendfsync always to compare with
# (start_redis; stopped at exit), and the CPU counter of the server processes.
# Needs BIN set; NAME is the scratch directory's prefix.
bench_cluster_init() { # name
    if ! command -v redis-benchmark >/dev/null 2>&1; then
        echo "installing redis-tools (Debian) for redis-benchmark and redis-cli"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get install -y -q redis-tools >/dev/null
    fi
    [ -x "$BIN" ] || { echo "$BIN is not built: run make" >&2; exit 1; }
    TMP=$(mktemp -d "${BENCH_DIR:-/tmp}/$1.XXXXXX")
    LOCAL_PID=""
    REDIS_PORT=""
    trap 'stop_cluster; stop_redis; rm -rf "$TMP"' EXIT
}

# start_local3 BASE: a 3-node `craftkv local` cluster on client ports BASE..BASE+2 (log in
# $TMP/local.log); sets LOCAL_PID, LEADER (the leader's client port), CRAFT_PIDS (the three
# node processes). Exits if no leader comes.
start_local3() {
    local base=$1 p
    "$BIN" local --nodes 3 --dir "$TMP/craftkv" --base-port "$base" >"$TMP/local.log" 2>&1 &
    LOCAL_PID=$!
    LEADER=""
    for _ in $(seq 1 100); do
        for p in $base $((base + 1)) $((base + 2)); do
            cli "$p" info raft | grep -q '^role:leader' && LEADER=$p
        done
        [ -n "$LEADER" ] && break
        sleep 0.1
    done
    [ -n "$LEADER" ] || { cat "$TMP/local.log"; echo "craftkv: no leader" >&2; exit 1; }
    CRAFT_PIDS=$(pgrep -P "$LOCAL_PID" | tr '\n' ' ')
    [ "$(echo "$CRAFT_PIDS" | wc -w)" = 3 ] || { echo "craftkv: expected 3 node processes" >&2; exit 1; }
}

# start_redis PORT: one redis-server with appendonly yes, appendfsync always (installing the
# Debian package if missing); sets REDIS_PORT and REDIS_PIDS.
start_redis() {
    if ! command -v redis-server >/dev/null 2>&1; then
        echo "installing redis-server (Debian) for the comparison"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get install -y -q redis-server >/dev/null
    fi
    REDIS_PORT=$1
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$TMP" --appendonly yes \
        --appendfsync always --save "" --daemonize yes --logfile "$TMP/redis.log" \
        --pidfile "$TMP/redis.pid" >/dev/null
    for _ in $(seq 1 50); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    REDIS_PIDS=$(cat "$TMP/redis.pid")
}

stop_redis() {
    if [ -n "$REDIS_PORT" ]; then
        redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
        REDIS_PORT=""
    fi
}

# cpu_ticks PID...: utime+stime of the processes, in clock ticks (fields 14 and 15 of
# /proc/PID/stat; the command name in field 2 has no spaces here).
cpu_ticks() {
    local t=0 p
    for p in "$@"; do
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
    done
    echo "$t"
}
HZ=$(getconf CLK_TCK)

stop_cluster() {
    if [ -n "$LOCAL_PID" ]; then
        kill -INT "$LOCAL_PID" 2>/dev/null || true
        wait "$LOCAL_PID" 2>/dev/null || true
        LOCAL_PID=""
    fi
}

cli() { redis-cli -p "$1" "${@:2}" 2>/dev/null | tr -d '\r'; }
