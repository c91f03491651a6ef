#!/usr/bin/env bash
# Black-box network partitions between real craftkv processes. Each node runs in its own
# network namespace, joined to the others by a veth link to a bridge in a hub namespace
# (10.77.0.N, the hub 10.77.0.254, where the clients run); iptables rules in a node's
# namespace cut its links one way (INPUT or OUTPUT) or both, for peer traffic only: clients
# always reach every node. Needs root, network namespaces and iptables (scripts/deps.sh
# installs it): where any is missing the test says so and skips (it passes nothing and
# fails nothing). The CI machine runs as root.
#
# Under an INCR load through every node, one fault at a time, each healed before the next:
#   1. the leader cut off both ways (a minority of one): the majority elects and writes; a
#      read at the old leader never returns the value the majority overwrote;
#   2. a follower cut off both ways, then healed: it catches up;
#   3. the leader deaf (drops what the others send, its own messages still leave): a new
#      leader elsewhere, and writes;
#   4. a bridge: nodes 1 and 3 cannot talk, node 2 talks to both: writes go on;
# then: every node ends with the same counter, acknowledged <= counter <= acknowledged + in
# doubt (exactly once), each client's replies increase, writes go on. Waits are bounded (a
# hang fails) but never decide speed.
# Usage: tests/blackbox/craftkv_partition.sh path/to/craftkv
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

skip() {
    echo "skipped: $1"
    echo "0 passed, 0 failed"
    exit 0
}
[ "$(id -u)" = 0 ] || skip "not root (network namespaces and iptables need it)"
command -v iptables >/dev/null || skip "iptables not installed (scripts/deps.sh installs it)"
command -v ip >/dev/null || skip "ip (iproute2) not installed"

bb_init partition 26000 300 3 "$@"

NETPFX=10.77.0
HUB=crk$$h
NS=([1]=crk$$n1 [2]=crk$$n2 [3]=crk$$n3)
PEER_PORT=7100
CLIENT_PORT=7000
CADDR() { echo "$NETPFX.$1:$CLIENT_PORT"; }
PADDR() { echo "$NETPFX.$1:$PEER_PORT"; }
CLUSTER=""
for i in 1 2 3; do CLUSTER+="${CLUSTER:+,}$i=$(PADDR $i)/$(CADDR $i)"; done
# Clients run in the hub.
cli() { local i=$1; shift; timeout 10 ip netns exec "$HUB" redis-cli -h "$NETPFX.$i" -p "$CLIENT_PORT" "$@" 2>&1; }

netns_down() {
    for i in 1 2 3; do ip netns del "${NS[$i]}" 2>/dev/null; done
    ip netns del "$HUB" 2>/dev/null
}
cleanup_all() {
    bb_cleanup
    netns_down
}
trap cleanup_all EXIT

if ! ip netns add "$HUB" 2>/dev/null; then
    trap - EXIT
    bb_cleanup
    skip "network namespaces not allowed here"
fi
setup() {
    ip -n "$HUB" link set lo up &&
        ip -n "$HUB" link add br0 type bridge &&
        ip -n "$HUB" addr add "$NETPFX.254/24" dev br0 &&
        ip -n "$HUB" link set br0 up || return 1
    for i in 1 2 3; do
        ip netns add "${NS[$i]}" &&
            ip link add "ck$$h$i" type veth peer name "ck$$n$i" &&
            ip link set "ck$$h$i" netns "$HUB" &&
            ip link set "ck$$n$i" netns "${NS[$i]}" &&
            ip -n "$HUB" link set "ck$$h$i" master br0 &&
            ip -n "$HUB" link set "ck$$h$i" up &&
            ip -n "${NS[$i]}" link set lo up &&
            ip -n "${NS[$i]}" addr add "$NETPFX.$i/24" dev "ck$$n$i" &&
            ip -n "${NS[$i]}" link set "ck$$n$i" up || return 1
        ip netns exec "${NS[$i]}" iptables -L >/dev/null 2>&1 || return 2
    done
}
setup
rc=$?
if [ $rc = 2 ]; then
    trap - EXIT
    cleanup_all
    skip "iptables does not work in a network namespace here"
fi
[ $rc = 0 ] && ok "three nodes in network namespaces behind a bridge" ||
    bad "three nodes in network namespaces behind a bridge"

# Node i drops what comes from j (in) / what it sends to j (out); heal clears every rule.
cut_in() { ip netns exec "${NS[$1]}" iptables -A INPUT -s "$NETPFX.$2" -j DROP; }
cut_out() { ip netns exec "${NS[$1]}" iptables -A OUTPUT -d "$NETPFX.$2" -j DROP; }
cut_both() { cut_in "$1" "$2"; cut_out "$1" "$2"; cut_in "$2" "$1"; cut_out "$2" "$1"; }
heal() { for i in 1 2 3; do ip netns exec "${NS[$i]}" iptables -F; done; }

start() { # id
    ip netns exec "${NS[$1]}" "$BIN" --id "$1" --data-dir "$TMP/n$1" \
        --initial-cluster "$CLUSTER" --timeout-ms 3000 2>>"$TMP/n$1.log" &
    PID[$1]=$!
}
for i in 1 2 3; do start $i; done

# Waits (up to 30 s) for one of the given nodes to lead and take a write through it.
wait_writable() { # nodes...
    local l r
    for _ in $(seq 1 150); do
        l=$(leader "$@")
        if [ -n "$l" ]; then
            r=$(cli "$l" set probe "$RANDOM")
            if [ "$r" = OK ]; then
                echo "$l"
                return
            fi
        fi
        sleep 0.2
    done
}

L=$(wait_writable 1 2 3)
[ -n "$L" ] && ok "a leader takes writes (node $L)" || bad "a leader takes writes"

# Writers: rounds of 4 pipelined INCRs through one node (common.bash, bb_incr_client).
client() {
    bb_incr_client "$1" 4 ip netns exec "$HUB" bash "$BB_DIR/resp_pipe.bash" "$NETPFX.$2" "$CLIENT_PORT"
}
for c in 1 2 3; do
    client "$c" "$c" &
    CLIENTS+=($!)
done
sleep 1

others() { local i; for i in 1 2 3; do [ "$i" = "$1" ] || echo "$i"; done; }

# 1. The leader alone on its side.
L=$(wait_writable 1 2 3)
if [ -n "$L" ]; then
    r=$(cli "$L" set p old)
    [ "$r" = OK ] || bad "write before the cut" "$r"
    for o in $(others "$L"); do cut_both "$L" "$o"; done
    N=$(wait_writable $(others "$L"))
    if [ -n "$N" ]; then
        ok "the majority elects a leader without the old one (node $N)"
        r=$(cli "$N" set p new)
        [ "$r" = OK ] && ok "the majority writes" || bad "the majority writes" "$r"
        stale=0
        for _ in 1 2; do
            g=$(cli "$L" get p)
            [ "$g" = old ] && stale=$((stale + 1))
            sleep 0.1
        done
        [ "$stale" = 0 ] && ok "no stale read at the cut-off leader (last answer '$(tr '\n' ' ' <<<"$g")')" ||
            bad "no stale read at the cut-off leader" "$stale of 2 reads answered the overwritten value"
    else
        bad "the majority elects a leader without the old one"
    fi
    heal
    g=""
    for _ in $(seq 1 150); do
        g=$(cli "$L" get p)
        [ "$g" = new ] && break
        sleep 0.2
    done
    check "the old leader catches up after the heal" new "$g"
else
    bad "a leader before the first cut"
fi

# 2. A follower alone on its side, then healed.
L=$(wait_writable 1 2 3)
if [ -n "$L" ]; then
    F=$(others "$L" | head -1)
    for o in $(others "$F"); do cut_both "$F" "$o"; done
    r=$(cli "$L" set q "while-$F-was-away")
    [ "$r" = OK ] && ok "writes go on without a follower" || bad "writes go on without a follower" "$r"
    heal
    g=""
    for _ in $(seq 1 150); do
        g=$(cli "$F" get q)
        [ "$g" = "while-$F-was-away" ] && break
        sleep 0.2
    done
    check "the follower catches up after the heal" "while-$F-was-away" "$g"
fi

# 3. A deaf leader: it drops everything the others send; its own packets still leave.
L=$(wait_writable 1 2 3)
if [ -n "$L" ]; then
    for o in $(others "$L"); do cut_in "$L" "$o"; done
    N=$(wait_writable $(others "$L"))
    [ -n "$N" ] && ok "a deaf leader is replaced (node $N leads and writes)" ||
        bad "a deaf leader is replaced"
    heal
fi

# 4. A bridge: 1 and 3 cannot talk; 2 talks to both.
cut_both 1 3
N=$(wait_writable 1 2 3)
[ -n "$N" ] && ok "writes go on across a bridge (node $N leads)" || bad "writes go on across a bridge"
heal

sleep 1
touch "$TMP/stop"
for c in "${CLIENTS[@]}"; do wait "$c"; done
CLIENTS=()
acked=0; errors=0; order=0
for c in 1 2 3; do
    read -r a e o <"$TMP/client.$c" || { bad "client $c reported"; continue; }
    acked=$((acked + a)); errors=$((errors + e)); order=$((order + o))
done
echo "acknowledged $acked, in doubt $errors"
[ "$acked" -gt 0 ] && ok "writes were acknowledged during the partitions ($acked)" ||
    bad "writes were acknowledged during the partitions"
[ "$order" -eq 0 ] && ok "each client's replies increase" || bad "each client's replies increase" "$order out of order"

L=$(wait_writable 1 2 3)
[ -n "$L" ] && ok "a leader after the partitions (node $L)" || bad "a leader after the partitions"
v=()
for i in 1 2 3; do
    g=""
    for _ in $(seq 1 150); do
        g=$(cli "$i" get c)
        [ "$g" = "$(cli "$L" get c)" ] && break
        sleep 0.2
    done
    v[$i]=${g:-none}
done
if [ "${v[1]}" = "${v[2]}" ] && [ "${v[2]}" = "${v[3]}" ]; then
    ok "every node has the same counter (${v[1]})"
else
    bad "every node has the same counter" "${v[*]}"
fi
if [[ "${v[1]}" =~ ^[0-9]+$ ]] && [ "${v[1]}" -ge "$acked" ] && [ "${v[1]}" -le $((acked + errors)) ]; then
    ok "exactly once: $acked <= ${v[1]} <= $((acked + errors))"
else
    bad "exactly once" "counter ${v[1]}, acknowledged $acked, in doubt $errors"
fi
for i in 1 2 3; do kill -0 "${PID[$i]}" 2>/dev/null || bad "node $i still running"; done
trap - EXIT
bb_finish
rc=$?
netns_down
exit $rc
