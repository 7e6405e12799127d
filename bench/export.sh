#!/usr/bin/env bash
# `kvctl export` of a large store, old against new, in the same run: builds
# kvserver and kvctl (release) in this checkout and in a copy of BASE (git
# archive), writes one data directory of KEYS keys with bench/datagen, then,
# ROUNDS times, starts the old server on a copy of it, times
# `kvctl export > /dev/null` (default page size, 100 keys a request), stops
# it, and does the same with the new server and kvctl. It prints each run's
# time and lines and the ratio old/new. Results: BENCHMARKS.md, "Ordered
# listing".
#
#   bench/export.sh                         # 1M keys, 1 round
#   KEYS=151000 ROUNDS=3 bench/export.sh
#
# A side whose export takes longer than LIMIT seconds is stopped there: the
# script reports the lines it had written and the time, and the rate
# (lines/s) stands for it (every page of the old listing scans the whole
# store, so its rate is the same from the first page to the last).
#
# Environment (default):
#   BASE (e9f3328)       the commit to compare with (before the ordered index)
#   KEYS (1000000)       keys in the store (16 bytes, `key:` + 12 digits)
#   VALUE_BYTES (16)     bytes per value
#   ROUNDS (1)           old/new pairs
#   LIMIT (900)          seconds an export may take before it is stopped
#   CARGO_TARGET_DIR     where cargo builds (default: target/); both builds
#                        share it
#   KEEP_TMP (0)         1: keep the temporary folder

bench_name=export.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

base=${BASE:-e9f3328}
keys=${KEYS:-1000000}
value_bytes=${VALUE_BYTES:-16}
rounds=${ROUNDS:-1}
limit=${LIMIT:-900}
export CARGO_TARGET_DIR=$target_dir
export RUST_LOG=warn

install_missing curl
mkdir "$tmp/base" "$tmp/old" "$tmp/new"
git -C "$repo" archive "$base" | tar -x -C "$tmp/base"
for side in base repo; do
    dir=$tmp/base
    [[ $side == repo ]] && dir=$repo
    echo "building kvserver and kvctl in $dir (release)"
    (cd "$dir" && cargo build --release -q -p kvserver -p kvctl)
    out=$tmp/old
    [[ $side == repo ]] && out=$tmp/new
    cp "$target_dir/release/kvserver" "$target_dir/release/kvctl" "$out/"
done
build_datagen
"$datagen" "$tmp/data" "$keys" "$value_bytes" snapshot | sed 's/^/  /'

# export SIDE ROUND: prints "SECONDS LINES" for one export by SIDE's binaries.
export_once() {
    local side=$1 dir=$tmp/run port pid started lines
    rm -rf "$dir"
    cp -a "$tmp/data" "$dir"
    port=$(free_port)
    "$tmp/$side/kvserver" --addr "127.0.0.1:$port" --data-dir "$dir" 2>"$tmp/$side.log" &
    pid=$!
    pids+=("$pid")
    wait_until 600 curl -fsS "http://127.0.0.1:$port/readyz" || fail "$side kvserver not ready"
    started=${EPOCHREALTIME/./}
    lines=$(timeout "$limit" "$tmp/$side/kvctl" --endpoint "http://127.0.0.1:$port" export | wc -l || true)
    local elapsed=$((${EPOCHREALTIME/./} - started))
    kill -TERM "$pid"
    wait "$pid" || true
    rm -rf "$dir"
    awk -v us="$elapsed" -v n="$lines" 'BEGIN { printf "%.2f %d\n", us / 1e6, n }'
}

echo
echo "| round | side | seconds | lines | lines/s |"
echo "|---|---|---:|---:|---:|"
for round in $(seq "$rounds"); do
    for side in old new; do
        read -r seconds lines < <(export_once "$side")
        rate=$(awk -v s="$seconds" -v n="$lines" 'BEGIN { printf "%.0f", n / s }')
        echo "| $round | $side | $seconds | $lines | $rate |"
        echo "$side $rate" >>"$tmp/rates"
    done
done
awk '$1 == "old" { o += $2; no++ } $1 == "new" { n += $2; nn++ }
    END { printf "\nexport rate new/old: %.1fx (%d keys)\n", (n / nn) / (o / no), '"$keys"' }' "$tmp/rates"
