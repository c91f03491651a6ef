#!/usr/bin/env bash
# Builds and runs the canonical raft comparison bench (bench/canonical/): libraft 0.15 from
# Debian, 3 nodes on libuv disk + TCP, measured in the shape of craft's runtime bench.
# Prints figures; it never passes or fails on time. Arguments go to the bench
# (e.g. --dir /var/tmp --commands 20000 --single 1000 --snapshot-threshold 1000000).
#
# Installs libraft-dev and libuv1-dev if missing (checked with dpkg first, like
# scripts/deps.sh), so on a ready machine it needs no network. Not part of `make`: the
# Makefile's bench/*.c wildcard does not reach bench/canonical/, and craft itself must not
# depend on libraft.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(libraft-dev libuv1-dev)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg -s "$pkg" >/dev/null 2>&1; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -ne 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "bench_canonical.sh: missing packages (${missing[*]}) and no apt-get: install them by hand" >&2
        exit 1
    fi
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo_cmd=(sudo)
        else
            echo "bench_canonical.sh: missing packages (${missing[*]}); run as root or install sudo" >&2
            exit 1
        fi
    fi
    echo "bench_canonical.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update
    "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi

OUT_BIN=build/bench/raft_canonical_bench
mkdir -p "$(dirname "$OUT_BIN")"
${CC:-cc} -std=c11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -Wvla bench/canonical/raft_canonical_bench.c -o "$OUT_BIN" -lraft -luv

"$OUT_BIN" "$@"
