#!/usr/bin/env bash
# Restart time of kvserver with a data directory: from starting the process
# to the first 200 from /readyz, which kvserver answers once recovery is
# done. Results and reasoning: BENCHMARKS.md, "Restart time".
#
#   bench/restart.sh                          # build (release), run everything
#   KEYS=100000 LAYOUTS=log RUNS=5 bench/restart.sh
#
# For each layout, bench/datagen writes a data directory of KEYS keys
# (key:000000000000 .., 16 bytes) with VALUE_BYTES-byte values through
# kvcore itself (the format kvserver reads):
#   snapshot       every key in a snapshot, an empty log (after a compaction)
#   log            every key in the log only, one record each, no snapshot
#   snapshot+log   every key in a snapshot plus a log half as large (the
#                  most the server holds before compacting automatically)
# Then kvserver is started RUNS times, each on a fresh copy of it (cp -a:
# once running, kvserver may compact a long log). Each time the script polls
# /readyz every POLL_MS milliseconds over bash's /dev/tcp (no process is
# started for a poll, so polling takes next to no CPU from the server),
# notes when the port first answers and when /readyz first answers 200,
# checks that /v1/info counts KEYS keys, and stops the server (SIGTERM).
# It also reports the CPU time kvserver used until ready, which the
# machine's load stretches far less than the wall-clock time. The data
# files were just written, so they are in the page cache: these are warm
# restarts.
#
# Environment (default):
#   KEYS (1000000)                     keys in each data directory
#   VALUE_BYTES (100)                  bytes per value
#   LAYOUTS ("snapshot log snapshot+log")
#   RUNS (5)                           restarts per layout
#   POLL_MS (5)                        time between polls
#   KV_FSYNC (everysec)                kvserver --fsync (its default)
#   RUST_LOG (info)                    kvserver log level
#   TIMEOUT (60)                       seconds a start may take before the
#                                      script gives up
#   CARGO_TARGET_DIR                   where cargo builds (default: target/)
#   SKIP_BUILD (0)                     1: use the binaries already built
#   KEEP_TMP (0)                       1: keep the temporary folder
#
# kvserver listens on 127.0.0.1 only, on a free port; every process this
# script starts is stopped by its PID when it exits.

bench_name=restart.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

keys=${KEYS:-1000000}
value_bytes=${VALUE_BYTES:-100}
layouts=${LAYOUTS:-snapshot log snapshot+log}
runs=${RUNS:-5}
poll_ms=${POLL_MS:-5}
fsync=${KV_FSYNC:-everysec}
timeout=${TIMEOUT:-60}
export RUST_LOG=${RUST_LOG:-info}

# A sleep that starts no process: a read with a timeout on a FIFO that
# nobody writes to.
mkfifo "$tmp/sleep.fifo"
exec {sleep_fd}<>"$tmp/sleep.fifo"
pause() { read -r -t "$1" -u "$sleep_fd" || true; }
poll_seconds=$(awk -v ms="$poll_ms" 'BEGIN { printf "%.3f", ms / 1000 }')

# probe PORT: sets probe_status to the status code of GET /readyz, or to
# "" when nothing answers. Bash builtins only: the polling loop starts no
# process, so it takes next to no CPU from the server it waits for.
probe() {
    local line=""
    probe_status=""
    { printf 'GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3 &&
        IFS= read -r -t 5 line <&3; } 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$1" || return 0
    line=${line#* }
    probe_status=${line%% *}
}

# restart LAYOUT TEMPLATE RUN: starts kvserver on a copy of the data
# directory TEMPLATE, times it to ready, stops it. A copy, because kvserver
# may compact the log once it runs, changing the layout for the next run.
restart() {
    local layout=$1 template=$2 run=$3 dir="$tmp/run" port log started listening="" ready="" now pid load_before
    rm -rf "$dir"
    cp -a "$template" "$dir"
    # Written back now, so that writeback does not overlap the start.
    sync "$dir"/*
    port=$(free_port)
    log="$tmp/kvserver-$layout-$run.log"
    load_before=$(cut -d' ' -f1 /proc/loadavg)
    started=${EPOCHREALTIME/./}
    "$kvserver" --addr "127.0.0.1:$port" --data-dir "$dir" --fsync "$fsync" 2>"$log" &
    pid=$!
    pids+=("$pid")
    while :; do
        probe "$port"
        now=${EPOCHREALTIME/./}
        [[ -n $probe_status && -z $listening ]] && listening=$now
        if [[ $probe_status == 200 ]]; then
            ready=$now
            break
        fi
        alive "$pid" || { cat "$log" >&2; fail "kvserver exited while starting on $dir"; }
        ((now - started < timeout * 1000000)) || fail "kvserver not ready after $timeout s"
        pause "$poll_seconds"
    done
    local ready_ms listening_ms cpu_ms count rss recovery
    # CPU time (user + system) the process used up to now: the work of
    # starting, which the machine's load does not stretch as it does the
    # wall-clock time.
    cpu_ms=$(($(cpu_ticks "$pid") * 1000 / clock_hz))
    ready_ms=$(((ready - started + 500) / 1000))
    listening_ms=$(((listening - started + 500) / 1000))
    count=$(curl -fsS "http://127.0.0.1:$port/v1/info" | grep -o '"keys":[0-9]*' | cut -d: -f2)
    rss=$(awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status")
    kill -TERM "$pid"
    wait "$pid" || fail "kvserver exited with an error on SIGTERM"
    recovery=$(grep -o 'recovery: .*' "$log" | tail -1)
    ((count == keys)) || fail "$layout: kvserver recovered $count keys, expected $keys"
    rm -rf "$dir"
    echo "  run $run: ready in $ready_ms ms (port answering at $listening_ms ms; $cpu_ms ms of CPU), $count keys, RSS $rss MiB, load $load_before"
    echo "    $recovery"
    local in_store
    # kvcore's Debug form of a Duration: 1.234s, 95.06ms, 870µs.
    in_store=$(sed -n 's/.* in \([0-9.]*\)\([mµn]*s\); revision.*/\1 \2/p' <<<"$recovery" |
        awk '{ f = ($2 == "s") ? 1000 : ($2 == "ms") ? 1 : ($2 == "µs") ? 0.001 : 0.000001; printf "%.0f", $1 * f }')
    echo "$layout|$run|$ready_ms|$listening_ms|$in_store|$cpu_ms|$count|$rss|$load_before" >>"$tmp/results"
}

# --- the run ---------------------------------------------------------------

install_missing curl
echo "machine: $(nproc) cores; $(uptime)"
print_revision
echo "data directories under $tmp: $(df -T "$tmp" | awk 'NR == 2 { print $1 ", " $2 ", mounted on " $7 }')"
build_kvserver
build_datagen
: >"$tmp/results"

for layout in $layouts; do
    dir="$tmp/data-${layout/+/-}"
    echo
    echo "##### $layout: $keys keys, $value_bytes-byte values"
    "$datagen" "$dir" "$keys" "$value_bytes" "$layout" 2>&1 | sed 's/^/  /'
    echo "  files: $(cd "$dir" && find . -type f -name '*.kv*' -printf '%f %s bytes, ' | sed 's/, $//')"
    for run in $(seq "$runs"); do
        restart "$layout" "$dir" "$run"
    done
    rm -rf "$dir"
done

echo
echo "=== summary: kvserver --fsync $fsync, RUST_LOG=$RUST_LOG; $keys keys of 16 bytes, $value_bytes-byte values; warm page cache"
echo "ready: process start to the first 200 from /readyz (polled every $poll_ms ms); listening: the port's first answer;"
echo "recovery: kvcore's own figure, from the recovery log line; CPU: user + system time of kvserver when ready"
row() { printf '| %-12s | %3s | %8s | %12s | %11s | %6s | %9s | %7s | %5s |\n' "$@"; }
row layout run "ready ms" "listening ms" "recovery ms" "CPU ms" "keys" "RSS MiB" load
row ------------ --- -------- ------------ ----------- ------ --------- ------- -----
while IFS='|' read -r layout run ready_ms listening_ms in_store cpu_ms count rss load_before; do
    row "$layout" "$run" "$ready_ms" "$listening_ms" "$in_store" "$cpu_ms" "$count" "$rss" "$load_before"
done <"$tmp/results"
echo
for layout in $layouts; do
    sort -t'|' -k3,3n "$tmp/results" | awk -F'|' -v layout="$layout" '$1 == layout { t[++n] = $3; cpu += $6 }
        END {
            if (!n) exit
            median = (n % 2) ? t[(n + 1) / 2] : (t[n / 2] + t[n / 2 + 1]) / 2
            printf "%s: ready in %d ms at best, %d ms median over %d runs (%d ms of CPU on average); target < 1000 ms: %s\n",
                layout, t[1], median, n, cpu / n, (median < 1000) ? "met" : "MISSED"
        }'
done
