#!/usr/bin/env bash
# Black-box fault test of craftkv: exactly-once writes and agreement while nodes are killed
# (SIGKILL), paused (SIGSTOP) and restarted under a pipelined INCR load from redis-cli
# clients connected to every node. Usage: tests/blackbox/craftkv_faults.sh path/to/craftkv
#
# What must hold, whatever the timing:
#   - every node ends with the same counter;
#   - acknowledged <= counter <= acknowledged + errors: an acknowledged INCR applied once,
#     an INCR whose client got an error (its node died, no quorum in time) at most once;
#   - each client sees its own INCR replies strictly increase (its commands are sequential);
#   - the cluster serves reads and writes afterwards;
#   - a leader cut off from its followers answers TRYAGAIN at the command timeout.
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
bb_init faults 24000 800 3 "$@"

start() { # id [full]
    if [ "${2:-}" = full ]; then
        "$BIN" --id "$1" --data-dir "$TMP/n$1" --initial-cluster "$CLUSTER" --timeout-ms 3000 \
            2>>"$TMP/n$1.log" &
    else
        "$BIN" --id "$1" --data-dir "$TMP/n$1" 2>>"$TMP/n$1.log" &
    fi
    PID[$1]=$!
}
for i in 1 2 3; do start $i full; done
L=$(wait_leader)
[ -n "$L" ] && ok "a leader is elected (node $L)" || bad "a leader is elected"

# A client: rounds of 8 pipelined INCRs through one node (common.bash, bb_incr_client).
client() { bb_incr_client "$1" 8 bash "$BB_DIR/resp_pipe.bash" 127.0.0.1 "$(CPORT "$2")"; }

for c in 1 2 3 4 5 6; do
    client "$c" $(( (c % 3) + 1 )) &
    CLIENTS+=($!)
done

sleep 2
# 1. kill -9 the leader, restart it.
L=$(leader); if [ -n "$L" ]; then kill -9 "${PID[$L]}"; wait "${PID[$L]}" 2>/dev/null; sleep 2; start "$L"; fi
sleep 2
# 2. pause the leader (a zombie leader), resume it after the others elect a new one.
L=$(leader); if [ -n "$L" ]; then kill -STOP "${PID[$L]}"; sleep 3; kill -CONT "${PID[$L]}"; fi
sleep 2
# 3. kill -9 a follower and restart it.
L=$(leader); F=$(( ${L:-1} % 3 + 1 ))
kill -9 "${PID[$F]}"; wait "${PID[$F]}" 2>/dev/null; sleep 1.5; start "$F"
sleep 2
# 4. kill two nodes at once (no quorum), restart both.
kill -9 "${PID[1]}" "${PID[2]}"; wait "${PID[1]}" "${PID[2]}" 2>/dev/null; sleep 1; start 1; start 2
sleep 3
touch "$TMP/stop"
for c in "${CLIENTS[@]}"; do wait "$c"; done
CLIENTS=()

acked=0; errors=0; order=0
for c in 1 2 3 4 5 6; do
    read -r a e o <"$TMP/client.$c" || { bad "client $c reported"; continue; }
    acked=$((acked + a)); errors=$((errors + e)); order=$((order + o))
done
echo "acknowledged $acked, in doubt $errors"
[ "$acked" -gt 0 ] && ok "writes were acknowledged during the faults ($acked)" || bad "writes were acknowledged"
[ "$order" -eq 0 ] && ok "each client's replies increase" || bad "each client's replies increase" "$order out of order"

L=$(wait_leader)
[ -n "$L" ] && ok "a leader after the faults (node $L)" || bad "a leader after the faults"
v1=$(cli 1 get c); v2=$(cli 2 get c); v3=$(cli 3 get c)
v1=${v1:-none}
if [ "$v1" = "$v2" ] && [ "$v2" = "$v3" ]; then ok "every node has the same counter ($v1)"; else bad "every node has the same counter" "$v1 $v2 $v3"; fi
if [[ "$v1" =~ ^[0-9]+$ ]] && [ "$v1" -ge "$acked" ] && [ "$v1" -le $((acked + errors)) ]; then
    ok "exactly once: $acked <= $v1 <= $((acked + errors))"
else
    bad "exactly once" "counter $v1, acknowledged $acked, in doubt $errors"
fi
r=$(cli 2 incr c)
if [[ "$v1" =~ ^[0-9]+$ ]] && [ "$r" = "$((v1 + 1))" ]; then ok "writes after the faults"; else bad "writes after the faults" "$r"; fi

# 5. A leader cut off from both followers (paused) holds proposals whose outcome it cannot
#    learn: its clients get TRYAGAIN at the command timeout (3000 ms here), not a reply that
#    never comes. The 20 s bound only tells a hang from an answer.
L=$(wait_leader)
if [ -n "$L" ]; then
    for i in 1 2 3; do [ "$i" = "$L" ] || kill -STOP "${PID[$i]}"; done
    out=$(printf 'SET cut 1\r\nSET cut 2\r\nINCR c\r\n' | timeout 20 redis-cli -p "$(CPORT "$L")" 2>&1)
    n=$(grep -c '^TRYAGAIN' <<<"$out")
    [ "$n" = 3 ] && ok "a cut-off leader answers TRYAGAIN at the deadline" ||
        bad "a cut-off leader answers TRYAGAIN at the deadline" "$(tr '\n' ' ' <<<"$out")"
    for i in 1 2 3; do [ "$i" = "$L" ] || kill -CONT "${PID[$i]}"; done
    L=$(wait_leader)
    r=$(cli "${L:-1}" set cut 3)
    [ "$r" = OK ] && ok "writes after the cut healed" || bad "writes after the cut healed" "$r"
fi
for i in 1 2 3; do kill -0 "${PID[$i]}" 2>/dev/null || bad "node $i still running"; done
bb_finish
