#!/usr/bin/env bash
# Black-box test of craftkv: a 3-node cluster on loopback, driven with redis-cli and
# redis-benchmark. Usage: tests/blackbox/craftkv_basic.sh path/to/craftkv
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
bb_init basic 20000 300 3 "$@"

start() { # id [full]
    if [ "${2:-}" = full ]; then
        "$BIN" --id "$1" --data-dir "$TMP/n$1" --initial-cluster "$CLUSTER" 2>>"$TMP/n$1.log" &
    else
        "$BIN" --id "$1" --data-dir "$TMP/n$1" 2>>"$TMP/n$1.log" &
    fi
    PID[$1]=$!
}
# ---- flags and errors ----
"$BIN" --help | grep -q -- "--initial-cluster" && ok "--help" || bad "--help"
"$BIN" --bogus x >/dev/null 2>&1; [ $? -ne 0 ] && ok "unknown flag exits non-zero" || bad "unknown flag exits non-zero"
"$BIN" --id 1 --data-dir "$TMP/none" >/dev/null 2>&1; [ $? -ne 0 ] && ok "first start without cluster fails" || bad "first start without cluster fails"

# ---- start ----
for i in 1 2 3; do start $i full; done
L=$(wait_leader)
[ -n "$L" ] && ok "a leader is elected (node $L)" || { bad "a leader is elected"; }

# An occupied client port: the second process must fail clearly.
mkdir -p "$TMP/dup"
out=$("$BIN" --id 1 --data-dir "$TMP/dup" --initial-cluster "$CLUSTER" 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -qi "in use" && ok "occupied port: clear error" || bad "occupied port: clear error" "$out"

# ---- SET/GET through every node ----
for i in 1 2 3; do check "SET via node $i" OK "$(cli $i set key$i val$i)"; done
for i in 1 2 3; do
    for k in 1 2 3; do check "GET key$k via node $i" "val$k" "$(cli $i get key$k)"; done
done

# ---- INCR 100 times through the three nodes ----
errs=0
for n in $(seq 1 100); do
    r=$(cli $(( (n % 3) + 1 )) incr counter)
    [ "$r" = "$n" ] || errs=$((errs + 1))
done
check "INCR x100 replies in sequence" 0 "$errs"
for i in 1 2 3; do check "counter via node $i" 100 "$(cli $i get counter)"; done

# ---- pipelined writes through a follower: the leader opens each new session ahead of
# its first forwarded write, so none takes the slow way (a worker, one round each) ----
L=$(leader)
F=$(( (L % 3) + 1 ))
redis-benchmark -p "$(CPORT $F)" -c 20 -n 4000 -P 8 -r 1000 -t set -q >/dev/null 2>&1
check "no forwarded write retried on the leader" "writes_retried:0" \
    "$(cli "$L" info | tr -d '\r' | grep '^writes_retried:')"

# ---- INFO's raft section on a follower ----
F=$(( (L % 3) + 1 ))
info=$(cli $F info raft)
check_has "INFO raft: follower role" "role:follower" "$info"
check_has "INFO raft: leader id" "leader_id:$L" "$info"
check_has "INFO raft: disk counters" "disk_syncs:" "$info"
# INFO [section ...]: only the sections asked for, as Redis answers.
check "INFO raft: only the Raft section" "# Raft" "$(printf '%s' "$info" | tr -d '\r' | grep '^#')"
check "INFO server clients: those two, in order" "# Server,# Clients" \
    "$(cli $F info CLIENTS server | tr -d '\r' | grep '^#' | paste -sd,)"
check "INFO everything: every section" 6 "$(cli $F info everything | tr -d '\r' | grep -c '^#')"
check "INFO of an unknown section: nothing" "" "$(cli $F info nosuch)"
linfo=$(cli "$L" info raft)
check_has "INFO raft: the leader counts its peers" "peers:2" "$linfo"
# A peer is "active" once it answered since the leader's last check-quorum round, which
# clears the mark every election timeout: an idle cluster shows both peers inactive for up
# to a heartbeat interval after each round. Wait for the mark (a condition, not a time).
for _ in $(seq 1 50); do
    printf '%s' "$linfo" | grep -qF "state=replicate,active=yes" && break
    sleep 0.1
    linfo=$(cli "$L" info raft)
done
check_has "INFO raft: the leader shows their progress" "state=replicate,active=yes" "$linfo"

# ---- a few commands and Redis's error texts ----
check "unknown command" "ERR unknown command 'nosuch', with args beginning with: 'a' " "$(cli 1 nosuch a)"
check "wrong arity" "ERR wrong number of arguments for 'get' command" "$(cli 2 get)"
check "SET NX on existing" "" "$(cli 3 set key1 other NX)"
check "SET GET" "val1" "$(cli 2 set key1 new GET)"
check "APPEND" "5" "$(cli 1 append app hello)"
check "STRLEN" "5" "$(cli 3 strlen app)"
check "EXPIRE then TTL" "1" "$(cli 2 expire app 100)"
t=$(cli 3 ttl app); [ "$t" -ge 99 ] 2>/dev/null && [ "$t" -le 100 ] && ok "TTL" || bad "TTL" "$t"
check "MSET" "OK" "$(cli 2 mset m1 a m2 b)"
check "MGET" "$(printf 'a\nb\n')" "$(cli 3 mget m1 m2 nope)"
check "DEL" "2" "$(cli 1 del m1 m2)"
check "TYPE" "string" "$(cli 3 type counter)"
check "EXISTS" "2" "$(cli 2 exists counter key2 nope)"
check "SELECT 0" "OK" "$(cli 1 select 0)"
check "CLIENT SETNAME/GETNAME" "$(printf 'OK\nme')" "$(printf 'CLIENT SETNAME me\nCLIENT GETNAME\n' | cli 1)"
check "CONFIG GET save" "$(printf 'save\n')" "$(cli 1 config get save)"

# ---- transactions: MULTI ... EXEC is one log entry (docs/design/craftkv.md) ----
# (redis-cli prints an empty line after an error and for a nil.)
# Through a follower (forwarded to the leader as one CRAFT.EXEC), reads see the writes before
# them, a command's own error is its element and the others still run.
got=$(printf 'MULTI\nSET tx:a 1\nINCR tx:a\nGET tx:a\nSET tx:s text\nINCR tx:s\nAPPEND tx:s !\nEXEC\n' |
      cli "$F" | tr '\n' ' ')
check "MULTI/EXEC through a follower" \
    "OK QUEUED QUEUED QUEUED QUEUED QUEUED QUEUED OK 2 2 OK ERR value is not an integer or out of range  5 " \
    "$got"
check "the transaction's writes are there" "text!" "$(cli "$L" get tx:s)"
got=$(printf 'MULTI\nSET tx:b 1\nSET tx:b\nEXEC\nGET tx:b\n' | cli "$L" | tr '\n' ' ')
check "a queuing error aborts the whole transaction" \
    "OK QUEUED ERR wrong number of arguments for 'set' command  EXECABORT Transaction discarded because of previous errors.   " \
    "$got"
check "EXEC without MULTI" "ERR EXEC without MULTI" "$(cli "$F" exec)"
check "DISCARD drops the queue" "OK QUEUED OK  " \
    "$(printf 'MULTI\nSET tx:c 1\nDISCARD\nGET tx:c\n' | cli "$F" | tr '\n' ' ')"
check "WATCH, then an untouched key: EXEC runs" "OK OK QUEUED 1 " \
    "$(printf 'WATCH tx:w\nMULTI\nINCR tx:w\nEXEC\n' | cli "$F" | tr '\n' ' ')"
check_has "WATCH inside MULTI" "ERR WATCH inside MULTI is not allowed" \
    "$(printf 'MULTI\nWATCH tx:w\n' | cli "$F")"
# One write holding MULTI, a CRAFT.FWD (no command of a transaction) and more: refused,
# the transaction aborted, the server up (a review found this aborting the process).
got=$( (exec 3<>"/dev/tcp/127.0.0.1/$(CPORT "$F")"
        printf 'MULTI\r\nCRAFT.FWD 777 1 SET tx:x y\r\nSET tx:z w\r\nEXEC\r\n' >&3
        timeout 3 cat <&3) 2>/dev/null | tr -d '\r' | tr '\n' ' ')
check_has "CRAFT.FWD inside MULTI aborts the transaction" "-EXECABORT" "$got"
check "... and the node still answers" PONG "$(cli "$F" ping)"
check "... and nothing of it ran" "" "$(cli "$F" get tx:z)"
check_has "a key too long for a transaction is refused when queued" "ERR key too long" \
    "$(printf 'MULTI\nGET %0600d\nEXEC\n' 0 | cli "$F")"
PY=/usr/bin/python3
if [ -x "$PY" ] && "$PY" -c 'import redis' 2>/dev/null; then
    out=$("$PY" - "$(CPORT "$F")" <<'PYEOF' 2>&1
import sys, redis
r = redis.Redis(port=int(sys.argv[1]), socket_timeout=10)
p = r.pipeline()  # transaction=True: MULTI ... EXEC
p.set("py:t", 1).incr("py:t").get("py:t").mget("py:t", "py:none").ttl("py:t")
assert p.execute() == [True, 2, b"2", [b"2", None], -1], "results"
p = r.pipeline()
p.set("py:u", 1)
p.execute_command("SET", "py:u")
try:
    p.execute()
    raise SystemExit("a queuing error did not abort")
except redis.ResponseError:
    pass
assert r.exists("py:u") == 0, "an aborted transaction wrote"
# WATCH: another client's write between WATCH and EXEC aborts the transaction.
r.set("py:w", 1)
p = r.pipeline()
p.watch("py:w")
v = int(p.get("py:w"))
redis.Redis(port=int(sys.argv[1])).set("py:w", 5)
p.multi()
p.set("py:w", v + 1)
try:
    p.execute()
    raise SystemExit("WATCH did not abort")
except redis.WatchError:
    pass
assert r.get("py:w") == b"5", "an aborted transaction wrote"
def bump(pipe):
    n = int(pipe.get("py:w"))
    pipe.multi()
    pipe.set("py:w", n + 1)
r.transaction(bump, "py:w")  # redis-py's optimistic-locking helper
assert r.get("py:w") == b"6"
print("redis-py transactions ok")
PYEOF
)
    check "redis-py transactional pipeline" "redis-py transactions ok" "$out"
else
    echo "skip redis-py transactions: $PY has no redis module (Debian python3-redis; scripts/deps.sh installs it)"
fi

# ---- a connection's session ends with it (SESSION_CLOSE through the pipeline) ----
ended() { local n=0 i v; for i in 1 2 3; do
    v=$(cli "$i" info stats | tr -d '\r' | sed -n 's/^sessions_ended://p'); n=$((n + ${v:-0})); done; echo "$n"; }
before=$(ended)
for i in $(seq 1 10); do cli "$F" set "sess:$i" v >/dev/null; cli "$L" set "sess:l$i" v >/dev/null; done
cli "$F" get sess:1 >/dev/null # a connection that only reads opens no session
sleep 1
check "twenty write connections closed: twenty sessions ended" $((before + 20)) "$(ended)"
check "writes still work afterwards" OK "$(cli "$F" set sess:after v)"
check_has "CRAFT.ENDSESSION is the server's own" "ERR unknown command" "$(cli "$F" craft.endsession)"
check_has "CRAFT.FWD seq 0 is for CRAFT.ENDSESSION only" "ERR bad CRAFT.FWD" \
    "$(cli "$L" craft.fwd 77 0 set k v)"

# ---- pipelining and a hostile stream ----
p=$(cli 2 --no-raw ping)
got=$(printf 'SET pipe 1\r\nINCR pipe\r\nINCR pipe\r\nGET pipe\r\nPING\r\n' | timeout 5 redis-cli -p "$(CPORT 2)" 2>&1 | tr '\n' ' ')
check "pipelined commands keep order" "OK 2 3 3 PONG " "$got"
( exec 3<>"/dev/tcp/127.0.0.1/$(CPORT 1)"; printf '*2\r\n$-7\r\nxx\r\n' >&3; timeout 2 cat <&3 >/dev/null ) 2>/dev/null
check "a protocol error closes only that connection" PONG "$(cli 1 ping)"

# ---- kill -9 the leader, restart it ----
L=$(leader)
if [ -n "$L" ]; then
    kill -9 "${PID[$L]}"; wait "${PID[$L]}" 2>/dev/null 3>/dev/null; unset "PID[$L]"
    sleep 0.5
    other=$(( (L % 3) + 1 ))
    check "write after leader crash (via node $other)" OK "$(cli $other set after crash)"
    check "counter intact after crash" 100 "$(cli $other get counter)"
    start "$L"   # only --id and --data-dir: the rest comes from craftkv.conf
    sleep 0.5
    for _ in $(seq 1 50); do [ "$(cli $L ping)" = PONG ] && break; sleep 0.2; done
    check "restarted node serves counter" 100 "$(cli $L get counter)"
    check "restarted node has write made while down" crash "$(cli $L get after)"
    for k in 2 3; do check "restarted node has key$k" "val$k" "$(cli $L get key$k)"; done
    check "restarted node accepts writes" 101 "$(cli $L incr counter)"
else
    bad "no leader to kill"
fi

# ---- pause the leader: a write through a follower is served by the next leader ----
# (the follower's forwarding connection waits on the paused leader; it must give up on it
# and retry where the leader is now, not wait for the old one to come back)
L=$(wait_leader)
if [ -n "$L" ]; then
    F=$(( (L % 3) + 1 ))
    check "a write via node $F before the pause" OK "$(cli $F set pause before)"
    kill -STOP "${PID[$L]}"
    t0=$SECONDS
    r=$(timeout 20 redis-cli -p "$(CPORT $F)" set pause during 2>&1)
    check "a write via node $F while the leader (node $L) is paused" OK "$r"
    [ $((SECONDS - t0)) -lt 8 ] && ok "... answered within 8 s" || bad "... answered within 8 s" "$((SECONDS - t0)) s"
    kill -CONT "${PID[$L]}"
    check "the paused leader catches up" during "$(sleep 1; cli $L get pause)"
fi

# ---- redis-benchmark ----
if command -v redis-benchmark >/dev/null; then
    for i in 1 2; do
        out=$(timeout 120 redis-benchmark -q -t set,get -n 2000 -c 10 -p "$(CPORT $i)" 2>&1); rc=$?
        if [ $rc -eq 0 ] && ! echo "$out" | grep -qi "err" && echo "$out" | grep -q "GET:"; then
            ok "redis-benchmark via node $i: $(echo "$out" | tr '\r' '\n' | grep -E 'requests per second' | sed 's/, p50.*//' | tr '\n' ' ')"
        else
            bad "redis-benchmark via node $i" "$out"
        fi
    done
else
    bad "redis-benchmark not installed"
fi

bb_finish # stops every node cleanly; a sanitizer report in their logs fails the test
