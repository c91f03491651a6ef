#!/usr/bin/env bash
# Black-box linearizability test of a sharded craftkv: plain RESP clients (craftkv-check)
# run random GET/SET/APPEND through all three nodes of a cluster of three shard groups
# while a seeded random schedule moves slots between the groups (JOIN, LEAVE, MOVE of the
# ranges that hold the test's keys), kills (SIGKILL) and pauses (SIGSTOP) processes,
# transfers leadership and takes snapshots; then the history must be linearizable: every
# write took effect once, in its own time, whichever group held its key. Hand-overs are
# limited to 12 KiB entries and 300 keys of 200 bytes are preloaded, so slots move in parts
# through the faults; every preloaded key must read back at the end.
#
# Usage: tests/blackbox/craftkv_shard_linear.sh path/to/craftkv [path/to/craftkv-check]
# Environment: SEED (the schedule and the clients' choices; random when unset, printed),
# SECONDS_RUN (default 8). Prints "N passed, M failed" last.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
CHECK=${2:-$(dirname "$1")/craftkv-check}
bb_init shard_linear 22100 80 3 "$1"
SEED=${SEED:-$(( (RANDOM << 15) | RANDOM ))}
RUN=${SECONDS_RUN:-8}
RANDOM=$SEED
echo "seed $SEED (rerun: SEED=$SEED $0 $*)"
[ -x "$CHECK" ] || { bad "craftkv-check is built" "$CHECK"; bb_finish; exit 1; }

start() { # id [first]
    # Hand-overs of at most 12 KiB: the preloaded keys below move in parts.
    if [ "${2:-}" = first ]; then
        "$BIN" --id "$1" --data-dir "$TMP/n$1" --initial-cluster "$CLUSTER" --timeout-ms 3000 \
            --snapshot-entries 2000 --trailing-entries 500 --shard-groups 3 \
            --shard-groups-initial 1 --shard-handover-bytes 12288 2>>"$TMP/n$1.log" &
    else
        "$BIN" --id "$1" --data-dir "$TMP/n$1" --shard-handover-bytes 12288 \
            2>>"$TMP/n$1.log" &
    fi
    PID[$1]=$!
}
kill9() { kill -9 "${PID[$1]}" 2>/dev/null; wait "${PID[$1]}" 2>/dev/null; }
# The groups that own slots now (as node $1 sees them), and those that do not.
groups_in() { cli "$1" craft.shard info | tr -d '\r' | sed -n 's/^group:\([0-9]*\),owned:[1-9].*/\1/p'; }
groups_out() { cli "$1" craft.shard info | tr -d '\r' | sed -n 's/^group:\([0-9]*\),owned:0,.*/\1/p'; }
one_of() { local a=($@); [ ${#a[@]} -gt 0 ] && echo "${a[RANDOM % ${#a[@]}]}"; }
pick() { echo $(( RANDOM % 3 + 1 )); }
nap() { sleep "$(( $1 + RANDOM % ($2 - $1 + 1) ))e-3"; } # min_ms max_ms
cluster_ok() {
    for _ in $(seq 1 150); do
        cli "$1" cluster info | tr -d '\r' | grep -q '^cluster_state:ok$' && return 0
        sleep 0.2
    done
    return 1
}

for i in 1 2 3; do start $i first; done
L=$(wait_leader)
[ -n "$L" ] && ok "a leader is elected (node $L)" || bad "a leader is elected"
cluster_ok 1 && ok "the first configuration is in force" || bad "the first configuration"
# 300 keys of 200 bytes beside the clients' keys: about 70 KB, so that every hand-over of
# the schedule goes in several entries (parts) while processes are killed and paused.
PRELOAD_VAL=$(printf 'p%.0s' $(seq 1 200))
for k in $(seq 1 300); do printf 'SET pre:%d %s\r\n' "$k" "$PRELOAD_VAL"; done |
    timeout 60 redis-cli -p "$(CPORT 1)" >"$TMP/preload.out" 2>&1
check "300 keys preloaded" 300 "$(grep -c '^OK$' "$TMP/preload.out")"

"$CHECK" --nodes "$(CADDR 1),$(CADDR 2),$(CADDR 3)" --clients 8 --keys 6 --seconds "$RUN" \
    --seed "$SEED" --op-timeout-ms 10000 --min-ok 100 >"$TMP/check.out" 2>&1 &
CHECK_PID=$!
CLIENTS+=("$CHECK_PID")

# The schedule: until the clients stop, one step at a time: a change of the shard
# configuration (most often: the point of this test), or a process fault (every process up
# again after each). A change is answered once its slots moved, or with an error that
# leaves the configuration as it was (a group already in, the last group leaving, ...).
steps=""
while kill -0 "$CHECK_PID" 2>/dev/null && [ $SECONDS -lt $((RUN + 60)) ]; do
    nap 200 800
    kill -0 "$CHECK_PID" 2>/dev/null || break
    n=$(pick)
    ins=$(groups_in "$n"); outs=$(groups_out "$n")
    case $(( RANDOM % 10 )) in
    0 | 1) g=$(one_of $outs); [ -n "$g" ] || g=$(one_of $ins)
       steps+=" join:$g"; cli "$n" craft.shard join "$g" >/dev/null ;;
    2 | 3) g=$(one_of $ins); [ "$(echo $ins | wc -w)" -gt 1 ] || g=$(one_of $outs)
       [ -n "$g" ] && { steps+=" leave:$g"; cli "$n" craft.shard leave "$g" >/dev/null; } ;;
    4 | 5) a=$(( RANDOM % 16384 )); b=$(( a + RANDOM % 4000 )); [ $b -gt 16383 ] && b=16383
       g=$(one_of $ins); steps+=" move:$a-$b:$g"
       cli "$n" craft.shard move "$a" "$b" "$g" >/dev/null ;;
    6) steps+=" kill:$n"; kill9 "$n"; nap 200 1500; start "$n" ;;
    7) steps+=" pause:$n"; kill -STOP "${PID[$n]}"; nap 300 2000; kill -CONT "${PID[$n]}" ;;
    8) steps+=" transfer-to:$n"; cli "$n" raft.transfer "$n" >/dev/null ;;
    9) steps+=" snapshot:$n"; cli "$n" raft.snapshot >/dev/null ;;
    esac
done
echo "steps:$steps"
wait "$CHECK_PID"
rc=$?
CLIENTS=()
head -c 20000 "$TMP/check.out"
echo
case $rc in
0) ok "the history is linearizable" ;;
1) bad "the history is linearizable" "see above (seed $SEED)" ;;
*) bad "the check decided" "craftkv-check exit $rc (seed $SEED)" ;;
esac
grep -q "verdict=" "$TMP/check.out" && ok "the check ran to a verdict" || bad "the check ran to a verdict"
for i in 1 2 3; do kill -0 "${PID[$i]}" 2>/dev/null && ok "node $i still running" || bad "node $i still running"; done
# Every group settles in the latest configuration once the steps stop.
settled=0
for _ in $(seq 1 150); do
    info=$(cli 1 craft.shard info | tr -d '\r')
    num=$(echo "$info" | sed -n 's/^configuration://p')
    if [ -n "$num" ] && [ "$(echo "$info" | grep -c "applied_configuration:$num,")" = 3 ] &&
        ! echo "$info" | grep -qE "(pulling|giving|notifying):[1-9]"; then
        settled=1
        break
    fi
    sleep 0.2
done
[ $settled = 1 ] && ok "every group settles in configuration $num" ||
    bad "every group settles" "$(echo "$info" | tr '\n' ' ')"
missing=0
for k in $(seq 1 300); do printf 'GET pre:%d\r\n' "$k"; done |
    timeout 60 redis-cli -p "$(CPORT 2)" >"$TMP/preload.get" 2>&1
check "every preloaded key reads back after the moves" 300 \
    "$(grep -c "^$PRELOAD_VAL\$" "$TMP/preload.get")"
handovers=$(for i in 1 2 3; do cli "$i" info cluster; done | tr -d '\r' | awk -F: '
    $1 == "craft_handover_entries" { n += $2 } $1 == "craft_handover_bytes" { b += $2 }
    END { print n + 0, b + 0 }')
echo "     (hand-over entries and bytes, every process: $handovers)"
bb_finish
