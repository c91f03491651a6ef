#!/usr/bin/env bash
# A RESP client that never sends a command twice (sourced by nothing: run as a program,
# also inside a network namespace with `ip netns exec`): reads commands from stdin, one per
# line, words separated by spaces (no quoting), sends them all pipelined on one TCP
# connection to HOST:PORT, and prints one line per reply received, in order: an integer's
# digits, a simple string, an error's text with its '-', a bulk string's bytes ("(nil)" for
# a null one). A lost connection ends the output early: the caller counts the missing
# replies as in doubt. redis-cli is no such client: when the connection drops it connects
# again and sends the same command once more, so a command whose reply was lost can run
# twice (on a new connection, hence in a new session), which an exactly-once count must
# not blame on the server.
# Usage: resp_pipe.bash HOST PORT  (bound its time from outside: `timeout`)
set -u
host=$1
port=$2
exec 3<>"/dev/tcp/$host/$port" || exit 1
n=0
req=""
while IFS= read -r line; do
    line=${line%$'\r'}
    [ -n "$line" ] || continue
    read -r -a words <<<"$line"
    req+="*${#words[@]}"$'\r\n'
    for w in "${words[@]}"; do
        req+="\$${#w}"$'\r\n'"$w"$'\r\n'
    done
    n=$((n + 1))
done
printf '%s' "$req" >&3 || exit 1
for ((k = 0; k < n; k++)); do
    IFS= read -r -u 3 reply || exit 1
    reply=${reply%$'\r'}
    case "$reply" in
    :*) echo "${reply#:}" ;;
    +*) echo "${reply#+}" ;;
    -*) echo "$reply" ;;
    \$-1) echo "(nil)" ;;
    \$*)
        IFS= read -r -u 3 bulk || exit 1
        echo "${bulk%$'\r'}"
        ;;
    *) exit 1 ;;
    esac
done
