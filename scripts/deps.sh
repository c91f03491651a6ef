#!/usr/bin/env bash
# Installs the Debian packages that building and testing craft need, if any is missing.
#
# Checks each package with dpkg first, so on a ready machine this does nothing and needs
# no network. Add a package by appending it to PACKAGES.
set -euo pipefail

# build-essential: gcc and make; clang + libclang-rt-14-dev: libFuzzer and the sanitizer
# runtimes (BUILD=fuzz); valgrind: the leak check of scripts/test.sh; zlib1g-dev: the
# checksum library (crc32) for on-disk data; liblmdb-dev: craftkv's key/value storage;
# redis-tools: redis-cli and redis-benchmark, the real clients the craftkv tests drive;
# python3-redis: redis-py, whose cluster client the cluster black-box test drives;
# iproute2 and iptables: network namespaces and the cuts of the partition black-box test;
# curl: scrapes the metrics endpoint; pkg-config: builds the examples against an installed
# copy (scripts/install_check.sh); libhiredis-dev: hiredis, the C client the data-types
# black-box test builds a small program against.
PACKAGES=(build-essential clang libclang-rt-14-dev valgrind zlib1g-dev liblmdb-dev redis-tools
          python3-redis iproute2 iptables curl pkg-config libhiredis-dev)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg -s "$pkg" >/dev/null 2>&1; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "deps.sh: missing packages (${missing[*]}) and no apt-get: install them by hand" >&2
    exit 1
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo_cmd=(sudo)
    else
        echo "deps.sh: missing packages (${missing[*]}); run as root or install sudo" >&2
        exit 1
    fi
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update
"${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
