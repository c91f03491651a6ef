#!/usr/bin/env bash
# Black-box test of a sharded craftkv (--shard-groups): three processes hosting the shard
# controller and three shard groups. The cluster starts with one group owning every slot
# and grows to three, moves a range, loses a group and takes it back, while writers run:
# keys written with acknowledged SETs must all be there afterwards with their values, an
# INCR counter must count every acknowledged increment once (exactly-once across
# migrations), and redis-benchmark must see no error. A process killed in the middle of a
# migration comes back and the migration finishes. Also: CROSSSLOT, the admin commands'
# refusals, DBSIZE/SCAN/FLUSHALL, CLUSTER SLOTS/NODES/INFO, redis-cli -c, redis-cli --cluster
# check, redis-benchmark --cluster and redis-py's RedisCluster (also through two live
# migrations of a range).
# Usage: tests/blackbox/craftkv_shard.sh path/to/craftkv
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
bb_init shard 21000 100 3 "$@"

start() { # id [first]
    if [ "${2:-}" = first ]; then
        "$BIN" --id "$1" --data-dir "$TMP/n$1" --initial-cluster "$CLUSTER" \
            --shard-groups 3 --shard-groups-initial 1 2>>"$TMP/n$1.log" &
    else
        "$BIN" --id "$1" --data-dir "$TMP/n$1" 2>>"$TMP/n$1.log" &
    fi
    PID[$1]=$!
}

for i in 1 2 3; do start "$i" first; done
L=$(wait_leader)
[ -n "$L" ] && ok "a leader is elected (node $L)" || bad "a leader is elected"
wait_settled 1 1 && ok "configuration 1: group 1 owns every slot" ||
    bad "configuration 1" "$(shard_info 1)"
check "every process hosts the three groups" 3 "$(shard_info 1 | sed -n 's/^groups_hosted://p')"
check "group 1 owns 16384 slots" 16384 "$(group_field 1 1 owned)"
check "group 2 owns none yet" 0 "$(group_field 1 2 owned)"

# ---- commands and refusals ----
check "SET through any node" OK "$(cli 2 set greeting hello)"
check "GET through another" hello "$(cli 3 get greeting)"
check_has "MSET across slots: CROSSSLOT" CROSSSLOT "$(cli 1 mset a 1 b 2)"
check "MSET within one hash tag" OK "$(cli 1 mset '{t}a' 1 '{t}b' 2)"
check "MGET within one hash tag" "1 2" "$(cli 2 mget '{t}a' '{t}b' | tr '\n' ' ' | sed 's/ $//')"
# Commands without keys answer for the groups a node leads, as a Redis Cluster node for the
# slots it masters: the nodes' DBSIZEs add up to the keys written so far.
# (Leadership moves while the processes balance it: a group may be counted on two nodes or
# none in one pass, so a few passes.)
dbsize_sum() { local t=0 i; for i in 1 2 3; do t=$((t + $(cli "$i" dbsize))); done; echo $t; }
for _ in $(seq 1 20); do sum=$(dbsize_sum); [ "$sum" = 3 ] && break; sleep 0.3; done
check "DBSIZE over the nodes adds up" 3 "$sum"
check_has "JOIN of a group the cluster does not host" "not hosted" "$(cli 1 craft.shard join 9)"
# Collections move with their slots: a hash, a list, a set and a sorted set under one hash
# tag, written now and read back after every migration below and a full restart.
rc_cli() { timeout 20 redis-cli -c -p "$(CPORT "$1")" "${@:2}" 2>&1; }
fields=()
for i in $(seq 1 300); do fields+=("f$i" "v$i"); done
check "HSET of 300 fields" 300 "$(rc_cli 1 hset '{c}h' "${fields[@]}")"
check "RPUSH" 4 "$(rc_cli 2 rpush '{c}l' a b c d)"
check "SADD" 3 "$(rc_cli 3 sadd '{c}s' x y z)"
check "ZADD" 2 "$(rc_cli 1 zadd '{c}z' 1.5 m 2 n)"
check_has "RENAME across slots: CROSSSLOT" CROSSSLOT "$(cli 1 rename '{c}l' other)"
collections() { # node: the four collections' state on one line
    echo "$(rc_cli "$1" hlen '{c}h') $(rc_cli "$1" hget '{c}h' f300)" \
        "$(rc_cli "$1" lrange '{c}l' 0 -1 | paste -sd,) $(rc_cli "$1" scard '{c}s')" \
        "$(rc_cli "$1" zrange '{c}z' 0 -1 withscores | paste -sd,)"
}
COLLS="300 v300 a,b,c,d 3 m,1.5,n,2"
check_has "LEAVE of the last group is refused" "ERR" "$(cli 2 craft.shard leave 1)"
check_has "MOVE to an unknown group is refused" "ERR" "$(cli 3 craft.shard move 0 10 2)"
check_has "MOVE of a bad range" "bad slot range" "$(cli 1 craft.shard move 10 5 1)"
check_has "CRAFT.SHARD without a known subcommand" "usage" "$(cli 1 craft.shard bogus)"
check_has "refusals change nothing" "configuration:1" "$(shard_info 2)"
check_has "RAFT.ADDNODE is refused on a sharded cluster" "not built yet" \
    "$(cli 1 raft.addnode 9 127.0.0.1:1 127.0.0.1:2)"

# ---- writers: acknowledged SETs, exactly-once INCRs, redis-benchmark ----
# Writes k:<n> = <n> in pipelined batches of 50 through node $1, recording each
# acknowledged key in $TMP/acked.$1, until $TMP/stop exists.
set_writer() {
    local node=$1 n=0 batch line k cmds
    while [ ! -e "$TMP/stop" ]; do
        cmds=""
        for k in $(seq $((n + 1)) $((n + 50))); do cmds+="SET k$node:$k $k"$'\n'; done
        k=$n
        while IFS= read -r line; do
            k=$((k + 1))
            [ "$line" = OK ] && echo "$k" >>"$TMP/acked.$node"
        done < <(printf '%s' "$cmds" | timeout 10 redis-cli -p "$(CPORT "$node")" 2>/dev/null)
        n=$((n + 50))
    done
}
rm -f "$TMP/stop"
for i in 1 3; do set_writer "$i" & CLIENTS+=($!); done
bb_incr_client incr 10 bash "$BB_DIR/resp_pipe.bash" 127.0.0.1 "$(CPORT 2)" & CLIENTS+=($!)
redis-benchmark -p "$(CPORT 1)" -t set,get -n 30000 -r 20000 -c 8 -q >"$TMP/bench1" 2>&1 &
BENCH1=$!
redis-benchmark -p "$(CPORT 2)" -t set -n 20000 -r 20000 -c 4 -P 8 -q >"$TMP/bench2" 2>&1 &
BENCH2=$!
sleep 1

# ---- growing: one group to three, under load ----
check "JOIN 2 3 answers once the slots moved" OK "$(shard_cli 3 craft.shard join 2 3)"
wait_settled 2 2 && ok "configuration 2 settled on node 2" || bad "configuration 2 settled"
g1=$(group_field 1 1 owned); g2=$(group_field 1 2 owned); g3=$(group_field 1 3 owned)
[ "$((g1 + g2 + g3))" = 16384 ] && [ "$g1" -ge 5461 ] && [ "$g2" -ge 5461 ] && [ "$g3" -ge 5461 ] &&
    ok "three groups share the slots evenly ($g1 $g2 $g3)" || bad "even shares" "$g1 $g2 $g3"
check "MOVE 0 999 3" OK "$(shard_cli 1 craft.shard move 0 999 3)"

# A process killed in the middle of a migration: the others finish it, it catches up.
shard_change_across_kill 3 2 leave 1
wait_settled 3 4 && ok "the restarted process catches up with configuration 4" ||
    bad "restarted process settles" "$(shard_info 3)"
check "group 1 owns nothing after LEAVE" 0 "$(group_field 3 1 owned)"
check "JOIN 1 back" OK "$(shard_cli 3 craft.shard join 1)"

# ---- after the migrations: nothing lost, nothing twice ----
wait "$BENCH1"; wait "$BENCH2"
touch "$TMP/stop"
for c in "${CLIENTS[@]}"; do wait "$c" 2>/dev/null; done
CLIENTS=()
errs=$(cat "$TMP/bench1" "$TMP/bench2" | tr '\r' '\n' | grep -ci "error")
check "redis-benchmark saw no error while slots moved" 0 "$errs"
lost=0; total=0
for i in 1 3; do
    [ -s "$TMP/acked.$i" ] || continue
    # Read every acknowledged key back through node 2, pipelined.
    keys=$(awk -v n="$i" '{print "GET k" n ":" $1}' "$TMP/acked.$i")
    got=$(printf '%s\n' "$keys" | timeout 30 redis-cli -p "$(CPORT 2)" 2>&1)
    want=$(cat "$TMP/acked.$i")
    total=$((total + $(echo "$want" | wc -l)))
    lost=$((lost + $(diff <(echo "$want") <(echo "$got") | grep -c '^<')))
done
[ "$total" -gt 500 ] && ok "writers got $total acknowledged SETs through the migrations" ||
    bad "enough acknowledged SETs" "$total"
check "every acknowledged SET is there with its value" 0 "$lost"
read -r acked doubt order <"$TMP/client.incr"
c=$(cli 1 get c)
[ "$c" -ge "$acked" ] && [ "$c" -le $((acked + doubt)) ] &&
    ok "INCR counted once each: $c (acked $acked, in doubt $doubt)" ||
    bad "INCR exactly once" "c=$c acked=$acked in_doubt=$doubt"
check "INCR replies in order" 0 "$order"

# ---- Redis Cluster's view ----
# (The processes may still be handing leaderships back to the restarted one, in 5 s steps:
# during a transfer a group has no leader for a moment, and nodes may name different
# masters. A few tries.)
wait_cluster_ok 1
info=$CLUSTER_INFO
check_has "CLUSTER INFO: state ok" "cluster_state:ok" "$info"
check_has "CLUSTER INFO: three shards" "cluster_size:3" "$info"
check_has "CLUSTER INFO: no migration left" "craft_migrations_in_progress:0" "$info"
check_has "INFO cluster: the configuration" "craft_shard_configuration:5" "$(cli 2 info cluster | tr -d '\r')"
ranges=$(cli 2 cluster nodes | awk '{ for (i = 9; i <= NF; i++) n++ } END { print n + 0 }')
[ "$ranges" -ge 3 ] && ok "CLUSTER NODES lists the groups' slot ranges ($ranges)" ||
    bad "CLUSTER NODES ranges" "$(cli 2 cluster nodes | tr '\n' ' ')"
first=$(cli 2 cluster slots | head -2 | tr '\n' ' ')
check "CLUSTER SLOTS starts at slot 0" "0" "$(echo "$first" | cut -d' ' -f1)"
check_cluster_tools 1 2
check "redis-cli -c reads a key written before the migrations" hello \
    "$(timeout 10 redis-cli -c -p "$(CPORT 3)" get greeting)"
check "collections written before the migrations read back whole" "$COLLS" "$(collections 3)"
if /usr/bin/python3 -c 'import redis.cluster' 2>/dev/null; then
    out=$(timeout 30 /usr/bin/python3 - "$(CPORT 1)" <<'EOF' 2>&1
import sys
from redis.cluster import RedisCluster
rc = RedisCluster(host="127.0.0.1", port=int(sys.argv[1]))
for i in range(50):
    rc.set(f"py:{i}", i)
print(sum(int(rc.get(f"py:{i}")) for i in range(50)))
print(len(set(rc.scan_iter(match="py:*"))))
EOF
)
    check "redis-py RedisCluster writes and reads 50 keys, SCAN finds them" "1225 50" \
        "$(echo $out)"
    # Through live migrations: a RedisCluster client writes and reads back while a range
    # moves to another group and back; it may follow MOVED (leaders move too), never
    # sees an error, and every write it made reads back.
    rm -f "$TMP/py.stop"
    timeout 120 /usr/bin/python3 - "$(CPORT 2)" "$TMP/py.stop" >"$TMP/py.out" 2>&1 <<'EOF' &
import os, sys
from redis.cluster import RedisCluster
rc = RedisCluster(host="127.0.0.1", port=int(sys.argv[1]))
n = errors = 0
while not os.path.exists(sys.argv[2]) or n < 200:
    try:
        rc.set(f"live:{n}", n)
        n += 1
        if rc.get(f"live:{n // 2}") is None:
            errors += 1
    except Exception as e:
        errors += 1
        print("error:", e, file=sys.stderr)
wrong = sum(1 for i in range(n) if rc.get(f"live:{i}") != str(i).encode())
print(n >= 200, errors, wrong)
EOF
    PYC=$!
    check "MOVE 5000 6000 2 under a RedisCluster client" OK "$(shard_cli 1 craft.shard move 5000 6000 2)"
    check "MOVE 5000 6000 1 back" OK "$(shard_cli 3 craft.shard move 5000 6000 1)"
    touch "$TMP/py.stop"
    wait "$PYC"
    check "redis-py RedisCluster through two migrations: no error, every write reads back" \
        "True 0 0" "$(tail -1 "$TMP/py.out")"
else
    echo "skip redis-py RedisCluster (python3-redis not installed)"
fi

# ---- a restart of every process: every group recovers from the shared log ----
conf_before=$(shard_info 1 | sed -n 's/^configuration:\([0-9]*\)$/\1/p')
for i in 1 2 3; do stop "$i"; done
for i in 1 2 3; do start "$i"; done
L=$(wait_leader)
[ -n "$L" ] && ok "a leader after a full restart" || bad "a leader after a full restart"
# Until a process has replayed the controller's log it knows no configuration and answers
# CLUSTERDOWN, as a Redis Cluster node does before its state is ok.
for _ in $(seq 1 100); do
    cli 2 cluster info | tr -d '\r' | grep -q '^cluster_state:ok$' && break
    sleep 0.2
done
check_has "CLUSTER INFO: ok again after the restart" "cluster_state:ok" "$(cli 2 cluster info | tr -d '\r')"
check "data survives a full restart" hello "$(cli 2 get greeting)"
check "collections survive it too" "$COLLS" "$(collections 1)"
check_has "the configuration survives it ($conf_before)" "configuration:$conf_before" \
    "$(shard_info 1)"
for _ in $(seq 1 20); do
    for i in 1 2 3; do cli "$i" flushall >/dev/null; done
    sum=$(dbsize_sum); [ "$sum" = 0 ] && break; sleep 0.3
done
check "FLUSHALL on every node empties every group" 0 "$sum"

bb_finish
