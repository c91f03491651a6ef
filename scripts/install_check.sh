#!/usr/bin/env bash
# `make install` into a temporary prefix, then what an application does with the installed
# copy alone (pkg-config; no -Isrc, no build/ paths): build examples/counter.c against the
# shared library and against the static one, build the C client example against
# libcraftkv, and run the counter as a one-node cluster. Part of the test command (step a).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
prefix=$tmp/prefix
make -s install PREFIX="$prefix" >/dev/null
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig

fail() { echo "install_check: $*" >&2; exit 1; }
[ "$(pkg-config --modversion libcraft)" = "$(make -s -f Makefile --eval 'v:;@echo $(VERSION)' v)" ] ||
    fail "libcraft.pc has the wrong version"
for h in craft.h craft_base.h craft_kv_client.h; do
    [ -f "$prefix/include/$h" ] || fail "$h not installed"
done
for l in libcraft libcraftkv; do
    [ -L "$prefix/lib/$l.so" ] && [ -L "$prefix/lib/$l.so.0" ] && [ -f "$prefix/lib/$l.a" ] ||
        fail "$l: missing .so links or .a"
    soname=$(readelf -d "$prefix/lib/$l.so" | sed -n 's/.*SONAME.*\[\(.*\)\].*/\1/p')
    [ "$soname" = "$l.so.0" ] || fail "$l soname is '$soname'"
    # only the public API (craft_*) is exported
    other=$(nm -D --defined-only "$prefix/lib/$l.so" | awk '{print $3}' | grep -v '^craft_' || true)
    [ -z "$other" ] || fail "$l exports non-craft symbols: $(echo $other | head -c 200)"
done
for p in craftkv craftkv-check craft-log; do
    "$prefix/bin/$p" --help >/dev/null 2>&1 || fail "$p --help"
done
[ -f "$prefix/share/craft/craftkv.service" ] || fail "the example systemd unit is missing"

CFLAGS_APP=(-std=c11 -Wall -Wextra -Werror -pthread)
# shellcheck disable=SC2046 # pkg-config's output is a list of flags
cc "${CFLAGS_APP[@]}" examples/counter.c $(pkg-config --cflags --libs libcraft) -o "$tmp/counter"
readelf -d "$tmp/counter" | grep -q 'NEEDED.*libcraft\.so\.0' || fail "counter does not use libcraft.so.0"
# shellcheck disable=SC2046
cc "${CFLAGS_APP[@]}" examples/counter.c $(pkg-config --cflags libcraft) -L"$prefix/lib" \
    -Wl,-Bstatic -lcraft -Wl,-Bdynamic $(pkg-config --static --libs-only-l libcraft | sed 's/-lcraft\b//') \
    -o "$tmp/counter_static"
! readelf -d "$tmp/counter_static" | grep -q 'libcraft' || fail "counter_static needs libcraft.so"
# shellcheck disable=SC2046
cc "${CFLAGS_APP[@]}" examples/kv_client_demo.c $(pkg-config --cflags --libs libcraftkv) \
    -o "$tmp/kv_client_demo"

# A one-node cluster: ask until it has elected itself (bounded), then add and read.
port=$((20000 + RANDOM % 20000))
for bin in counter counter_static; do
    rm -rf "$tmp/data"
    coproc C { LD_LIBRARY_PATH=$prefix/lib exec "$tmp/$bin" --id 1 --data-dir "$tmp/data" \
                   --cluster "1=127.0.0.1:$port" 2>&1; }
    pid=$C_PID
    got=
    for _ in $(seq 1 150); do
        echo get >&"${C[1]}"
        IFS= read -r -t 10 got <&"${C[0]}" || fail "$bin: no answer"
        [ "$got" = "counter = 0" ] && break
        sleep 0.2
    done
    [ "$got" = "counter = 0" ] || fail "$bin: never elected itself ($got)"
    printf 'add 5\nadd 2\nget\n' >&"${C[1]}"
    for _ in 1 2 3; do IFS= read -r -t 10 got <&"${C[0]}" || fail "$bin: no answer to add"; done
    [ "$got" = "counter = 7" ] || fail "$bin: counter is '$got', want 7"
    exec {C[1]}>&-
    wait "$pid" || fail "$bin: exit status $?"
    pid=
    port=$((port + 1))
done
echo "install_check: ok (headers, libraries, pkg-config, programs; counter built and run both ways)"
