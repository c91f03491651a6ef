#!/usr/bin/env bash
# Black-box test of shard groups placed on subsets of processes (--shard-replicas): six
# processes, three groups of three replicas each: group 1 and group 3 on nodes 1-3, group
# 2 on nodes 4-6, so slots moving between group 1 and group 2 move between processes that
# share no group (the drivers read the other group over CRAFT.SHARD EXPORT/STATE). While
# a redis-py RedisCluster client writes, the cluster grows from one group to three, moves
# a range to group 2 while one of group 2's processes is killed and restarted, and sends
# group 2's slots back while another of its processes is paused: every acknowledged write
# must read back with its value, and the keys written before the moves too. Also: a
# process answers MOVED for slots of a group it does not host, pointing at that group's
# processes; CLUSTER NODES makes a process a replica of a master of its own group;
# redis-cli --cluster check; the placement flags' refusals.
# Usage: tests/blackbox/craftkv_shard_place.sh path/to/craftkv
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
bb_init shard_place 23000 100 6 "$@"

CLUSTER=""
for i in 1 2 3 4 5 6; do CLUSTER+="${CLUSTER:+,}$i=$(PADDR $i)/$(CADDR $i)"; done
start() { # id [first]
    if [ "${2:-}" = first ]; then
        "$BIN" --id "$1" --data-dir "$TMP/n$1" --initial-cluster "$CLUSTER" --shard-groups 3 \
            --shard-groups-initial 1 --shard-replicas 3 2>>"$TMP/n$1.log" &
    else
        "$BIN" --id "$1" --data-dir "$TMP/n$1" 2>>"$TMP/n$1.log" &
    fi
    PID[$1]=$!
}

# ---- the placement flags' refusals (nothing starts) ----
# (timeout: a refusal that regressed into a start would otherwise run forever)
out=$(timeout 20 "$BIN" --id 1 --data-dir "$TMP/bad1" --initial-cluster "$CLUSTER" --shard-groups 1 2>&1)
check_has "one group of three replicas for six processes is refused" "no group" "$out"
out=$(timeout 20 "$BIN" --id 1 --data-dir "$TMP/bad2" --initial-cluster "$CLUSTER" --shard-groups 2 \
    --shard-replicas 7 2>&1)
check_has "more replicas than members is refused" "need as many members" "$out"
out=$(timeout 20 "$BIN" --id 1 --data-dir "$TMP/bad4" --initial-cluster "$CLUSTER" --shard-groups 2 \
    --shard-replicas 17 2>&1)
check_has "more replicas than allowed is refused" "bad --shard-replicas" "$out"
out=$(timeout 20 "$BIN" --id 1 --data-dir "$TMP/bad3" --initial-cluster "$CLUSTER" --shard-replicas 2 2>&1)
check_has "--shard-replicas without --shard-groups is refused" "need --shard-groups" "$out"

for i in 1 2 3 4 5 6; do start "$i" first; done
L=$(wait_leader)
[ -n "$L" ] && ok "a leader is elected (node $L)" || bad "a leader is elected"
wait_settled 1 1 && ok "configuration 1: group 1 owns every slot" ||
    bad "configuration 1" "$(shard_info 1)"
check "node 1 hosts groups 1 and 3" 2 "$(shard_info 1 | sed -n 's/^groups_hosted://p')"
check "node 5 hosts group 2 only" 1 "$(shard_info 5 | sed -n 's/^groups_hosted://p')"
check "node 5 knows group 1 is hosted elsewhere" "hosted_elsewhere" \
    "$(shard_info 5 | grep '^group:1,' | tr ',' '\n' | tail -1)"
moved=$(cli 5 set greeting hello)
check_has "a process that does not host the owner answers MOVED" "MOVED" "$moved"
target=$(echo "$moved" | awk '{print $3}')
case "$target" in
"$(CADDR 1)" | "$(CADDR 2)" | "$(CADDR 3)") ok "MOVED names a host of group 1 ($target)" ;;
*) bad "MOVED names a host of group 1" "$moved" ;;
esac
check "redis-cli -c follows it" OK "$(timeout 10 redis-cli -c -p "$(CPORT 5)" set greeting hello 2>&1)"

# Keys written before any move, through a host of group 1 (it owns every slot).
for i in $(seq 1 3000); do echo "SET pre:$i v$i"; done |
    timeout 30 redis-cli -p "$(CPORT 2)" >/dev/null 2>&1

have_py=0
/usr/bin/python3 -c 'import redis.cluster' 2>/dev/null && have_py=1
if [ $have_py = 1 ]; then
    # A cluster client writing and reading back all along; it may follow MOVED and
    # TRYAGAIN (it retries them), never sees an error, and every write it made reads back.
    rm -f "$TMP/py.stop"
    timeout 240 /usr/bin/python3 - "$(CPORT 4)" "$TMP/py.stop" >"$TMP/py.out" 2>"$TMP/py.err" <<'EOF' &
import os, sys
from redis.cluster import RedisCluster
rc = RedisCluster(host="127.0.0.1", port=int(sys.argv[1]))
n = errors = 0
while not os.path.exists(sys.argv[2]) or n < 300:
    try:
        rc.set(f"live:{n}", n)
        n += 1
        if n % 10 == 0 and rc.get(f"live:{n // 2}") is None:
            errors += 1
    except Exception as e:
        errors += 1
        print("error:", e, file=sys.stderr)
wrong = sum(1 for i in range(n) if rc.get(f"live:{i}") != str(i).encode())
pre = sum(1 for i in range(1, 3001) if rc.get(f"pre:{i}") != f"v{i}".encode())
print(n >= 300, errors, wrong, pre)
EOF
    PYC=$!
else
    echo "skip the RedisCluster writer (python3-redis not installed)"
fi
sleep 1

# ---- growing across processes ----
check "JOIN 2 3 answers once the slots moved" OK "$(shard_cli 6 craft.shard join 2 3)"
g1=$(group_field 1 1 owned); g2=$(group_field 4 2 owned); g3=$(group_field 1 3 owned)
[ "$((g1 + g2 + g3))" = 16384 ] && [ "$g1" -ge 5461 ] && [ "$g2" -ge 5461 ] && [ "$g3" -ge 5461 ] &&
    ok "three groups share the slots evenly ($g1 $g2 $g3)" || bad "even shares" "$g1 $g2 $g3"
wait_settled 4 2 && ok "group 2's processes settled configuration 2" ||
    bad "group 2 settled" "$(shard_info 4)"
[ "$(cli 4 info cluster | tr -d '\r' | sed -n 's/^craft_handover_entries://p')" -ge 1 ] ||
    [ "$(cli 5 info cluster | tr -d '\r' | sed -n 's/^craft_handover_entries://p')" -ge 1 ] ||
    [ "$(cli 6 info cluster | tr -d '\r' | sed -n 's/^craft_handover_entries://p')" -ge 1 ] &&
    ok "group 2's leader installed slots pulled from another process" ||
    bad "a remote hand-over" "$(cli 4 info cluster | tr -d '\r' | tr '\n' ' ')"

# A range into group 2 while one of its processes is killed and comes back.
shard_change_across_kill 4 1 move 0 2000 2
wait_settled 4 3 && ok "the restarted process of group 2 catches up with configuration 3" ||
    bad "restarted process settles" "$(shard_info 4)"
# (key 06S is in slot 0)
moved=$(cli 1 set 06S zero)
check_has "slot 0 is group 2's: node 1 redirects it" "MOVED 0" "$moved"
check "redis-cli -c writes it there" OK "$(timeout 10 redis-cli -c -p "$(CPORT 1)" set 06S zero 2>&1)"

# Group 2's slots go back to groups 1 and 3 while another of its processes is paused.
( shard_cli 2 craft.shard leave 2 >"$TMP/leave.out" ) &
LEAVER=$!
sleep 0.2
kill -STOP "${PID[5]}"
sleep 3
kill -CONT "${PID[5]}"
wait "$LEAVER"
echo "     (LEAVE 2 answered: $(cat "$TMP/leave.out"))"
wait_settled 1 4 && ok "configuration 4 settled on node 1" || bad "configuration 4" "$(shard_info 1)"
check "group 2 owns nothing after LEAVE" 0 "$(group_field 1 2 owned)"
wait_settled 5 4 && ok "the paused process settles configuration 4" || bad "paused settles" "$(shard_info 5)"
check "JOIN 2 back" OK "$(shard_cli 3 craft.shard join 2)"

# ---- nothing lost ----
if [ $have_py = 1 ]; then
    touch "$TMP/py.stop"
    wait "$PYC"
    check "RedisCluster through the moves: no error, every write and every earlier key reads back" \
        "True 0 0 0" "$(tail -1 "$TMP/py.out")"
    grep -q '^error:' "$TMP/py.err" && echo "     (client errors: $(grep '^error:' "$TMP/py.err" | head -3 | tr '\n' ' '))"
fi
got=$(for i in $(seq 1 3000); do echo "GET pre:$i"; done |
    timeout 60 redis-cli -c -p "$(CPORT 6)" 2>&1 | grep -c '^v')
check "redis-cli -c reads back the 3000 keys written before the moves" 3000 "$got"

# ---- Redis Cluster's view ----
wait_cluster_ok 4
info=$CLUSTER_INFO
check_has "CLUSTER INFO on a process of group 2: state ok" "cluster_state:ok" "$info"
check_has "CLUSTER INFO: three shards" "cluster_size:3" "$info"
nodes=$(cli 6 cluster nodes)
line6=$(echo "$nodes" | awk '$2 ~ /:'"$(CPORT 6)"'@/')
role6=$(echo "$line6" | awk '{print $3}')
if [ -z "$line6" ]; then
    bad "CLUSTER NODES lists node 6" "$(echo "$nodes" | tr '\n' ' ')"
elif [[ "$role6" == *master* ]]; then
    # a master must hold slots (it leads group 2, the only group it hosts)
    [ "$(echo "$line6" | wc -w)" -ge 9 ] && ok "CLUSTER NODES: node 6 is a master with slots" ||
        bad "node 6 a master with slots" "$line6"
else
    follows=$(echo "$line6" | awk '{print $4}')
    fnode=$(echo "$nodes" | awk -v id="$follows" '$1 == id {print $2}' | cut -d@ -f1)
    case "$fnode" in
    "$(CADDR 4)" | "$(CADDR 5)") ok "CLUSTER NODES: node 6 replicates a master of its own group ($fnode)" ;;
    *) bad "node 6 replicates a master of its own group" "$line6 -> $fnode" ;;
    esac
fi
check_cluster_tools 1 5

bb_finish
