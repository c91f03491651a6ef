#!/usr/bin/env bash
# craftkv sharded (part of `make bench`): throughput with 1, 2 and 3 shard groups, side by
# side in one run, and the time and bytes of moving one slot between groups.
#
# For each group count G: `craftkv local --nodes 3 --groups G` (3 processes, each hosting a
# replica of every group and the shard controller; one shared log per process, fdatasync
# on), leaders spread over the processes, then `redis-benchmark --cluster` (it follows the
# slot map to each group's leader) for SET and GET, -c 50, with and without -P 16,
# -r 100000; with 2 and 3 groups also a plain client through the first process, -P 16 (its
# pipelines span the groups: one batch per group per round). Per shape: ops/s, p50/p99, CPU per request (utime+stime of the three
# processes over the run, divided by the requests), fdatasyncs per committed entry (the
# three processes' shared-log syncs over the entries the groups committed: one entry is
# synced on every replica, so 3.0 would be one fdatasync per entry per process), and each
# group's share of the committed entries.
#
# Then, on the last cluster, one slot is filled with SLOT_MB megabytes (64 KiB values under
# one hash tag) and moved to another group with CRAFT.SHARD MOVE, which answers once every
# group settled: the time, the keys' bytes, and the bytes the three processes wrote to disk
# meanwhile (/proc/PID/io write_bytes: the hand-over in each replica's log and store, and the
# sender's delete), and the hand-over's log entries and payload bytes (INFO cluster's
# craft_handover_entries / _bytes). A hand-over larger than one log entry (32 MiB) goes in parts (sharding.md,
# "Hand-overs in parts").
# It prints figures; it never fails on speed (only if something cannot start).
#
# Usage: bench/craftkv_shard.sh [path/to/craftkv]   (default build/bin/craftkv)
# Environment: REQUESTS (per shape, default 100000), GROUP_COUNTS (default "0 1 2 3"; 0 is
# the unsharded server, for comparison),
# SLOT_MB (default "8 100"), BENCH_DIR (default /tmp), BASE_PORT (default 7501: clients
# BASE..BASE+2, peers BASE+100..).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${1:-build/bin/craftkv}
N=${REQUESTS:-100000}
BASE=${BASE_PORT:-7501}
COUNTS=${GROUP_COUNTS:-0 1 2 3}
SIZES=${SLOT_MB:-8 100}

source bench/local_cluster.bash
bench_cluster_init craftkv_shard_bench

# Every process reports the configuration settled by every group, and every group has a
# leader and at most one group per process leads (the driver spreads them every 5 s).
settled() { # groups
    local p info
    for p in $BASE $((BASE + 1)) $((BASE + 2)); do
        info=$(cli "$p" craft.shard info)
        [ "$(echo "$info" | grep -c '^group:')" = "$1" ] || return 1
        echo "$info" | grep -qE "(pulling|giving|notifying):[1-9]" && return 1
        cli "$p" info raft | grep '^group' | grep -q 'leader_id=0,' && return 1
    done
    local leaders
    leaders=$(for p in $BASE $((BASE + 1)) $((BASE + 2)); do
        cli "$p" info raft | grep '^group' | grep -c 'role=leader' || true
    done | sort -n | tail -1)
    [ "$leaders" -le 1 ]
}

cpu_ticks() {
    local t=0 p
    for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
    echo "$t"
}
# The sum over the processes of INFO's craft_handover_<what> (entries, bytes).
handover() {
    local t=0 p
    for p in $BASE $((BASE + 1)) $((BASE + 2)); do
        t=$((t + $(cli "$p" info cluster | awk -F: -v f="craft_handover_$1" '$1 == f { print $2 }')))
    done
    echo "$t"
}
write_bytes() {
    local t=0 p
    for p in "$@"; do t=$((t + $(awk '$1 == "write_bytes:" { print $2 }' "/proc/$p/io"))); done
    echo "$t"
}
HZ=$(getconf CLK_TCK)

# "syncs gid:commit gid:commit ...": the three processes' fdatasyncs (sharded: of their
# shared logs), and each group's commit index as the first process sees it (unsharded: the
# one group, as "0").
raft_io() {
    local syncs=0 p
    for p in $BASE $((BASE + 1)) $((BASE + 2)); do
        syncs=$((syncs + $(cli "$p" info raft | awk -F: '
            $1 == "disk_syncs" { d = $2 } $1 == "host_log_syncs" { h = $2; sharded = 1 }
            END { print sharded ? h : d }')))
    done
    echo "$syncs $(cli "$BASE" info raft | awk -F'[:,=]' '
        /^commit_index:/ { main = $2 }
        /^group[0-9]/ { sub("group", "", $1); printf "%s:%s ", $1, $9; n++ }
        END { if (!n) printf "0:%s", main }')"
}

# shape GROUPS TEST CLIENTS PIPELINE [plain]: one redis-benchmark run and its figures;
# plain: a client that knows nothing of the cluster, through the first process.
shape() {
    local g=$1 t=$2 c=$3 p=$4 plain=${5:-} io1 io2 before after line
    # redis-benchmark --cluster wants two masters at least: one group is benchmarked
    # through its leader's port, as a cluster client would reach it.
    local target=(--cluster -p "$BASE")
    [ "$g" -le 1 ] && target=(-p "$LEADER1")
    [ -n "$plain" ] && target=(-p "$BASE")
    before=$(cpu_ticks $PIDS)
    io1=$(raft_io)
    line=$(redis-benchmark "${target[@]}" -c "$c" -n "$N" -P "$p" -r 100000 -t "$t" \
        --csv 2>/dev/null | tr -d '"' | awk -F, '$1 ~ /^(SET|GET)$/ { print $2, $5, $7 }')
    after=$(cpu_ticks $PIDS)
    io2=$(raft_io)
    awk -v g="$g" -v shape="${t^^} -c$c -P$p" -v plain="$plain" -v line="$line" \
        -v cpu=$((after - before)) \
        -v hz="$HZ" -v n="$N" -v io1="$io1" -v io2="$io2" 'BEGIN {
        split(line, f, " "); split(io1, a, " "); split(io2, b, " ")
        if (g == 0) g = "none"
        if (plain != "") shape = shape " plain"
        total = 0
        for (i = 2; i in b; i++) {
            split(a[i], x, ":"); split(b[i], y, ":"); d[i] = y[2] - x[2]; id[i] = y[1]
            total += d[i]
        }
        shares = ""
        for (i = 2; i in b; i++) {
            if (total == 0) break
            if (shares != "") shares = shares " "
            shares = shares sprintf("g%s %.0f%%", id[i], 100 * d[i] / total)
        }
        if (shares == "") shares = "- (nothing committed)"
        per = "-"
        if (total > 0 && shape ~ /^SET/) per = sprintf("%.3f", (b[1] - a[1]) / total)
        printf "%-7s %-21s %9s %6s %6s %9.1f %10s  %s\n", g, shape, f[1], f[2], f[3],
            cpu * 1e6 / hz / n, per, shares
    }'
}

echo "redis-benchmark --cluster -r 100000 -n $N, $(nproc) CPUs; craftkv: 3 processes on this"
echo "machine, each a replica of every group, fdatasync on. CPU: the three processes summed."
echo "groups none: the unsharded server (one group, no controller), for comparison."
printf '%-7s %-21s %9s %6s %6s %9s %10s  %s\n' groups shape ops/s p50ms p99ms cpu-us/req \
    syncs/entry "committed entries by group"
last=""
for g in $COUNTS; do
    stop_cluster
    sharding=(--groups "$g")
    [ "$g" = 0 ] && sharding=() # the unsharded server, for comparison
    "$BIN" local --nodes 3 "${sharding[@]}" --dir "$TMP/g$g" --base-port "$BASE" \
        >"$TMP/local$g.log" 2>&1 &
    LOCAL_PID=$!
    ok=0
    for _ in $(seq 1 300); do
        if [ "$g" = 0 ] && cli "$BASE" info raft | grep -q '^leader_id:[1-9]'; then ok=1; break; fi
        if [ "$g" != 0 ] && settled "$g"; then ok=1; break; fi
        sleep 0.1
    done
    [ "$ok" = 1 ] || { cat "$TMP/local$g.log"; echo "craftkv: $g groups did not settle" >&2; exit 1; }
    PIDS=$(pgrep -P "$LOCAL_PID" | tr '\n' ' ')
    LEADER1=""
    for p in $BASE $((BASE + 1)) $((BASE + 2)); do
        cli "$p" info raft | grep -qE '^(group1:role|role):leader' && LEADER1=$p
    done
    [ "$(echo "$PIDS" | wc -w)" = 3 ] || { echo "craftkv: expected 3 processes" >&2; exit 1; }
    for s in "set 50 1" "set 50 16" "get 50 1" "get 50 16"; do
        read -r t c p <<<"$s"
        shape "$g" "$t" "$c" "$p"
    done
    if [ "$g" -ge 2 ]; then
        # A plain client through one process: its pipeline spans the groups (rounds).
        shape "$g" set 50 16 plain
        shape "$g" get 50 16 plain
    fi
    last=$g
done

# ---- moving one slot ----
if [ "${last:-1}" -lt 2 ]; then
    echo "(the slot move needs at least 2 groups: GROUP_COUNTS)"
    exit 0
fi
echo
echo "Moving one slot of 64 KiB values (CRAFT.SHARD MOVE, answered once every group settled):"
printf '%-8s %6s %12s %9s %8s %12s %16s\n' size keys key-bytes seconds entries payload-bytes \
    written-bytes
n=0
for mb in $SIZES; do
    n=$((n + 1))
    tag="mv$n"
    slot=$(cli "$BASE" cluster keyslot "{$tag}")
    # Into group 1 while empty, filled there, then timed to group 2.
    [ "$(cli "$BASE" craft.shard move "$slot" "$slot" 1)" = OK ] ||
        { echo "craftkv: could not place slot $slot in group 1" >&2; exit 1; }
    keys=$((mb * 16))
    awk -v keys="$keys" -v tag="$tag" 'BEGIN {
        v = "v"
        while (length(v) < 65536) v = v v
        ORS = ""
        for (i = 0; i < keys; i++) {
            k = "{" tag "}:" i
            printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$65536\r\n", length(k), k
            print v
            printf "\r\n"
        }
    }' | redis-cli -p "$BASE" --pipe >"$TMP/pipe.log" 2>&1 ||
        { cat "$TMP/pipe.log"; echo "craftkv: filling slot $slot failed" >&2; exit 1; }
    count=$(cli "$BASE" cluster countkeysinslot "$slot")
    [ "$count" = "$keys" ] || { echo "craftkv: slot $slot holds $count keys, want $keys" >&2; exit 1; }
    w1=$(write_bytes $PIDS)
    e1=$(handover entries)
    b1=$(handover bytes)
    t1=$(date +%s.%N)
    out=$(cli "$BASE" craft.shard move "$slot" "$slot" 2)
    t2=$(date +%s.%N)
    w2=$(write_bytes $PIDS)
    e2=$(handover entries)
    b2=$(handover bytes)
    awk -v mb="$mb" -v keys="$keys" -v t1="$t1" -v t2="$t2" -v w=$((w2 - w1)) -v out="$out" \
        -v kb=$((keys * (65536 + ${#tag} + 8))) -v e=$((e2 - e1)) -v b=$((b2 - b1)) 'BEGIN {
        note = ""
        if (out != "OK") note = "  (answered: " out ")"
        printf "%-8s %6d %12d %9.2f %8d %12d %16d%s\n", mb " MB", keys, kb, t2 - t1, e, b, w,
            note
    }'
done
