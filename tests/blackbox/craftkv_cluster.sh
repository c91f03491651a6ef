#!/usr/bin/env bash
# Black-box test of craftkv's Redis Cluster commands: a 3-node cluster (one Raft group
# owning all 16384 slots) asked with redis-cli, redis-cli -c, and redis-py's cluster client
# (Debian python3-redis; skipped with a message where it is not installed); and node 1's
# Prometheus metrics (--listen-metrics) scraped with curl.
# Usage: tests/blackbox/craftkv_cluster.sh path/to/craftkv
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
bb_init cluster 32100 50 3 "$@"

MPORT=$((BASE + 9)) # in this test's slot of ports, unused by its nodes
for i in 1 2 3; do
    extra=()
    [ "$i" = 1 ] && extra=(--listen-metrics "127.0.0.1:$MPORT")
    "$BIN" --id "$i" --data-dir "$TMP/n$i" --initial-cluster "$CLUSTER" "${extra[@]}" \
        2>>"$TMP/n$i.log" &
    PID[$i]=$!
done
L=$(wait_leader)
[ -n "$L" ] && ok "a leader is elected (node $L)" || bad "a leader is elected"
F=$(( (L % 3) + 1 ))

# ---- key slots, as Redis Cluster computes them (values from redis-server 7) ----
check "CLUSTER KEYSLOT foo" 12182 "$(cli "$F" cluster keyslot foo)"
check "CLUSTER KEYSLOT with a hash tag" 3443 "$(cli "$F" cluster keyslot '{user1000}.following')"
check "CLUSTER KEYSLOT of an empty tag hashes the key" 15257 "$(cli "$F" cluster keyslot '{}')"
check "CLUSTER MYID" "$(printf '%040x' "$F")" "$(cli "$F" cluster myid)"

# ---- the cluster's shape ----
info=$(cli "$F" cluster info | tr -d '\r')
check_has "CLUSTER INFO: state ok" "cluster_state:ok" "$info"
check_has "CLUSTER INFO: every slot assigned" "cluster_slots_assigned:16384" "$info"
check_has "CLUSTER INFO: three nodes" "cluster_known_nodes:3" "$info"
check_has "INFO: cluster_enabled" "cluster_enabled:1" "$(cli "$F" info | tr -d '\r')"

slots=$(cli "$F" cluster slots)
check "CLUSTER SLOTS: one range, from 0" 0 "$(echo "$slots" | sed -n 1p)"
check "CLUSTER SLOTS: to 16383" 16383 "$(echo "$slots" | sed -n 2p)"
check "CLUSTER SLOTS: the leader is the master" "$(CPORT "$L")" "$(echo "$slots" | sed -n 4p)"
check "CLUSTER SLOTS: the master's id" "$(printf '%040x' "$L")" "$(echo "$slots" | sed -n 5p)"
check "CLUSTER SLOTS: three nodes" 3 "$(echo "$slots" | grep -c '^0\{39\}[0-9]$')"

nodes=$(cli "$F" cluster nodes)
check "CLUSTER NODES: three lines" 3 "$(echo "$nodes" | grep -c .)"
check "CLUSTER NODES: myself" 1 "$(echo "$nodes" | grep -c "^$(printf '%040x' "$F") .*myself,slave")"
check "CLUSTER NODES: the master owns every slot" 1 \
    "$(echo "$nodes" | grep -c "^$(printf '%040x' "$L") 127.0.0.1:$(CPORT "$L")@.* master - .* 0-16383$")"
shards=$(cli "$F" cluster shards)
check "CLUSTER SHARDS: one master" 1 "$(echo "$shards" | grep -cx master)"
check "CLUSTER SHARDS: two replicas" 2 "$(echo "$shards" | grep -cx replica)"

# ---- keys in a slot ----
for k in a b c; do cli "$L" set "{tag}$k" v >/dev/null; done
cli "$L" set other v >/dev/null
S=$(cli "$L" cluster keyslot '{tag}')
check "CLUSTER COUNTKEYSINSLOT" 3 "$(cli "$L" cluster countkeysinslot "$S")"
check "CLUSTER GETKEYSINSLOT" "{tag}a {tag}b {tag}c" \
    "$(cli "$L" cluster getkeysinslot "$S" 10 | sort | tr '\n' ' ' | sed 's/ $//')"
check "CLUSTER GETKEYSINSLOT stops at count" 2 "$(cli "$L" cluster getkeysinslot "$S" 2 | grep -c .)"
check_has "a slot out of range" "ERR Invalid or out of range slot" "$(cli "$L" cluster countkeysinslot 16384)"
check_has "a negative count" "ERR Invalid number of keys" "$(cli "$L" cluster getkeysinslot 1 -1)"
check_has "an unknown subcommand" "Try CLUSTER HELP" "$(cli "$L" cluster addslots 1)"
check_has "CLUSTER with no subcommand" "wrong number of arguments" "$(cli "$L" cluster)"

# ---- COMMAND: what cluster clients route by ----
ci=$(cli "$F" command info mset)
check "COMMAND INFO mset: name" mset "$(echo "$ci" | sed -n 1p)"
check "COMMAND INFO mset: keys 1..-1 step 2" "1 -1 2" "$(echo "$ci" | sed -n 5,7p | tr '\n' ' ' | sed 's/ $//')"
check "COMMAND INFO get: one key" "1 1 1" "$(cli "$F" command info get | sed -n 5,7p | tr '\n' ' ' | sed 's/ $//')"
check "COMMAND INFO of an unknown command is nil" "" "$(cli "$F" command info nosuch)"
check "COMMAND INFO without names: every command" "$(cli "$F" command count)" "$(cli "$F" command info | grep -c '^@')"
check_has "COMMAND COUNT with an argument" "wrong number of arguments" "$(cli "$F" command count x)"
check "COMMAND COUNT matches COMMAND" "$(cli "$F" command count)" "$(cli "$F" command | grep -c '^@')"

# ---- redis-cli -c through a follower ----
check "redis-cli -c SET through a follower" OK "$(timeout 10 redis-cli -c -p "$(CPORT "$F")" set ckey cval 2>&1)"
check "redis-cli -c GET" cval "$(timeout 10 redis-cli -c -p "$(CPORT "$F")" get ckey 2>&1)"

# ---- Prometheus metrics on node 1 ----
for k in $(seq 1 20); do cli 1 set "m:$k" v >/dev/null; done
cli 1 nosuchcommand >/dev/null
M=$(curl -s -D "$TMP/metrics.head" "http://127.0.0.1:$MPORT/metrics")
check_has "GET /metrics: 200" "200 OK" "$(cat "$TMP/metrics.head")"
check_has "... in Prometheus's text format" "text/plain; version=0.0.4" "$(cat "$TMP/metrics.head")"
bad_lines=$(printf '%s\n' "$M" | grep -v -E '^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* ' |
    grep -v -E '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? -?[0-9.e+]+$' |
    grep -c . || true)
check "every line is a comment or a sample" 0 "$bad_lines"
val() { printf '%s\n' "$M" | awk -v k="$1" '$1 == k {print $2}'; }
[ "$(val craft_raft_commit_index)" -gt 0 ] 2>/dev/null && ok "craft_raft_commit_index > 0" ||
    bad "craft_raft_commit_index > 0" "$(val craft_raft_commit_index)"
check "exactly one role is 1" 1 "$(printf '%s\n' "$M" | grep -c '^craft_raft_role{role="[a-z]*"} 1$')"
[ "$(val 'craftkv_commands_total{command="set"}')" -ge 20 ] 2>/dev/null &&
    ok "craftkv_commands_total counts the SETs" ||
    bad "craftkv_commands_total counts the SETs" "$(val 'craftkv_commands_total{command="set"}')"
[ "$(val 'craftkv_errors_total{kind="ERR"}')" -ge 1 ] 2>/dev/null &&
    ok "craftkv_errors_total counts the unknown command" ||
    bad "craftkv_errors_total counts the unknown command"
n=$(val craft_raft_disk_write_seconds_count)
[ "${n:-0}" -gt 0 ] 2>/dev/null && ok "disk write latencies observed" || bad "disk write latencies observed" "$n"
check "the +Inf bucket is the count" "$n" "$(val 'craft_raft_disk_write_seconds_bucket{le="+Inf"}')"
check "buckets never decrease" "" "$(printf '%s\n' "$M" | awk '/^craft_raft_(disk_write|apply)_seconds_bucket/ {
    split($1, a, "{"); if (a[1] == last && $2 < prev) print "down at " $1; last = a[1]; prev = $2 }')"
[ "$(val process_resident_memory_bytes)" -gt 0 ] 2>/dev/null && ok "process figures" || bad "process figures"
len=$(curl -s -I "http://127.0.0.1:$MPORT/metrics" | tr -d '\r' | sed -n 's/^Content-Length: //p')
[ "${len:-0}" -gt 1000 ] 2>/dev/null && ok "HEAD: GET's length, no body" || bad "HEAD: GET's length, no body" "$len"
# A scraper that connects and sends nothing (or dribbles) is dropped after 2 s: the next
# scrape is served (bounded wait; the thread would otherwise be held for hours).
(exec 3<>"/dev/tcp/127.0.0.1/$MPORT"; sleep 5) 2>/dev/null &
silent=$!
sleep 0.2
check_has "a silent client does not hold the scrapes" "craft_raft_term" \
    "$(curl -s --max-time 10 "http://127.0.0.1:$MPORT/metrics")"
kill "$silent" 2>/dev/null; wait "$silent" 2>/dev/null
check_has "another path: 404" "404" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/nope")"
check_has "POST: 405" "405" "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$MPORT/metrics")"
out=$("$BIN" --id 1 --data-dir "$TMP/m2" --initial-cluster "1=127.0.0.1:$((BASE + 108))/127.0.0.1:$((BASE + 8))" \
      --listen-metrics "127.0.0.1:$MPORT" 2>&1)
check_has "an occupied metrics port refuses the start" "cannot listen for metrics on 127.0.0.1:$MPORT" "$out"

# ---- redis-py's cluster client (Debian python3-redis) ----
PY=/usr/bin/python3
if [ -x "$PY" ] && "$PY" -c 'import redis.cluster' 2>/dev/null; then
    out=$("$PY" - "$(CPORT "$F")" "$(CPORT "$L")" <<'PYEOF' 2>&1
import sys
from redis.cluster import RedisCluster
port, leader_port = int(sys.argv[1]), int(sys.argv[2])
rc = RedisCluster(host="127.0.0.1", port=port, socket_timeout=10)
masters = [n.port for n in rc.get_primaries()]
assert masters == [leader_port], f"primaries {masters}, leader {leader_port}"
assert len(rc.get_replicas()) == 2, rc.get_replicas()
for i in range(200):
    assert rc.set(f"py:{i}", str(i)) is True
for i in range(200):
    assert rc.get(f"py:{i}") == str(i).encode()
assert rc.mset({"{t}x": "1", "{t}y": "2"}) is True
assert rc.mget("{t}x", "{t}y") == [b"1", b"2"]
assert rc.incr("py:counter") == 1
assert rc.keyslot("foo") == 12182
print("redis-py ok")
PYEOF
)
    check "redis-py RedisCluster: routes, sets and gets 200 keys" "redis-py ok" "$out"
else
    echo "skip redis-py RedisCluster: $PY has no redis module (Debian python3-redis; scripts/deps.sh installs it)"
fi

bb_finish
