# Sourced by the craftkv bench scripts (craftkv_shard.sh, craftkv_place.sh): redis-tools
# installed if missing, the binary checked, a scratch directory, and one `craftkv local`
# cluster at a time (its supervisor's pid in LOCAL_PID; stop_cluster, also at exit).
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
    trap 'stop_cluster; rm -rf "$TMP"' EXIT
}

stop_cluster() {
    if [ -n "$LOCAL_PID" ]; then
        kill -INT "$LOCAL_PID" 2>/dev/null || true
        wait "$LOCAL_PID" 2>/dev/null || true
        LOCAL_PID=""
    fi
}

cli() { redis-cli -p "$1" "${@:2}" 2>/dev/null | tr -d '\r'; }
