#!/usr/bin/env bash
# Black-box linearizability test of craftkv: plain RESP clients (craftkv-check) run random
# GET/SET/APPEND through all three nodes while a seeded random schedule kills (SIGKILL),
# pauses (SIGSTOP) and restarts nodes, removes and re-adds a follower, transfers
# leadership and takes snapshots (small
# snapshot thresholds, so restarts and lagging nodes go through snapshots); then the
# history, final reads through every node included, must be linearizable.
#
# Usage: tests/blackbox/craftkv_linear.sh path/to/craftkv [path/to/craftkv-check]
# Environment: SEED (the fault schedule and the clients' choices; random when unset,
# printed), SECONDS_RUN (default 15), READ_MODE (linearizable or lease; by default odd
# seeds use lease reads, which must stay linearizable across paused leaders). Prints
# "N passed, M failed" last.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
CHECK=${2:-$(dirname "$1")/craftkv-check}
bb_init linear 26000 600 3 "$1"
SEED=${SEED:-$(( (RANDOM << 15) | RANDOM ))}
RUN=${SECONDS_RUN:-15}
modes=(linearizable lease)
MODE=${READ_MODE:-${modes[SEED % 2]}}
RANDOM=$SEED
echo "seed $SEED, $MODE reads (rerun: SEED=$SEED $0 $*)"
[ -x "$CHECK" ] || { bad "craftkv-check is built" "$CHECK"; bb_finish; exit 1; }

start() { # id [full]
    if [ "${2:-}" = full ]; then
        "$BIN" --id "$1" --data-dir "$TMP/n$1" --initial-cluster "$CLUSTER" --timeout-ms 3000 \
            --snapshot-entries 2000 --trailing-entries 500 2>>"$TMP/n$1.log" &
    else
        "$BIN" --id "$1" --data-dir "$TMP/n$1" 2>>"$TMP/n$1.log" &
    fi
    PID[$1]=$!
}
kill9() { kill -9 "${PID[$1]}" 2>/dev/null; wait "${PID[$1]}" 2>/dev/null; }
pick() { echo $(( RANDOM % 3 + 1 )); }
nap() { sleep "$(( $1 + RANDOM % ($2 - $1 + 1) ))e-3"; } # min_ms max_ms

for i in 1 2 3; do start $i full; done
L=$(wait_leader)
[ -n "$L" ] && ok "a leader is elected (node $L)" || bad "a leader is elected"

"$CHECK" --nodes "$(CADDR 1),$(CADDR 2),$(CADDR 3)" --clients 8 --keys 6 --seconds "$RUN" \
    --seed "$SEED" --read-mode "$MODE" --op-timeout-ms 10000 --min-ok 200 >"$TMP/check.out" 2>&1 &
CHECK_PID=$!
CLIENTS+=("$CHECK_PID")

# The fault schedule: until the clients stop, one fault at a time, every node up again
# (and resumed) after each.
faults=""
while kill -0 "$CHECK_PID" 2>/dev/null && [ $SECONDS -lt $((RUN + 60)) ]; do
    nap 300 1500
    kill -0 "$CHECK_PID" 2>/dev/null || break
    L=$(leader)
    case $(( RANDOM % 8 )) in
    0) n=${L:-$(pick)}; faults+=" kill-leader:$n"; kill9 "$n"; nap 200 2000; start "$n" ;;
    1) n=$(pick); faults+=" kill:$n"; kill9 "$n"; nap 200 2000; start "$n" ;;
    2) n=${L:-$(pick)}; faults+=" pause-leader:$n"; kill -STOP "${PID[$n]}"; nap 1000 4000
       kill -CONT "${PID[$n]}" ;;
    3) n=$(pick); faults+=" pause:$n"; kill -STOP "${PID[$n]}"; nap 300 3000
       kill -CONT "${PID[$n]}" ;;
    4) a=$(pick); b=$(( a % 3 + 1 )); faults+=" kill-two:$a,$b"; kill9 "$a"; kill9 "$b"
       nap 200 1500; start "$a"; start "$b" ;;
    5) n=$(pick); faults+=" transfer-to:$n"; cli "$n" raft.transfer "$n" >/dev/null ;;
    6) n=$(pick); faults+=" snapshot:$n"; cli "$n" raft.snapshot >/dev/null ;;
    7) # a follower leaves the configuration (it keeps running: clients still reach it)
       # and comes back with its log; both commands are retried until they answer OK
       n=$(pick); [ "$n" = "${L:-0}" ] && n=$(( n % 3 + 1 ))
       faults+=" remove-readd:$n"
       m=$(( n % 3 + 1 ))
       for _ in 1 2 3 4 5; do [ "$(cli "$m" raft.removenode "$n")" = OK ] && break; sleep 0.5; done
       nap 300 3000
       for _ in $(seq 1 20); do
           [ "$(cli "$m" raft.addnode "$n" "$(PADDR "$n")" "$(CADDR "$n")")" = OK ] && break
           sleep 0.5
       done ;;
    esac
done
echo "faults:$faults"
wait "$CHECK_PID"
rc=$?
CLIENTS=()
cat "$TMP/check.out" | head -c 20000
echo
case $rc in
0) ok "the history is linearizable" ;;
1) bad "the history is linearizable" "see above (seed $SEED)" ;;
*) bad "the check decided" "craftkv-check exit $rc (seed $SEED)" ;;
esac
grep -q "verdict=" "$TMP/check.out" && ok "the check ran to a verdict" || bad "the check ran to a verdict"
for i in 1 2 3; do kill -0 "${PID[$i]}" 2>/dev/null && ok "node $i still running" || bad "node $i still running"; done
# Every node a voter again (a re-added node joins as a learner; auto-promotion follows).
voters=0
for _ in $(seq 1 50); do
    L=$(wait_leader)
    voters=$(cli "${L:-1}" raft.info | tr -d '\r' | grep -c '^member[0-9]*:.*role=voter')
    [ "$voters" = 3 ] && break
    sleep 0.2
done
check "every node is a voter again" 3 "$voters"
bb_finish
