#!/usr/bin/env bash
# Black-box test of craftkv's storage: snapshots triggered by --snapshot-entries keep the
# log short; a follower that missed more than the retained log catches up from a snapshot;
# every node restarts with its data; a corrupt WAL, a corrupt LMDB file and a data dir that
# is not a directory stop the start with an error naming the cause and change nothing on
# disk. Usage: tests/blackbox/craftkv_storage.sh path/to/craftkv
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
bb_init storage 23900 10 3 "$@"
SNAP=(--snapshot-entries 300 --trailing-entries 100)

start() { # id [full]
    if [ "${2:-}" = full ]; then
        "$BIN" --id "$1" --data-dir "$TMP/n$1" --initial-cluster "$CLUSTER" "${SNAP[@]}" 2>>"$TMP/n$1.log" &
    else
        "$BIN" --id "$1" --data-dir "$TMP/n$1" "${SNAP[@]}" 2>>"$TMP/n$1.log" &
    fi
    PID[$1]=$!
}
info() { cli "$1" info raft | tr -d '\r' | sed -n "s/^$2://p"; }
# Writes keys PREFIX0..PREFIX(N-1) with values v<i> through node $1, pipelined.
load() {
    local node=$1 prefix=$2 n=$3
    for i in $(seq 0 $((n - 1))); do printf 'SET %s%d v%d\r\n' "$prefix" "$i" "$i"; done |
        timeout 60 redis-cli -p "$(CPORT "$node")" >"$TMP/load.out" 2>&1
    grep -c '^OK$' "$TMP/load.out"
}

for i in 1 2 3; do start $i full; done
L=$(wait_leader)
[ -n "$L" ] && ok "a leader is elected (node $L)" || bad "a leader is elected"

check "1000 writes acknowledged" 1000 "$(load 1 a 1000)"
sleep 1
for i in 1 2 3; do
    si=$(info $i snapshot_index)
    [ "${si:-0}" -gt 0 ] 2>/dev/null && ok "node $i took a snapshot (index $si)" || bad "node $i took a snapshot" "$si"
done

# A follower misses more than the retained log: it must catch up from a snapshot.
L=$(wait_leader); F=$(( L % 3 + 1 ))
stop "$F"
check "1500 writes while node $F is down" 1500 "$(load "$L" b 1500)"
start "$F"
for _ in $(seq 1 100); do
    [ "$(info "$F" applied_index)" -ge "$(info "$L" commit_index)" ] 2>/dev/null && break
    sleep 0.2
done
check "node $F caught up: a key written while it was down" v1499 "$(cli "$F" get b1499)"
check "node $F has the early keys" v0 "$(cli "$F" get a0)"
check "node $F dbsize" 2500 "$(cli "$F" dbsize)"
si=$(info "$F" snapshot_index)
[ "${si:-0}" -gt 1000 ] 2>/dev/null && ok "node $F restored a recent snapshot (index $si)" || bad "node $F restored a recent snapshot" "$si"

# Every node restarts with its data.
for i in 1 2 3; do stop $i; done
for i in 1 2 3; do start $i; done
L=$(wait_leader)
[ -n "$L" ] && ok "a leader after a full restart" || bad "a leader after a full restart"
for i in 1 2 3; do check "node $i after restart: dbsize" 2500 "$(cli $i dbsize)"; done
check "a write after restart" OK "$(cli 2 set after restart)"

# Broken data directories: a clear error, exit non-zero, nothing changed on disk.
stop 3
# What is on disk under a directory: every file's size, allocated blocks and content hash;
# of a file over 256 MiB, the hash of its first 256 MiB only. The LMDB file of a store with
# a write map is a sparse file the size of the map (16 GiB): hashing its holes took a
# minute, and its pages are allocated from the start (the block count covers the rest).
# Modification times are left out: opening LMDB read-write touches its file's mtime.
fingerprint() {
    local f
    find "$1" -type f ! -name 'lock.mdb' -printf '%p %s %b\n' | sort
    find "$1" -type f ! -name 'lock.mdb' | sort | while read -r f; do
        printf '%s %s\n' "$f" "$(head -c 268435456 "$f" | md5sum)"
    done
}
sum() { fingerprint "$TMP/n3"; }
# A record early in the newest segment, with intact records after it: corruption, not a
# torn tail (which recovery would truncate).
wal=$(ls "$TMP"/n3/raft/wal/*.wal | tail -n 1)
printf 'garbage!garbage!' | dd of="$wal" bs=1 seek=200 conv=notrunc 2>/dev/null
before=$(sum)
out=$(timeout 20 "$BIN" --id 3 --data-dir "$TMP/n3" 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "$(basename "$wal")" && ok "corrupt WAL: error names the file" ||
    bad "corrupt WAL: error names the file" "rc $rc: $out"
[ "$before" = "$(sum)" ] && ok "corrupt WAL: nothing changed on disk" || bad "corrupt WAL: nothing changed on disk"

rm -rf "$TMP/n3b" && cp -a "$TMP/n2" "$TMP/n3b" 2>/dev/null
stop 2
rm -rf "$TMP/n3b" && cp -a "$TMP/n2" "$TMP/n3b"
printf 'this is not an LMDB file at all' | dd of="$TMP/n3b/kv/data.mdb" bs=1 seek=0 conv=notrunc 2>/dev/null
sumb() { fingerprint "$TMP/n3b"; }
before=$(sumb)
out=$(timeout 20 "$BIN" --id 2 --data-dir "$TMP/n3b" 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "kv" && ok "corrupt LMDB file: error names the store" ||
    bad "corrupt LMDB file: error names the store" "rc $rc: $out"
[ "$before" = "$(sumb)" ] && ok "corrupt LMDB file: nothing changed on disk" || bad "corrupt LMDB file: nothing changed on disk"

touch "$TMP/plainfile"
out=$(timeout 20 "$BIN" --id 1 --data-dir "$TMP/plainfile" --initial-cluster "$CLUSTER" 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "plainfile" && ok "data dir that is a file: clear error" ||
    bad "data dir that is a file: clear error" "rc $rc: $out"

bb_finish
