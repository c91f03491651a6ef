#!/usr/bin/env bash
# Black-box test of recovery from a lost quorum (--force-new-cluster; docs/design/core.md,
# "Recovery from a lost quorum"), with real processes: three nodes take writes; the
# recovery is refused while the others have a leader; then two nodes are lost for good
# (kill -9, data gone), the survivor alone serves no write; started once with
# --force-new-cluster it leads again with every key, takes new writes, keeps the forced
# configuration over a plain restart, and grows again with a new node (--join) that
# receives everything.
# Usage: tests/blackbox/craftkv_recover.sh path/to/craftkv
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
bb_init recover 25000 89 4 "$@"

start() { # id [full|join NODE|force IDS]
    case "${2:-}" in
    full) "$BIN" --id "$1" --data-dir "$TMP/n$1" --initial-cluster "$CLUSTER" --timeout-ms 1500 \
              2>>"$TMP/n$1.log" & ;;
    join) "$BIN" --id "$1" --data-dir "$TMP/n$1" --listen-peer "$(PADDR "$1")" \
              --listen-client "$(CADDR "$1")" --join "$(CADDR "$3")" 2>>"$TMP/n$1.log" & ;;
    force) "$BIN" --id "$1" --data-dir "$TMP/n$1" --force-new-cluster "$3" --timeout-ms 1500 \
              2>>"$TMP/n$1.log" & ;;
    *)    "$BIN" --id "$1" --data-dir "$TMP/n$1" --timeout-ms 1500 2>>"$TMP/n$1.log" & ;;
    esac
    PID[$1]=$!
}
field() { cli "$1" raft.info | tr -d '\r' | sed -n "s/^$2://p"; } # node name
is_leader() { [ "$(field "$1" role)" = leader ]; }
caught_up() { # node other: node applied as far as other, both answering
    local a b
    a=$(field "$1" applied_index)
    b=$(field "$2" applied_index)
    [ -n "$a" ] && [ "$a" = "$b" ]
}
keys_on() { # node: how many of the 500 keys read back with their values
    for k in $(seq 1 500); do echo "GET key:$k"; done | timeout 30 redis-cli -p "$(CPORT "$1")" 2>/dev/null |
        awk '{ if ($0 == "v" NR) n++ } END { print n + 0 }'
}
kill9() { kill -9 "${PID[$1]}" 2>/dev/null; wait "${PID[$1]}" 2>/dev/null; unset "PID[$1]"; }

for i in 1 2 3; do start "$i" full; done
L=$(wait_leader)
[ -n "$L" ] && ok "a leader is elected (node $L)" || bad "a leader is elected"
for k in $(seq 1 500); do echo "SET key:$k v$k"; done | timeout 30 redis-cli -p "$(CPORT 1)" >/dev/null 2>&1
check "500 keys written" 500 "$(keys_on 1)"
wait_for 10 caught_up 3 1 ||
    echo "     (node 3 lags: $(field 3 applied_index) against $(field 1 applied_index))"

# ---- refused while the cluster has a quorum ----
stop 1
wait_for 10 is_leader 2 || wait_for 10 is_leader 3
out=$(timeout 20 "$BIN" --id 1 --data-dir "$TMP/n1" --force-new-cluster 1 2>&1)
check_has "--force-new-cluster refused while nodes 2 and 3 have a leader" "reports leader" "$out"
out=$(timeout 20 "$BIN" --id 1 --data-dir "$TMP/n1" --force-new-cluster 2,3 2>&1)
check_has "--force-new-cluster without this node refused" "bad --force-new-cluster" "$out"
out=$(timeout 20 "$BIN" --id 1 --data-dir "$TMP/n1" --force-new-cluster 1,9 2>&1)
check_has "--force-new-cluster naming a stranger refused" "not a member" "$out"
out=$(timeout 20 "$BIN" --id 5 --data-dir "$TMP/n5" --force-new-cluster 5 2>&1)
check_has "--force-new-cluster on an empty data dir refused" "has no craftkv.conf" "$out"
start 1
wait_for 20 caught_up 1 2 ||
    echo "     (node 1 lags after its restart: $(field 1 applied_index) against $(field 2 applied_index))"

# ---- two nodes lost for good ----
kill9 2
kill9 3
rm -rf "$TMP/n2" "$TMP/n3"
out=$(cli 1 set lonely 1)
check_has "the survivor alone takes no write" "TRYAGAIN" "$out"
stop 1
out=$(timeout 20 "$BIN" --id 1 --data-dir "$TMP/n1" --force-new-cluster 1,2 2>&1)
check_has "a named survivor that does not answer: refused" "does not answer" "$out"
# (a survivor reports its old leader for an election timeout: none is left to report here)
start 1 force 1
wait_for 20 is_leader 1 && ok "the survivor leads after --force-new-cluster" ||
    bad "the survivor leads" "$(cli 1 raft.info | tr -d '\r' | tr '\n' ' ')"
grep -q "recovery from a lost quorum: the configuration of 1 survivor(s) forced at log index" \
    "$TMP/n1.log" && ok "the log line names the forced entry" ||
    bad "the log line" "$(tail -3 "$TMP/n1.log")"
check "every key is there" 500 "$(keys_on 1)"
check "it takes new writes" OK "$(cli 1 set after recovery)"
check "one voter in its configuration" 1 "$(cli 1 raft.info | tr -d '\r' | grep -c '^member[0-9]*:.*role=voter')"

# ---- a plain restart keeps it; the cluster grows again ----
stop 1
start 1
wait_for 20 is_leader 1 && ok "a plain restart leads again (the forced configuration is in the log)" ||
    bad "plain restart leads"
check "the write after the recovery survives the restart" recovery "$(cli 1 get after)"
start 4 join 1
wait_for 40 caught_up 4 1 &&
    ok "a new node joins the recovered cluster and catches up" ||
    bad "node 4 catches up" "$(field 4 applied_index) vs $(field 1 applied_index)"
check "the new node holds every key" 500 "$(keys_on 4)"
two_voters() { [ "$(cli 1 raft.info | tr -d '\r' | grep -c '^member[0-9]*:.*role=voter')" = 2 ]; }
wait_for 20 two_voters && ok "the new node becomes a voter" ||
    bad "the new node becomes a voter" "$(cli 1 raft.info | tr -d '\r' | grep '^member')"
check "writes commit with two voters" OK "$(cli 4 set grown yes)"
check "and read back on the leader" yes "$(cli 1 get grown)"

bb_finish
