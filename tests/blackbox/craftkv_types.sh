#!/usr/bin/env bash
# Black-box test of craftkv's data types with real clients: a 3-node cluster on loopback.
#  1. redis-py (Debian python3-redis) through a follower: hashes, sets, lists, sorted sets,
#     WRONGTYPE, TYPE and SCAN TYPE, a transactional pipeline holding collection writes and
#     reads, WATCH on a hash aborting EXEC after another client's HSET.
#  2. redis-cli: a few answers in Redis's exact text; a hiredis program (hiredis_client.c,
#     built here against Debian's libhiredis-dev) checks replies as a C client parses them.
#  3. redis-benchmark's default suite runs to its end (LPUSH, LRANGE, SADD, HSET, SPOP,
#     ZADD, ZPOPMIN: every test of it answers without an error).
#  4. Exactly once, per type, under faults: writers that never send a command twice
#     (pipelined batches on one connection each; a reply lost with its connection is in
#     doubt) run RPUSH and SADD of unique elements, HINCRBY, ZINCRBY and MULTI (RPUSH +
#     HINCRBY together) while the leader is killed (-9) and restarted and a follower is
#     paused. Afterwards: every acknowledged element is in its list exactly once and in its
#     set, each writer's elements in the order it sent them, nothing was written that was
#     not sent, each counter lies between the acknowledged
#     and the acknowledged plus the in-doubt increments, and each transaction's two writes
#     were applied together (list length = counter).
# Usage: tests/blackbox/craftkv_types.sh path/to/craftkv
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
bb_init types 21000 300 3 "$@"

start() { # id [full]
    if [ "${2:-}" = full ]; then
        "$BIN" --id "$1" --data-dir "$TMP/n$1" --initial-cluster "$CLUSTER" 2>>"$TMP/n$1.log" &
    else
        "$BIN" --id "$1" --data-dir "$TMP/n$1" 2>>"$TMP/n$1.log" &
    fi
    PID[$1]=$!
}

for i in 1 2 3; do start $i full; done
L=$(wait_leader)
[ -n "$L" ] && ok "a leader is elected (node $L)" || bad "a leader is elected"
F=$(( (L % 3) + 1 ))

PY=/usr/bin/python3
if ! { [ -x "$PY" ] && "$PY" -c 'import redis' 2>/dev/null; }; then
    bad "python3-redis is installed (scripts/deps.sh installs it)"
    bb_finish
    exit 1
fi

# ---- 1. redis-py, through a follower ----
out=$("$PY" - "$(CPORT "$F")" <<'PYEOF' 2>&1
import sys, redis
port = int(sys.argv[1])
r = redis.Redis(port=port, socket_timeout=10)
def eq(what, got, want):
    if got != want:
        raise SystemExit(f"{what}: got {got!r}, want {want!r}")
# hashes
eq("hset", r.hset("h", mapping={"a": "1", "b": "2"}), 2)
eq("hget", r.hget("h", "a"), b"1")
eq("hgetall", r.hgetall("h"), {b"a": b"1", b"b": b"2"})
eq("hincrby", r.hincrby("h", "a", 41), 42)
eq("hmget", r.hmget("h", "a", "zz"), [b"42", None])
eq("hexists", r.hexists("h", "b"), True)
eq("hdel", r.hdel("h", "b", "zz"), 1)
eq("hlen", r.hlen("h"), 1)
eq("hsetnx", r.hsetnx("h", "a", "no"), False)
eq("hkeys", r.hkeys("h"), [b"a"])
eq("hscan_iter", dict(r.hscan_iter("h")), {b"a": b"42"})
# sets
eq("sadd", r.sadd("s", "x", "y", "z"), 3)
eq("smembers", r.smembers("s"), {b"x", b"y", b"z"})
eq("sismember", r.sismember("s", "y"), True)
eq("srem", r.srem("s", "y"), 1)
eq("scard", r.scard("s"), 2)
r.sadd("s2", "z", "w")
eq("sinter", r.sinter("s", "s2"), {b"z"})
eq("sunion", r.sunion("s", "s2"), {b"x", b"z", b"w"})
eq("sdiff", r.sdiff("s", "s2"), {b"x"})
popped = r.spop("s")
eq("spop", popped in (b"x", b"z") and r.scard("s") == 1, True)
eq("srandmember", len(r.srandmember("s2", 5)), 2)
eq("sscan_iter", set(r.sscan_iter("s2")), {b"z", b"w"})
# lists
eq("rpush", r.rpush("l", "a", "b", "c"), 3)
eq("lpush", r.lpush("l", "z"), 4)
eq("lrange", r.lrange("l", 0, -1), [b"z", b"a", b"b", b"c"])
eq("lindex", r.lindex("l", -1), b"c")
eq("lset", r.lset("l", 0, "Z"), True)
eq("lpop", r.lpop("l"), b"Z")
eq("rpop count", r.rpop("l", 2), [b"c", b"b"])
eq("llen", r.llen("l"), 1)
r.rpush("l", "a", "b", "a")
eq("lrem", r.lrem("l", 0, "a"), 3)
eq("ltrim", r.ltrim("l", 0, 0), True)
eq("lrange after", r.lrange("l", 0, -1), [b"b"])
# sorted sets
eq("zadd", r.zadd("z", {"a": 1, "b": 2.5, "c": 3}), 3)
eq("zincrby", r.zincrby("z", 10, "a"), 11.0)
eq("zrange", r.zrange("z", 0, -1, withscores=True), [(b"b", 2.5), (b"c", 3.0), (b"a", 11.0)])
eq("zrevrange", r.zrevrange("z", 0, 0), [b"a"])
eq("zrangebyscore", r.zrangebyscore("z", 2, 5), [b"b", b"c"])
eq("zscore", r.zscore("z", "c"), 3.0)
eq("zrank", r.zrank("z", "a"), 2)
eq("zcount", r.zcount("z", "(2.5", "+inf"), 2)
eq("zpopmin", r.zpopmin("z"), [(b"b", 2.5)])
eq("zrem", r.zrem("z", "c"), 1)
eq("zcard", r.zcard("z"), 1)
# types
eq("type", [r.type(k) for k in ("h", "s", "l", "z", "nope")], [b"hash", b"set", b"list", b"zset", b"none"])
r.set("str", "v")
for bad in (lambda: r.hget("str", "f"), lambda: r.get("h"), lambda: r.lpush("s", "x"), lambda: r.incr("l")):
    try:
        bad()
        raise SystemExit("no WRONGTYPE")
    except redis.ResponseError as e:
        eq("WRONGTYPE", str(e).startswith("WRONGTYPE"), True)
eq("scan type", sorted(r.scan_iter(_type="zset")), [b"z"])
eq("scan type list", sorted(r.scan_iter(_type="list")), [b"l"])
eq("set over a hash", r.set("h", "now a string"), True)
eq("type after", r.type("h"), b"string")
eq("del", r.delete("s", "l", "z"), 3)
# a transaction of collection writes and reads
p = r.pipeline()
p.hset("th", "f", "1").rpush("tl", "x").sadd("ts", "m").zadd("tz", {"m": 2}).hgetall("th").lrange("tl", 0, -1).zrange("tz", 0, -1, withscores=True).hscan("th", 0)
eq("transaction", p.execute(), [1, 1, 1, 1, {b"f": b"1"}, [b"x"], [(b"m", 2.0)], (0, {b"f": b"1"})])
# WATCH a hash: another client's HSET aborts the transaction
p = r.pipeline()
p.watch("th")
n = int(p.hget("th", "f"))
redis.Redis(port=port).hset("th", "g", "other")  # a change to the hash, not to field f
p.multi()
p.hset("th", "f", n + 1)
try:
    p.execute()
    raise SystemExit("WATCH did not abort")
except redis.WatchError:
    pass
eq("after the aborted transaction", r.hget("th", "f"), b"1")
print("redis-py types ok")
PYEOF
)
check "redis-py: hashes, sets, lists, sorted sets, types, transactions" "redis-py types ok" "$out"

# ---- 2. redis-cli: Redis's texts ----
check "LPOP of a missing key" "" "$(cli "$L" lpop nokey)"
check_has "ZADD XX NX" "ERR XX and NX options at the same time are not compatible" \
    "$(cli "$L" zadd z1 xx nx 1 a)"
check_has "HINCRBY of a text" "ERR hash value is not an integer" \
    "$(cli "$L" hset hx f abc >/dev/null; cli "$L" hincrby hx f 1)"
check_has "LSET out of range" "ERR index out of range" \
    "$(cli "$L" rpush lx a >/dev/null; cli "$L" lset lx 5 b)"
check "ZSCORE prints like Redis" "0.30000000000000004" \
    "$(cli "$L" zadd zx 0.1 m >/dev/null; cli "$L" zincrby zx 0.2 m)"

# A few more of Redis's string and keyspace commands.
check "SETEX" OK "$(cli "$L" setex sx 100 v)"
check "SETEX sets the expiry" 100 "$(cli "$L" ttl sx)"
check "PSETEX" OK "$(cli "$L" psetex px 100000 v)"
check_has "SETEX of a negative time" "ERR invalid expire time in 'setex' command" \
    "$(cli "$L" setex sx -1 v)"
now=$(date +%s)
et=$(cli "$L" expiretime sx)
[ "$et" -ge $((now + 95)) ] && [ "$et" -le $((now + 105)) ] && ok "EXPIRETIME ($et)" ||
    bad "EXPIRETIME" "$et, now $now"
check "PEXPIRETIME of a key without one" -1 "$(cli "$L" pexpiretime hx)"
check "TOUCH counts the keys there" 2 "$(cli "$L" touch sx px nokey)"
check "KEYS with a pattern" "px sx" "$(cli "$F" keys '[sp]x' | sort | paste -sd' ')"
check "TIME answers two numbers" 2 "$(cli "$L" time | grep -c '^[0-9]*$')"
check "INCRBYFLOAT" 10.6 "$(cli "$L" set fl 10.5 >/dev/null; cli "$F" incrbyfloat fl 0.1)"
check "GETEX EX" "10.6 100" "$(cli "$F" getex fl ex 100) $(cli "$L" ttl fl)"
check "RENAME a hash" "OK a 1" "$(cli "$F" hset rh a 1 >/dev/null; cli "$F" rename rh rh2) $(cli "$L" hgetall rh2 | paste -sd' ')"
check "RPOPLPUSH" "c" "$(cli "$F" rpush rl a b c >/dev/null; cli "$F" rpoplpush rl rl2)"

# ---- hiredis (Debian libhiredis-dev): a small C program, built here ----
if [ -f /usr/include/hiredis/hiredis.h ]; then
    if cc -std=c11 -Wall -Wextra -Werror -o "$TMP/hiredis_client" "$BB_DIR/hiredis_client.c" \
        -lhiredis 2>"$TMP/hiredis_build.log"; then
        check "hiredis: strings, a hash, a list, a sorted set, a pipeline, MULTI (via node $F)" \
            "hiredis ok" "$("$TMP/hiredis_client" 127.0.0.1 "$(CPORT "$F")" 2>&1)"
    else
        bad "hiredis_client builds" "$(head -5 "$TMP/hiredis_build.log")"
    fi
else
    bad "libhiredis-dev is installed (scripts/deps.sh installs it)"
fi

# ---- 3. redis-benchmark's default suite ----
if command -v redis-benchmark >/dev/null; then
    out=$(timeout 300 redis-benchmark -p "$(CPORT "$F")" -q -n 1000 -c 10 2>&1 | tr '\r' '\n'); rc=$?
    tests=$(printf '%s\n' "$out" | grep -c "requests per second")
    errs=$(printf '%s\n' "$out" | grep -ci "err")
    if [ $rc -eq 0 ] && [ "$errs" -eq 0 ] && [ "$tests" -ge 20 ] &&
        printf '%s\n' "$out" | grep -q "^MSET"; then
        ok "redis-benchmark's default suite: $tests tests, none failed"
    else
        bad "redis-benchmark's default suite" "rc $rc, $tests tests, $errs errors: $(printf '%s' "$out" | grep -i err | head -3)"
    fi
else
    bad "redis-benchmark not installed"
fi

# ---- 4. exactly once per type, under kill -9 and SIGSTOP ----
# writer NAME PORT: batches of pipelined commands, each batch on a new connection, never
# resent. Writes its acknowledged and in-doubt counts, and the ids it sent, to $TMP.
cat >"$TMP/writer.py" <<'PYEOF'
import socket, sys, os, time
name, port, tmp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def enc(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out
def read_reply(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("lost")
    t, rest = line[:1], line[1:-2]
    if t in (b"+", b"-", b":"):
        return (t, rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return (t, None)
        data = f.read(n + 2)
        if len(data) != n + 2:
            raise ConnectionError("lost")
        return (t, data[:-2])
    if t == b"*":
        n = int(rest)
        return (t, [read_reply(f) for _ in range(max(n, 0))])
    raise ConnectionError("bad reply")
acked = {"rpush": 0, "sadd": 0, "hincr": 0, "zincr": 0, "multi": 0}
doubt = dict(acked)
sent_ids = []
acked_ids = []
seq = 0
while not os.path.exists(os.path.join(tmp, "stop")):
    batch = []
    for _ in range(5):
        seq += 1
        uid = "%s-%d" % (name, seq)
        sent_ids.append(uid)
        batch.append(("rpush", uid, enc("RPUSH", "L", uid)))
        batch.append(("sadd", uid, enc("SADD", "S", uid)))
        batch.append(("hincr", None, enc("HINCRBY", "H", "f", 1)))
        batch.append(("zincr", None, enc("ZINCRBY", "Z", 1, "m")))
        batch.append(("multi", None, enc("MULTI") + enc("RPUSH", "TL", uid) + enc("HINCRBY", "TH", "f", 1) + enc("EXEC")))
    got = 0
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.settimeout(8)
        f = s.makefile("rb")
        s.sendall(b"".join(b[2] for b in batch))
        for kind, uid, _ in batch:
            if kind == "multi":
                replies = [read_reply(f) for _ in range(4)]  # OK, QUEUED, QUEUED, EXEC's
                r = replies[3]
                good = r[0] == b"*" and len(r[1]) == 2 and all(x[0] == b":" for x in r[1])
            else:
                r = read_reply(f)
                good = r[0] in (b":", b"$") and r[1] is not None
            got += 1
            if good:
                acked[kind] += 1
                if kind == "rpush":
                    acked_ids.append(uid)
            else:
                doubt[kind] += 1
        s.close()
    except (OSError, ConnectionError, ValueError):
        for kind, _, _ in batch[got:]:
            doubt[kind] += 1
        time.sleep(0.1)
with open(os.path.join(tmp, "writer." + name), "w") as out:
    out.write(repr((acked, doubt, sent_ids, acked_ids)))
PYEOF
rm -f "$TMP/stop"
for w in 1 2 3; do
    "$PY" "$TMP/writer.py" "w$w" "$(CPORT "$w")" "$TMP" 2>"$TMP/writer.w$w.err" &
    CLIENTS+=($!)
done
sleep 2
L=$(leader)
kill -9 "${PID[$L]}"; wait "${PID[$L]}" 2>/dev/null; unset "PID[$L]"
sleep 2
start "$L"
sleep 2
L2=$(wait_leader)
F2=$(( (L2 % 3) + 1 ))
kill -STOP "${PID[$F2]}"
sleep 2
kill -CONT "${PID[$F2]}"
sleep 2
touch "$TMP/stop"
for c in "${CLIENTS[@]}"; do wait "$c"; done
CLIENTS=()
L=$(wait_leader)
out=$("$PY" - "$(CPORT "$L")" "$TMP" <<'PYEOF' 2>&1
import sys, ast, collections, redis
r = redis.Redis(port=int(sys.argv[1]), socket_timeout=20)
acked = collections.Counter(); doubt = collections.Counter(); sent = set(); acked_ids = []
for w in ("w1", "w2", "w3"):
    a, d, s, ai = ast.literal_eval(open(sys.argv[2] + "/writer." + w).read())
    acked.update(a); doubt.update(d); sent.update(s); acked_ids += ai
lst = r.lrange("L", 0, -1)
counts = collections.Counter(x.decode() for x in lst)
problems = []
if acked["rpush"] < 50: problems.append("too few acknowledged writes: %r" % dict(acked))
dup = [k for k, n in counts.items() if n > 1]
if dup: problems.append("list: %d elements twice (%s)" % (len(dup), dup[:3]))
missing = [u for u in acked_ids if counts[u] == 0]
if missing: problems.append("list: %d acknowledged elements lost (%s)" % (len(missing), missing[:3]))
# A writer's commands are sequential: its elements stand in the list in the order sent.
order = 0
for w in ("w1", "w2", "w3"):
    seqs = [int(x.decode().split("-")[1]) for x in lst if x.decode().startswith(w + "-")]
    order += sum(1 for a, b in zip(seqs, seqs[1:]) if b <= a)
if order: problems.append("list: %d elements out of their writer's order" % order)
stray = [k for k in counts if k not in sent]
if stray: problems.append("list: elements never sent (%s)" % stray[:3])
members = {x.decode() for x in r.smembers("S")}
if [u for u in acked_ids if u not in members]: problems.append("set: acknowledged members lost")
if [m for m in members if m not in sent]: problems.append("set: members never sent")
for key, kind, val in (("H", "hincr", int(r.hget("H", "f") or 0)), ("Z", "zincr", int(float(r.zscore("Z", "m") or 0)))):
    if not (acked[kind] <= val <= acked[kind] + doubt[kind]):
        problems.append("%s: %d not within [%d, %d]" % (key, val, acked[kind], acked[kind] + doubt[kind]))
tl, th = r.llen("TL"), int(r.hget("TH", "f") or 0)
if tl != th: problems.append("MULTI: list %d != counter %d (not applied together)" % (tl, th))
if not (acked["multi"] <= tl <= acked["multi"] + doubt["multi"]):
    problems.append("MULTI: %d not within [%d, %d]" % (tl, acked["multi"], acked["multi"] + doubt["multi"]))
print("; ".join(problems) if problems else "exactly once: %d acked rpush, %d in doubt, %d transactions" % (acked["rpush"], doubt["rpush"], tl))
PYEOF
)
check_has "collections under kill -9 and SIGSTOP: nothing lost, doubled, reordered or torn ($out)" \
    "exactly once:" "$out"
for i in 1 2 3; do
    check "node $i answers after the faults" PONG "$(cli "$i" ping)"
done

bb_finish
