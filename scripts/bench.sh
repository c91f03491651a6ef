#!/usr/bin/env bash
# Runs every benchmark of the release build (`make bench`), then the runtime comparison side
# by side in one run: io_floor (this machine's fdatasync and loopback floor), craft's
# runtime bench (tcp, single, mem) and canonical raft (scripts/bench_canonical.sh, with its
# default snapshotting and with --snapshot-threshold 1000000), and prints a summary table
# against the runtime's targets. Benchmarks print figures; they never pass or fail on time,
# so this only fails if a benchmark itself errors.
#
# Environment: OUT (build directory, as in `make OUT=...`; default build), BENCH_DIR
# (directory for the disk benches' files; default /tmp). Takes about a minute.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN="${OUT:-build}/bench"
DISK_DIR="${BENCH_DIR:-/tmp}"

found=0
status=0
# The comparison programs run below, in their own section.
for b in "$BIN"/*; do
    [[ -f "$b" && -x "$b" ]] || continue
    case "$(basename "$b")" in
    io_floor | runtime_bench | raft_canonical_bench) continue ;;
    esac
    found=1
    printf '=== %s\n' "$b"
    "$b" || status=$?
done
if [ "$found" -eq 0 ]; then
    echo "no benchmarks yet"
fi

# ---- the runtime comparison ----
log="$(mktemp)"
trap 'rm -f "$log" "$log.one"' EXIT

# Runs a command, showing its output and keeping its standard output for the summary.
# With --as NAME first, lines starting "canonical " are kept as "NAME " (to tell two
# canonical runs apart).
run() {
    local as=""
    if [ "$1" = "--as" ]; then
        as="$2"
        shift 2
    fi
    printf '=== %s\n' "$*"
    local rc=0
    "$@" | tee "$log.one" || rc=$?
    if [ -n "$as" ]; then
        sed "s/^canonical /$as /" "$log.one" >>"$log"
    else
        cat "$log.one" >>"$log"
    fi
    if [ "$rc" -ne 0 ]; then
        echo "(exited with $rc)"
        status=$rc
    fi
}

# Prints the value of key=... on the first line of the log matching the pattern ("" if none).
field() {
    { grep -E -- "$1" "$log" || true; } | sed -n '1p' | tr ' ' '\n' | sed -n "s/^$2=//p"
}

if [ -x "$BIN/io_floor" ]; then
    run "$BIN/io_floor" --dir "$DISK_DIR"
fi
if [ -x "$BIN/runtime_bench" ]; then
    run "$BIN/runtime_bench" --mode single --dir "$DISK_DIR"
    run "$BIN/runtime_bench" --mode tcp --dir "$DISK_DIR"
fi
run scripts/bench_canonical.sh --dir "$DISK_DIR"
run --as canonical_nosnap scripts/bench_canonical.sh --dir "$DISK_DIR" --snapshot-threshold 1000000
if [ -x "$BIN/runtime_bench" ]; then
    run "$BIN/runtime_bench" --mode mem
fi

# ---- summary ----
sync_p50=$(field '^io_floor fdatasync ' p50_us)
rtt_p50=$(field '^io_floor loopback_rtt ' p50_us)
craft_tcp=$(field '^craft mode=tcp ' commits_per_s)
craft_single=$(field '^craft mode=single ' p50_us)
craft_mem=$(field '^craft mode=mem ' commits_per_s)
canon=$(field '^canonical inflight=256 ' commits_per_s)
canon_nosnap=$(field '^canonical_nosnap inflight=256 ' commits_per_s)
canon_single=$(field '^canonical inflight=1 ' p50_us)

# ratio A B: A/B with one decimal, or n/a.
ratio() {
    if [[ -n "$1" && -n "$2" ]]; then
        awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }'
    else
        echo "n/a"
    fi
}
# verdict CONDITION-AS-AWK A B: "met" / "missed" / "n/a".
verdict() {
    if [[ -n "$2" && -n "$3" ]]; then
        awk -v a="$2" -v b="$3" "BEGIN { print ($1) ? \"met\" : \"missed\" }"
    else
        echo "n/a"
    fi
}
# io_floor's own bound: 1.2 x (fdatasync p50 + loopback p50).
bound=$(field '^io_floor one_at_a_time_bound_us=' one_at_a_time_bound_us)

echo "=== summary (figures of this run; the machine's load moves them)"
printf '%-44s %12s   %-34s %s\n' "figure" "value" "target" "result"
printf '%-44s %12s   %-34s %s\n' "craft tcp commits/s (256 in flight)" "${craft_tcp:-n/a}" "" ""
printf '%-44s %12s   %-34s %s\n' "  canonical, default snapshots" "${canon:-n/a}" \
    ">= 20x: craft is $(ratio "$craft_tcp" "$canon")x" "$(verdict 'a >= 20 * b' "$craft_tcp" "$canon")"
printf '%-44s %12s   %-34s %s\n' "  canonical, --snapshot-threshold 1000000" "${canon_nosnap:-n/a}" \
    ">= 20x: craft is $(ratio "$craft_tcp" "$canon_nosnap")x" \
    "$(verdict 'a >= 20 * b' "$craft_tcp" "$canon_nosnap")"
printf '%-44s %12s   %-34s %s\n' "craft single p50 us (1 in flight)" "${craft_single:-n/a}" \
    "<= 1.2*(fsync+rtt) = ${bound:-n/a}" "$(verdict 'a <= b' "$craft_single" "$bound")"
printf '%-44s %12s   %-34s %s\n' "  io_floor fdatasync p50 / loopback p50 us" \
    "${sync_p50:-n/a}/${rtt_p50:-n/a}" "" ""
printf '%-44s %12s   %-34s %s\n' "  canonical single p50 us" "${canon_single:-n/a}" "" ""
printf '%-44s %12s   %-34s %s\n' "craft mem commits/s (4096 in flight)" "${craft_mem:-n/a}" \
    "> 1000000" "$(verdict 'a > b' "$craft_mem" 1000000)"

# ---- craftkv against redis-server (redis-benchmark, side by side) ----
if [ -x "${OUT:-build}/bin/craftkv" ]; then
    printf '\n=== bench/craftkv_vs_redis.sh\n'
    bench/craftkv_vs_redis.sh "${OUT:-build}/bin/craftkv" || status=$?
    printf '\n=== bench/craftkv_suite.sh\n'
    bench/craftkv_suite.sh "${OUT:-build}/bin/craftkv" || status=$?
fi
exit "$status"
