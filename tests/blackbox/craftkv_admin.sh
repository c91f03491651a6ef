#!/usr/bin/env bash
# Black-box test of craftkv's cluster administration: RAFT.INFO, a fourth node joining with
# --join (learner, then voter by auto-promotion), forwarding through it, RAFT.TRANSFER,
# RAFT.SNAPSHOT, RAFT.REMOVENODE, restarts that need only --id and --data-dir.
# Usage: tests/blackbox/craftkv_admin.sh path/to/craftkv
# Ports: 23000-23999. Prints "N passed, M failed" last; exits non-zero on any failure.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
bb_init admin 23000 89 4 "$@"

start() { # id [full|join NODE]: first start of an initial member, a join, or a restart
    case "${2:-}" in
    full) "$BIN" --id "$1" --data-dir "$TMP/n$1" --initial-cluster "$CLUSTER" 2>>"$TMP/n$1.log" & ;;
    join) "$BIN" --id "$1" --data-dir "$TMP/n$1" --listen-peer "$(PADDR "$1")" \
              --listen-client "$(CADDR "$1")" --join "$(CADDR "$3")" 2>>"$TMP/n$1.log" & ;;
    *)    "$BIN" --id "$1" --data-dir "$TMP/n$1" 2>>"$TMP/n$1.log" & ;;
    esac
    PID[$1]=$!
}
info() { cli "$1" raft.info | tr -d '\r'; }
field() { info "$1" | sed -n "s/^$2://p"; } # node name
leader() { # the id of the node that says it leads, or nothing
    for i in "${!PID[@]}"; do
        if [ "$(field "$i" role)" = leader ]; then echo "$i"; return; fi
    done
}
has_leader() { [ -n "$(leader)" ]; }
is_leader() { [ "$(field "$1" role)" = leader ]; }
leads_not() { local l; l=$(leader); [ -n "$l" ] && [ "$l" != "$1" ]; }
serves() { [ "$(cli "$1" ping)" = PONG ]; }
member_line() { # node id: node's RAFT.INFO line for member id
    info "$1" | grep -E "^member[0-9]+:id=$2,"
}
voter_on() { member_line "$1" "$2" | grep -q ",role=voter,"; }
recorded_on() { [ "$(field "$1" members_recorded)" = "$2" ]; }
absent_on() { ! member_line "$1" "$2" >/dev/null && recorded_on "$1" 3; }

# ---- flags ----
"$BIN" --help | grep -q -- "--join HOST:CLIENTPORT" && ok "--help names --join" || bad "--help names --join"
out=$("$BIN" --id 9 --data-dir "$TMP/x" --join 127.0.0.1:1 --initial-cluster "$CLUSTER" 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q "exclude each other" && ok "--join with --initial-cluster refused" || bad "--join with --initial-cluster refused" "$out"
out=$("$BIN" --id 9 --data-dir "$TMP/x" --join 127.0.0.1:1 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q "listen-peer" && ok "--join without listen addresses refused" || bad "--join without listen addresses refused" "$out"

# ---- three nodes, RAFT.INFO on each ----
for i in 1 2 3; do start $i full; done
wait_for 20 has_leader && ok "a leader is elected (node $(leader))" || bad "a leader is elected"
for i in 1 2 3; do wait_for 10 recorded_on $i 3 || true; done
for i in 1 2 3; do
    in=$(info $i)
    check_has "RAFT.INFO on node $i: its id" "node_id:$i" "$in"
    check_has "RAFT.INFO on node $i: three members" "members:3" "$in"
    check_has "RAFT.INFO on node $i: the initial members recorded by the leader" "members_recorded:3" "$in"
    for k in 1 2 3; do
        check_has "RAFT.INFO on node $i: member $k" "id=$k,role=voter,peer_addr=$(PADDR $k),client_addr=$(CADDR $k)" "$in"
    done
done
L=$(leader)
check_has "RAFT.INFO on the leader: peers' progress" "match_index=" "$(info "$L")"

# ---- argument errors ----
check "ADDNODE: id not a number" "ERR node id 'x' is not a number (want a positive integer)" \
    "$(cli 1 raft.addnode x 127.0.0.1:1 127.0.0.1:2)"
check "ADDNODE: bad peer address" "ERR bad peer address 'nohost' (want IP:PORT, a numeric host)" \
    "$(cli 2 raft.addnode 9 nohost 127.0.0.1:2)"
check "ADDNODE: bad role" "ERR syntax error (the last argument is VOTER or LEARNER)" \
    "$(cli 2 raft.addnode 9 127.0.0.1:1 127.0.0.1:2 BOSS)"
check "ADDNODE: existing id, other address" "ERR node 2 is already a member, with peer address $(PADDR 2)" \
    "$(cli 3 raft.addnode 2 127.0.0.1:1 127.0.0.1:2)"
check "REMOVENODE: unknown node (via a follower)" "ERR unknown node 99" "$(cli $(( L % 3 + 1 )) raft.removenode 99)"
check "TRANSFER: unknown node" "ERR unknown node 42" "$(cli 1 raft.transfer 42)"
check "TRANSFER: too many arguments" "ERR wrong number of arguments for 'raft.transfer' command" \
    "$(cli 1 raft.transfer 1 2)"

# ---- data written before the fourth node exists ----
check "MSET before the join" OK "$(cli 1 mset pre1 a pre2 b pre3 c)"
check "INCR before the join" 1 "$(cli 2 incr precount)"

# ---- refused joins leave nothing behind ----
out=$("$BIN" --id 2 --data-dir "$TMP/bad2" --listen-peer "$(PADDR 4)" --listen-client "$(CADDR 4)" \
      --join "$(CADDR 1)" 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q "node id 2 is already a member, with peer address $(PADDR 2)" \
    && ok "--join with a member's id refused" || bad "--join with a member's id refused" "$out"
out=$("$BIN" --id 5 --data-dir "$TMP/bad5" --listen-peer "$(PADDR 4)" --listen-client "$(CADDR 4)" \
      --join "127.0.0.1:$(PPORT 4)" 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q "no answer to RAFT.INFO" \
    && ok "--join to an address where no node answers refused" || bad "--join to nowhere refused" "$out"
[ ! -e "$TMP/bad2/craftkv.conf" ] && [ ! -e "$TMP/bad5/craftkv.conf" ] \
    && ok "refused joins wrote no craftkv.conf" || bad "refused joins wrote no craftkv.conf"

# ---- node 4 joins through a follower ----
F=$(( L % 3 + 1 ))
start 4 join "$F"
wait_for 30 serves 4 && ok "node 4 joined through node $F and serves clients" || bad "node 4 joined and serves clients" "$(tail -5 "$TMP/n4.log")"
wait_for 20 voter_on 4 4 && ok "node 4 became a voter (its RAFT.INFO)" || bad "node 4 became a voter" "$(member_line 4 4)"
check "node 4 serves data written before it joined" "$(printf 'a\nb\nc')" "$(cli 4 mget pre1 pre2 pre3)"
check "SET through node 4 (forwarded to the leader)" OK "$(cli 4 set post4 d)"
check "INCR through node 4" 2 "$(cli 4 incr precount)"
check "the write through node 4 reads back on node 1" d "$(cli 1 get post4)"
for i in 1 2 3; do
    wait_for 5 voter_on $i 4 || true
    check_has "RAFT.INFO on node $i names node 4's addresses" \
        "id=4,role=voter,peer_addr=$(PADDR 4),client_addr=$(CADDR 4)" "$(info $i)"
done
check_has "node 4's settings were saved" "join=$(CADDR "$F")" "$(cat "$TMP/n4/craftkv.conf" 2>&1)"
check "ADDNODE again is idempotent" OK "$(cli 2 raft.addnode 4 "$(PADDR 4)" "$(CADDR 4)")"

# ---- leadership transfer ----
check "RAFT.TRANSFER 4 (via node 1)" OK "$(cli 1 raft.transfer 4)"
wait_for 10 is_leader 4 && ok "node 4 leads after the transfer" || bad "node 4 leads after the transfer" "leader: $(leader)"
check "INFO on node 1 names the new leader's client address" "$(CADDR 4)" \
    "$(cli 1 info raft | tr -d '\r' | sed -n 's/^leader_client_addr://p')"
check "SET via node 1, forwarded to node 4" OK "$(cli 1 set after_transfer e)"
check "RAFT.TRANSFER (any node)" OK "$(cli 4 raft.transfer)"
wait_for 10 leads_not 4 && ok "the leader changed from node 4 (to $(leader))" || bad "the leader changed from node 4"

# ---- node 4 restarts with only --id and --data-dir ----
stop 4
start 4
wait_for 20 serves 4 && ok "node 4 restarts from its craftkv.conf" || bad "node 4 restarts" "$(tail -5 "$TMP/n4.log")"
check "restarted node 4 serves data" e "$(cli 4 get after_transfer)"
check "restarted node 4 forwards writes" OK "$(cli 4 set after_restart4 f)"
wait_for 5 voter_on 4 4 && ok "restarted node 4 is still a voter" || bad "restarted node 4 is still a voter"

# ---- snapshot ----
snap=$(cli 2 raft.snapshot)
[ "$snap" -gt 0 ] 2>/dev/null && ok "RAFT.SNAPSHOT on node 2: index $snap" || bad "RAFT.SNAPSHOT on node 2" "$snap"
si=$(cli 2 info raft | tr -d '\r' | sed -n 's/^snapshot_index://p')
[ "${si:-0}" -ge "${snap:-1}" ] 2>/dev/null && ok "INFO shows the snapshot index" || bad "INFO shows the snapshot index" "$si vs $snap"

# ---- remove node 4 ----
check "RAFT.REMOVENODE 4 (via node 3)" OK "$(cli 3 raft.removenode 4)"
for i in 1 2 3; do
    wait_for 10 absent_on $i 4 && ok "node $i: node 4 gone from RAFT.INFO and the member table" \
        || bad "node $i: node 4 gone" "$(info $i | grep -E '^member')"
done
check "REMOVENODE 4 again: unknown node" "ERR unknown node 4" "$(cli 1 raft.removenode 4)"
stop 4
check "SET after the removal" OK "$(cli 1 set after_remove g)"

# ---- node 2 restarts after its snapshot ----
stop 2
check "writes go on while node 2 is down" OK "$(cli 3 set while_down h)"
start 2
wait_for 20 serves 2 && ok "node 2 restarts" || bad "node 2 restarts" "$(tail -5 "$TMP/n2.log")"
check "node 2 after restart: data from before the snapshot" "$(printf 'a\nb\nc\n2')" \
    "$(cli 2 mget pre1 pre2 pre3 precount)"
check "node 2 after restart: data after the snapshot" "$(printf 'g\nh')" "$(cli 2 mget after_remove while_down)"
wait_for 5 recorded_on 2 3 || true
in=$(info 2)
check_has "node 2 after restart: members" "members:3" "$in"
check_has "node 2 after restart: member table" "members_recorded:3" "$in"
check_has "node 2 after restart: node 1's client address" "id=1,role=voter,peer_addr=$(PADDR 1),client_addr=$(CADDR 1)" "$in"
check "node 2 after restart forwards writes" OK "$(cli 2 set last i)"

bb_finish # stops every node cleanly; a sanitizer report in their logs fails the test
