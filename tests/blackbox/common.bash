# Shared by the black-box tests (sourced, not run: the test command runs tests/blackbox/*.sh).
#
#   source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
#   bb_init NAME PORT_LO SLOTS NODES "$@"   # binary from $1, ports, temp dir, cleanup trap
#   ... start nodes into PID[id], check things with ok/bad/check ...
#   bb_finish                               # "N passed, M failed", exit status
#
# Ports: BASE is PORT_LO + 10*k for a random k < SLOTS whose NODES client ports (BASE..) and
# peer ports (BASE+100..) are free; keep PORT_LO + 10*SLOTS + 100 + NODES below 32768, the
# start of Linux's ephemeral range, so that no client connection's local port takes one.

bb_init() {
    local name=$1 lo=$2 slots=$3 nodes=$4
    shift 4
    BIN=${1:?usage: $0 path/to/craftkv}
    BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
    if ! command -v redis-cli >/dev/null; then
        echo "redis-cli not found"
        echo "0 passed, 1 failed"
        exit 1
    fi
    TMP=$(mktemp -d "/tmp/craftkv_$name.XXXXXX")
    PASS=0
    FAIL=0
    declare -gA PID
    CLIENTS=()
    trap bb_cleanup EXIT
    BASE=0
    local b i all
    for _ in $(seq 1 50); do
        b=$((lo + (RANDOM % slots) * 10))
        all=1
        for ((i = 0; i < nodes; i++)); do
            bb_port_free $((b + i)) && bb_port_free $((b + 100 + i)) || all=0
        done
        if [ $all = 1 ]; then
            BASE=$b
            break
        fi
    done
    if [ "$BASE" = 0 ]; then
        echo "no free ports"
        echo "0 passed, 1 failed"
        exit 1
    fi
    CLUSTER=""
    for ((i = 1; i <= 3; i++)); do
        CLUSTER+="${CLUSTER:+,}$i=$(PADDR $i)/$(CADDR $i)"
    done
}

bb_port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
CPORT() { echo $((BASE + $1 - 1)); }
PPORT() { echo $((BASE + 100 + $1 - 1)); }
CADDR() { echo "127.0.0.1:$(CPORT "$1")"; }
PADDR() { echo "127.0.0.1:$(PPORT "$1")"; }

ok() { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $1${2:+: $2}"; }
check() { # name expected actual
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "want '$2' got '$3'"; fi
}
check_has() { # name needle haystack
    if printf '%s' "$3" | grep -qF -- "$2"; then ok "$1"; else bad "$1" "no '$2' in: $(printf '%s' "$3" | tr '\n' ' ' | cut -c1-400)"; fi
}

# redis-cli against node id's client port.
cli() { local p; p=$(CPORT "$1"); shift; timeout 10 redis-cli -p "$p" "$@" 2>&1; }
# The id of a running node (of the given ids, default every running one) that says it
# leads, or nothing.
leader() {
    local i ids=("$@")
    [ ${#ids[@]} -gt 0 ] || ids=("${!PID[@]}")
    for i in "${ids[@]}"; do
        if cli "$i" info raft 2>/dev/null | tr -d '\r' | grep -q '^role:leader$'; then
            echo "$i"
            return
        fi
    done
}
wait_leader() {
    local l
    for _ in $(seq 1 150); do
        l=$(leader)
        if [ -n "$l" ]; then
            echo "$l"
            return
        fi
        sleep 0.2
    done
}

# This directory: resp_pipe.bash, the clients' program, lives here.
BB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# A writer for the exactly-once checks: rounds of BATCH pipelined "INCR c" through the
# command after NAME and BATCH (a client reading commands from stdin and printing one line
# per reply: resp_pipe.bash, which never sends a command twice; redis-cli resends a command
# after a lost connection, which can run it twice in another session) until $TMP/stop
# exists. An integer reply is acknowledged and must exceed the client's previous one (its
# commands are sequential); anything else (an error, a reply lost with the connection) is in
# doubt. Writes "acked in_doubt out_of_order" to $TMP/client.NAME.
bb_incr_client() { # name batch cmd...
    local name=$1 batch=$2 acked=0 errors=0 last=0 order=0 cmds="" k
    shift 2
    for ((k = 0; k < batch; k++)); do cmds+=$'INCR c\r\n'; done
    while [ ! -e "$TMP/stop" ]; do
        local out n=0 line
        out=$(printf '%s' "$cmds" | timeout 10 "$@" 2>/dev/null)
        while IFS= read -r line; do
            [ -n "$line" ] || continue
            n=$((n + 1))
            if [[ "$line" =~ ^[0-9]+$ ]]; then
                acked=$((acked + 1))
                [ "$line" -gt "$last" ] || order=$((order + 1))
                last=$line
            else
                errors=$((errors + 1))
            fi
        done <<<"$out"
        [ "$n" -lt "$batch" ] && errors=$((errors + batch - n))
        [ "$n" -lt "$batch" ] && sleep 0.1
    done
    echo "$acked $errors $order" >"$TMP/client.$name"
}

# SIGTERM, wait (SIGKILL after 10 s), forget.
stop() {
    local p=${PID[$1]:-}
    [ -n "$p" ] || return 0
    kill -CONT "$p" 2>/dev/null
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    unset "PID[$1]"
}

# SIGTERM first: a clean shutdown is part of what is tested (sanitizer builds report on
# exit); SIGKILL whatever is still up after 10 s. The temp dir (node logs) stays on failure.
bb_cleanup() {
    [ -z "${BB_CLEANED:-}" ] || return 0
    BB_CLEANED=1
    local c id alive
    for c in "${CLIENTS[@]}"; do kill "$c" 2>/dev/null; done
    for id in "${!PID[@]}"; do
        kill -CONT "${PID[$id]}" 2>/dev/null
        kill -TERM "${PID[$id]}" 2>/dev/null
    done
    for _ in $(seq 1 50); do
        alive=0
        for id in "${!PID[@]}"; do kill -0 "${PID[$id]}" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.2
    done
    for id in "${!PID[@]}"; do kill -9 "${PID[$id]}" 2>/dev/null; done
    wait 2>/dev/null
    if grep -l -E "AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error" "$TMP"/*.log 2>/dev/null; then
        bad "no sanitizer reports in the node logs"
        KEEP_TMP=1
    fi
    [ "$FAIL" -eq 0 ] || KEEP_TMP=1
    if [ -n "${KEEP_TMP:-}" ]; then echo "kept $TMP (node logs)"; else rm -rf "$TMP"; fi
}

# Stops every node (cleanly: sanitizer builds report at exit), counts a sanitizer report as
# a failure, then prints the last line the test command reads.
bb_finish() {
    trap - EXIT
    bb_cleanup
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
}

# ---- sharded clusters (craftkv_shard*.sh) ----
# CRAFT.SHARD changes answer once their slots moved (up to 60 s), so their client waits longer.
shard_cli() { local p; p=$(CPORT "$1"); shift; timeout 70 redis-cli -p "$p" "$@" 2>&1; }
# CRAFT.SHARD INFO of node $1, and field $3 of its line for group $2.
shard_info() { cli "$1" craft.shard info | tr -d '\r'; }
group_field() { # node gid field
    shard_info "$1" | grep "^group:$2," | tr ',' '\n' | sed -n "s/^$3://p"
}
# Waits until node $1 reports configuration $2 applied and settled by the groups it hosts.
wait_settled() { # node num
    local i info hosted
    for i in $(seq 1 150); do
        info=$(shard_info "$1")
        hosted=$(echo "$info" | sed -n 's/^groups_hosted:\([0-9]*\)$/\1/p')
        if echo "$info" | grep -q "^configuration:$2$" && [ "${hosted:-0}" -gt 0 ] &&
            [ "$(echo "$info" | grep -c "applied_configuration:$2,")" = "$hosted" ] &&
            ! echo "$info" | grep -qE "(pulling|giving|notifying):[1-9]"; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# redis-cli --cluster check through node $1 (a few tries: leaderships may still be moving)
# and redis-benchmark --cluster through node $2: their checks.
check_cluster_tools() { # check-node bench-node
    local chk bc
    for _ in $(seq 1 10); do
        chk=$(timeout 30 redis-cli --cluster check "$(CADDR "$1")" 2>&1 | sed 's/\x1b\[[0-9;]*m//g')
        echo "$chk" | grep -qF "[OK] All nodes agree" && break
        sleep 1
    done
    check_has "redis-cli --cluster check: the nodes agree" "[OK] All nodes agree about slots configuration." "$chk"
    check_has "redis-cli --cluster check: every slot covered" "[OK] All 16384 slots covered." "$chk"
    bc=$(timeout 60 redis-benchmark --cluster -p "$(CPORT "$2")" -t set,get -n 20000 -r 20000 -c 8 -P 4 -q 2>&1 |
        tr '\r' '\n' | grep -v "rps=")
    check_has "redis-benchmark --cluster runs SET" "SET:" "$bc"
    check_has "redis-benchmark --cluster runs GET" "GET:" "$bc"
    check "redis-benchmark --cluster sees no error" 0 "$(echo "$bc" | grep -ci error)"
}

# Waits (15 s at most) until node $1's CLUSTER INFO says cluster_state:ok; the last answer
# is in $CLUSTER_INFO either way.
wait_cluster_ok() {
    for _ in $(seq 1 30); do
        CLUSTER_INFO=$(cli "$1" cluster info | tr -d '\r')
        echo "$CLUSTER_INFO" | grep -q '^cluster_state:ok$' && return 0
        sleep 0.5
    done
    return 1
}

# Runs CRAFT.SHARD $3... through node $2 while process $1 is killed (kill -9) 0.2 s in and
# restarted 1 s later (start $1), waits for the answer and shows it: it may be OK, or
# TRYAGAIN or a refusal if the controller's leader was the process killed (the retry on the
# next leader finds the change made): the outcome is what the callers check.
shard_change_across_kill() { # victim node args...
    local victim=$1 node=$2
    shift 2
    (shard_cli "$node" craft.shard "$@" >"$TMP/change.out") &
    local changer=$!
    sleep 0.2
    kill -9 "${PID[$victim]}"
    wait "${PID[$victim]}" 2>/dev/null
    unset "PID[$victim]"
    sleep 1
    start "$victim"
    wait "$changer"
    echo "     ($* answered: $(cat "$TMP/change.out"))"
}

# Runs the command after SECONDS every 0.2 s until it succeeds (0), at most SECONDS (1).
wait_for() { # seconds command...
    local n=$(($1 * 5))
    shift
    for _ in $(seq 1 "$n"); do "$@" && return 0; sleep 0.2; done
    return 1
}
