#!/usr/bin/env bash
# Black-box test of craftkv's password (--requirepass, Redis's AUTH for the default user):
# clients without it, with a wrong one and with the right one; members authenticating their
# own connections to the leader (a follower's forwarded writes and admin commands, a fourth
# node joining); the password kept across a restart in craftkv.conf (mode 0600); a node
# given another password refused by the leader with a log line; redis-benchmark and
# redis-py with the password.
# Usage: tests/blackbox/craftkv_auth.sh path/to/craftkv
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
bb_init auth 31500 50 4 "$@"
PW=s3cret-pw
acli() { local p; p=$(CPORT "$1"); shift; timeout 10 redis-cli --no-auth-warning -a "$PW" -p "$p" "$@" 2>&1; }
aleader() {
    local i
    for _ in $(seq 1 150); do
        for i in "${!PID[@]}"; do
            acli "$i" info raft | tr -d '\r' | grep -q '^role:leader$' && { echo "$i"; return; }
        done
        sleep 0.2
    done
}

for i in 1 2 3; do
    "$BIN" --id "$i" --data-dir "$TMP/n$i" --initial-cluster "$CLUSTER" --requirepass "$PW" \
        2>>"$TMP/n$i.log" &
    PID[$i]=$!
done
L=$(aleader)
[ -n "$L" ] && ok "a leader is elected (node $L)" || bad "a leader is elected"
F=$(( (L % 3) + 1 ))

check "no AUTH: NOAUTH" "NOAUTH Authentication required." "$(cli "$F" set k v)"
check "PING without AUTH: NOAUTH too (as Redis)" "NOAUTH Authentication required." "$(cli "$F" ping)"
check_has "a wrong password: WRONGPASS" \
    "AUTH failed: WRONGPASS invalid username-password pair or user is disabled." \
    "$(timeout 10 redis-cli --no-auth-warning -a nope -p "$(CPORT "$F")" ping 2>&1)"
check "AUTH default <password>" "$(printf 'OK\nPONG')" \
    "$(printf 'AUTH default %s\nPING\n' "$PW" | cli "$F")"
check "AUTH another user: WRONGPASS" \
    "WRONGPASS invalid username-password pair or user is disabled." \
    "$(printf 'AUTH bob %s\n' "$PW" | cli "$F")"
check_has "HELLO without AUTH: NOAUTH" "NOAUTH HELLO must be called" "$(cli "$F" hello 2)"
check_has "HELLO 2 AUTH default <password>: the server's description" "proto 2" \
    "$(printf 'HELLO 2 AUTH default %s SETNAME me\nCLIENT GETNAME\n' "$PW" | cli "$F" | paste -sd' ')"
check_has "HELLO 3: NOPROTO (RESP2 only)" "NOPROTO" "$(cli "$F" hello 3)"
check_has "INFO counts the failures" "auth_failures:2" "$(acli "$F" info stats | tr -d '\r')"
got=$( (exec 3<>"/dev/tcp/127.0.0.1/$(CPORT "$F")"
        head -c 100000 /dev/zero | tr '\0' 'x' >&3; timeout 3 cat <&3) 2>/dev/null | tr -d '\r')
check_has "100 KB from a stranger before AUTH: refused, connection closed" \
    "unauthenticated input too large" "$got"
check "a write through a follower (forwarded with the password)" OK "$(acli "$F" set k v)"
check "read back through the leader" v "$(acli "$L" get k)"
check "RAFT.TRANSFER through a follower (admin forwarding with the password)" OK \
    "$(acli "$F" raft.transfer "$F")"
L=$(aleader)
check "the follower leads now" "$F" "$L"
F=$(( (L % 3) + 1 ))
ls -l "$TMP/n1/craftkv.conf" | grep -q '^-rw-------' && ok "craftkv.conf is 0600" ||
    bad "craftkv.conf is 0600" "$(ls -l "$TMP/n1/craftkv.conf")"

# A restart with --id and --data-dir only keeps the password.
kill -9 "${PID[$F]}"; wait "${PID[$F]}" 2>/dev/null
"$BIN" --id "$F" --data-dir "$TMP/n$F" 2>>"$TMP/n$F.log" &
PID[$F]=$!
for _ in $(seq 1 50); do acli "$F" ping 2>/dev/null | grep -q PONG && break; sleep 0.2; done
check "after a restart: still NOAUTH without it" "NOAUTH Authentication required." "$(cli "$F" get k)"
check "after a restart: its writes still reach the leader" OK "$(acli "$F" set k2 v2)"

# A fourth node joins with the password; one without it is refused, saying why.
out=$("$BIN" --id 4 --data-dir "$TMP/bad4" --listen-peer "$(PADDR 4)" --listen-client "$(CADDR 4)" \
      --join "$(CADDR "$L")" 2>&1)
[ $? -ne 0 ] && ok "a join without the password fails" || bad "a join without the password fails" "$out"
check_has "... naming the cause" "NOAUTH Authentication required" "$out"
out=$("$BIN" --id 4 --data-dir "$TMP/bad4" --listen-peer "$(PADDR 4)" --listen-client "$(CADDR 4)" \
      --join "$(CADDR "$L")" --requirepass wrong 2>&1)
[ $? -ne 0 ] && ok "a join with a wrong password fails" || bad "a join with a wrong password fails" "$out"
check_has "... naming the cause" "refused this node's password" "$out"
"$BIN" --id 4 --data-dir "$TMP/n4" --listen-peer "$(PADDR 4)" --listen-client "$(CADDR 4)" \
    --join "$(CADDR "$F")" --requirepass "$PW" 2>>"$TMP/n4.log" &
PID[4]=$!
for _ in $(seq 1 100); do acli 4 get k 2>/dev/null | grep -qx v && break; sleep 0.2; done
check "the joined node serves reads" v "$(acli 4 get k)"
check "... and writes" OK "$(acli 4 set k4 v4)"

# A member restarted with another password: the leader refuses its forwarding, it says so.
stop "$F"
"$BIN" --id "$F" --data-dir "$TMP/n$F" --requirepass other --timeout-ms 1500 2>>"$TMP/n$F.log" &
PID[$F]=$!
for _ in $(seq 1 50); do
    timeout 5 redis-cli --no-auth-warning -a other -p "$(CPORT "$F")" ping 2>/dev/null | grep -q PONG && break
    sleep 0.2
done
out=$(timeout 10 redis-cli --no-auth-warning -a other -p "$(CPORT "$F")" set k5 v 2>&1)
check_has "a write through it fails" "TRYAGAIN" "$out"
grep -q "refused this node's password" "$TMP/n$F.log" && ok "its log names the refused password" ||
    bad "its log names the refused password"
check "the others still have their own password" OK "$(acli "$L" set k6 v)"

out=$(timeout 60 redis-benchmark -a "$PW" -p "$(CPORT "$L")" -t set,get -n 2000 -c 10 -q 2>&1 | tr '\r' '\n')
check_has "redis-benchmark -a: SET" "SET:" "$out"
PY=/usr/bin/python3
if [ -x "$PY" ] && "$PY" -c 'import redis' 2>/dev/null; then
    out=$("$PY" - "$(CPORT "$L")" "$PW" <<'PYEOF' 2>&1
import sys, redis
port, pw = int(sys.argv[1]), sys.argv[2]
try:
    redis.Redis(port=port).get("k")
    raise SystemExit("no password accepted")
except redis.AuthenticationError:
    pass
r = redis.Redis(port=port, password=pw)
assert r.set("py", "1") is True and r.get("py") == b"1"
print("redis-py password ok")
PYEOF
)
    check "redis-py with a password" "redis-py password ok" "$out"
else
    echo "skip redis-py: $PY has no redis module (Debian python3-redis; scripts/deps.sh installs it)"
fi

bb_finish
