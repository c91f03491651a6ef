#!/usr/bin/env bash
# Black-box test of craftkv on a full disk: node 3's data directory sits on a small tmpfs;
# writes of 100 KB values fill it, three times: while node 3 leads, while it follows, and
# while it follows with only its write-ahead log on a small disk (the state machine's LMDB
# fills first otherwise; a follower writes its log on the raft loop: runtime.md). The full
# node must stop acknowledging with a clear log line (no crash, nothing acknowledged lost),
# not lead, and the other two must go on serving reads and writes; every acknowledged write
# stays readable.
# Needs to mount a tmpfs (root): elsewhere it reports a skip and passes nothing.
# Usage: tests/blackbox/craftkv_diskfull.sh path/to/craftkv
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
bb_init diskfull 29000 300 3 "$@"

FULL="$TMP/full"
mkdir -p "$FULL"
if ! mount -t tmpfs -o size=110m tmpfs "$FULL" 2>/dev/null; then
    echo "skip: cannot mount a tmpfs here (not root?)"
    bb_finish
    exit $?
fi
unmount_full() { umount "$FULL" 2>/dev/null || umount -l "$FULL" 2>/dev/null; }
# Nodes stop before the tmpfs goes, and it goes before the temp dir is removed.
teardown() {
    for i in 1 2 3; do stop "$i"; done
    umount "$TMP/n3/raft/wal" 2>/dev/null
    unmount_full
}
trap 'teardown; bb_cleanup' EXIT

WHERE=dir # dir: node 3's whole data directory on the small disk; wal: only its log
dir() { if [ "$1" = 3 ] && [ "$WHERE" = dir ]; then echo "$FULL/n3"; else echo "$TMP/n$1"; fi; }
start() {
    "$BIN" --id "$1" --data-dir "$(dir "$1")" --initial-cluster "$CLUSTER" --timeout-ms 3000 \
        2>>"$TMP/n$1.log" &
    PID[$1]=$!
}
# fill ROLE: a fresh cluster whose node 3 (small disk) is the leader or a follower while
# its disk fills up.
fill() {
    local role=$1
    if [ "$WHERE" = wal ]; then
        # One 64 MiB segment fits, the next one does not.
        mkdir -p "$TMP/n3/raft/wal"
        mount -t tmpfs -o size=70m tmpfs "$TMP/n3/raft/wal"
    fi
    for i in 1 2 3; do start $i; done
    L=$(wait_leader)
    [ -n "$L" ] && ok "$role: a leader is elected (node $L)" || bad "$role: a leader is elected"
    if [ "$role" = leader ]; then
        [ "$L" = 3 ] || cli 1 raft.transfer 3 >/dev/null
        sleep 0.5
        check "$role: node 3 (small disk) leads" 3 "$(leader)"
    else
        [ "$L" != 3 ] || cli 1 raft.transfer 1 >/dev/null
        sleep 0.5
        L=$(leader)
        [ -n "$L" ] && [ "$L" != 3 ] && ok "$role: node 3 (small disk) follows" ||
            bad "$role: node 3 (small disk) follows" "leader: ${L:-none}"
    fi

    V=$(head -c 100000 /dev/zero | tr '\0' 'x')
    acked=0
    : >"$TMP/acked"
    extra=0
    for i in $(seq 1 900); do
        r=$(timeout 15 redis-cli -p "$(CPORT 1)" set "big$i" "$V" 2>&1)
        if [ "$r" = OK ]; then acked=$((acked + 1)); echo "$i" >>"$TMP/acked"; fi
        # a few writes more once the disk is full: they must go to the others
        grep -q "no space left on device" "$TMP/n3.log" && extra=$((extra + 1))
        [ "$extra" -ge 5 ] && break
    done
    check_has "$role: the full node names the cause" "no space left on device" "$(cat "$TMP/n3.log")"
    if [ "$WHERE" = wal ]; then
        check_has "$role: the log write is what failed" "after a disk write error" \
            "$(cat "$TMP/n3.log")"
    fi
    kill -0 "${PID[3]}" 2>/dev/null && ok "$role: the full node did not crash" ||
        bad "$role: the full node did not crash"
    check_has "$role: the full node reports it in INFO" "failed:no space left on device" \
        "$(cli 3 info raft)"
    L=$(wait_leader)
    [ -n "$L" ] && [ "$L" != 3 ] && ok "$role: another node leads (node $L)" ||
        bad "$role: another node leads" "leader: ${L:-none}"
    check "$role: writes go on without the full node" OK "$(cli 1 set after full)"
    check "$role: reads go on through node 2" full "$(cli 2 get after)"
    lost=0
    while read -r i; do
        [ "$(cli 2 strlen "big$i")" = 100000 ] || lost=$((lost + 1))
    done <"$TMP/acked"
    check "$role: every acknowledged write is readable ($acked)" 0 "$lost"
}

# A fresh cluster and an empty small disk for the next round.
reset() {
    for i in 1 2 3; do stop "$i"; done
    unmount_full
    umount "$TMP/n3/raft/wal" 2>/dev/null
    rm -rf "$TMP/n1" "$TMP/n2" "$TMP/n3"
    mount -t tmpfs -o size=110m tmpfs "$FULL"
    mv "$TMP/n3.log" "$TMP/n3-round$1.log" # the next round greps n3.log for its own error
}

fill leader
reset 1
fill follower
reset 2
WHERE=wal
fill follower-wal

trap - EXIT
teardown
bb_finish
