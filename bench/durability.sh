#!/usr/bin/env bash
# Durable write throughput: kvserver with a data directory against Redis
# with its append-only file, in the same run, per fsync mode:
#   kvserver --fsync always     vs  Redis appendonly yes, appendfsync always
#   kvserver --fsync everysec   vs  Redis appendonly yes, appendfsync everysec
# Results and reasoning: BENCHMARKS.md, "Durability (kvserver vs Redis)".
#
#   bench/durability.sh                   # build (release), run everything
#   MODES=always ROUNDS=3 bench/durability.sh
#
# The load, the same on both sides: CONNECTIONS clients, each sending one
# write at a time (no pipelining), each write replacing the value of a
# random existing key out of KEYS (key:000000000000 .. key:<KEYS-1>, 16
# bytes) with VALUE_BYTES bytes.
#   Redis:    redis-benchmark -c CONNECTIONS -t set -r KEYS -d VALUE_BYTES
#   kvserver: wrk -cCONNECTIONS with bench/lua/kvput.lua: PUT /v1/kv/<key>,
#             the value as the raw body
# Both stores hold the KEYS keys before the first run: Redis through
# redis-cli --pipe, kvserver through bench/datagen (kvcore writing the data
# directory directly, then a snapshot). redis-benchmark runs a number of
# requests, not a time: it is calibrated first (doubling as a warm-up) so
# that a run lasts about DURATION, like wrk's, and each run sizes the next
# from its own rate; wrk gets a 2 s warm-up.
# Each round runs both sides back to back, alternating which goes first.
#
# Durability settings, each side's defaults apart from the fsync mode:
#   Redis: appendonly yes, appendfsync MODE, save "" (no RDB snapshots),
#          automatic AOF rewrite at its defaults (100%, 64mb).
#   kvserver: --data-dir, --fsync MODE, automatic compaction as shipped.
# Both data directories are in the same temporary folder (TMPDIR, default
# /tmp), so on the same filesystem; the script prints it and its type.
#
# Environment (default):
#   MODES ("always everysec")  fsync modes to compare
#   ROUNDS (3)                 measured runs per side and mode
#   DURATION (10)              seconds per measured run
#   CONNECTIONS (50)           wrk -c, redis-benchmark -c
#   WRK_THREADS (2)            wrk -t
#   REDIS_BENCH_THREADS (2)    redis-benchmark --threads (1: its classic
#                              single-threaded client)
#   KV_WORKERS (2)             kvserver --workers (its default: one per core)
#   KV_TUNING (balanced)       kvserver --tuning (its default)
#   KEYS (100000)              keys in each store, written at random
#   VALUE_BYTES (100)          bytes per value
#   RUST_LOG (info)            kvserver log level; info logs one line per
#                              request, as kvserver ships
#   CARGO_TARGET_DIR           where cargo builds (default: target/)
#   SKIP_BUILD (0)             1: use the binaries already built
#   KEEP_TMP (0)               1: keep the temporary folder
#
# Also reported per run: CPU time per request of the server and of the
# client (from /proc), and, when perf works (Debian's linux-perf, as root),
# how many writes each fsync/fdatasync call of the server covered, counted
# with perf's syscall tracepoints.
#
# Every server runs on 127.0.0.1 only, on a free port; every process this
# script starts is stopped by its PID when it exits. Installs wrk,
# redis-server and redis-tools with apt-get if they are missing.

bench_name=durability.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

modes=${MODES:-always everysec}
rounds=${ROUNDS:-3}
duration=${DURATION:-10}
duration=${duration%s}
connections=${CONNECTIONS:-50}
wrk_threads=${WRK_THREADS:-2}
redis_threads=${REDIS_BENCH_THREADS:-2}
kv_workers=${KV_WORKERS:-2}
kv_tuning=${KV_TUNING:-balanced}
keys=${KEYS:-100000}
value_bytes=${VALUE_BYTES:-100}
export RUST_LOG=${RUST_LOG:-info}

load() { cut -d' ' -f1 /proc/loadavg; }

# --- syncs -----------------------------------------------------------------

# Counts the fsync and fdatasync calls of a server during a run with perf's
# syscall tracepoints, when perf can (Debian: linux-perf; needs root or a
# low perf_event_paranoid). Otherwise the column shows "-".
can_count_syncs=0
if command -v perf >/dev/null &&
    perf stat -e syscalls:sys_enter_fdatasync -- true >/dev/null 2>&1; then
    can_count_syncs=1
fi

# syncs_start PID
syncs_start() {
    sync_counter=""
    ((can_count_syncs)) || return 0
    perf stat -x, -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -p "$1" \
        -o "$tmp/syncs.out" &
    sync_counter=$!
    pids+=("$sync_counter")
    sleep 0.2 # attached before the load starts
}

# syncs_stop: sets syncs to the syncs counted since syncs_start, or "-".
# Not for $(...): only this shell can wait for the counter to write its file.
syncs_stop() {
    syncs=-
    [[ -n $sync_counter ]] || return 0
    if ours "$sync_counter"; then kill -INT "$sync_counter" 2>/dev/null || true; fi
    wait "$sync_counter" 2>/dev/null || true
    unset 'pids[-1]' # the counter, now gone
    syncs=$(awk -F, '$3 ~ /^syscalls:sys_enter_f(data)?sync$/ { n += $1 } END { print n + 0 }' "$tmp/syncs.out")
}

# writes_per_sync REQUESTS SYNCS
writes_per_sync() {
    awk -v n="$1" -v s="$2" 'BEGIN { if (s == "-" || s == 0) print "-"; else printf "%.1f", n / s }'
}

# --- kvserver --------------------------------------------------------------

# start_kvserver MODE: a data directory with the keys (written by datagen,
# compacted into a snapshot), and kvserver on it.
start_kvserver() {
    local mode=$1
    kv_dir="$tmp/kvserver-$mode"
    "$datagen" "$kv_dir" "$keys" "$value_bytes" snapshot 2>&1 | sed 's/^/  /'
    "$kvserver" --addr 127.0.0.1:0 --data-dir "$kv_dir" --fsync "$mode" \
        --workers "$kv_workers" --tuning "$kv_tuning" 2>"$tmp/kvserver-$mode.log" &
    kv_pid=$!
    pids+=("$kv_pid")
    wait_until 100 grep -q 'listening on http://' "$tmp/kvserver-$mode.log" ||
        { cat "$tmp/kvserver-$mode.log" >&2; fail "kvserver did not start"; }
    kv_url=$(kv_url_from "$tmp/kvserver-$mode.log")
    wait_until 100 curl -fsS "$kv_url/readyz" || fail "kvserver at $kv_url is not ready"
    [[ $(curl -fsS "$kv_url/v1/kv/key:000000000000") == "$(printf "%${value_bytes}s" "" | tr ' ' x)" ]] ||
        fail "kvserver does not serve the preloaded keys"
    echo "kvserver pid $kv_pid at $kv_url: --data-dir $kv_dir --fsync $mode --workers $kv_workers --tuning $kv_tuning, RUST_LOG=$RUST_LOG"
    grep -o 'recovery: .*' "$tmp/kvserver-$mode.log" | sed 's/^/  /'
}

kv_info_field() {
    curl -fsS "$kv_url/v1/info" | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2
}

# run_kvserver MODE ROUND: one measured wrk run.
run_kvserver() {
    local mode=$1 round=$2 server_before client_before fsyncs_before started load_before
    echo
    echo "=== kvserver --fsync $mode, round $round: wrk -t$wrk_threads -c$connections -d${duration}s --latency -s kvput.lua (load $(load))"
    syncs_start "$kv_pid"
    server_before=$(cpu_ticks "$kv_pid")
    client_before=$(children_ticks)
    fsyncs_before=$(kv_info_field fsyncs)
    load_before=$(load)
    started=$(now)
    wrk -t"$wrk_threads" -c"$connections" -d"${duration}s" --latency -s "$lua/kvput.lua" "$kv_url" \
        -- "keys=$keys" "value_bytes=$value_bytes" >"$tmp/wrk.out"
    local seconds server_ticks client_ticks fsyncs syncs
    seconds=$(elapsed "$started")
    server_ticks=$(($(cpu_ticks "$kv_pid") - server_before))
    client_ticks=$(($(children_ticks) - client_before))
    fsyncs=$(($(kv_info_field fsyncs) - fsyncs_before))
    syncs_stop
    cat "$tmp/wrk.out"
    read_wrk_result "kvserver $mode"
    local requests
    requests=$(wrk_field requests)
    echo "log syncs during the run (kvserver's count): $fsyncs; fsync/fdatasync calls (perf): $syncs"
    echo "$mode|$round|kvserver|$(wrk_field rps)|$(wrk_field p99_ms)|$(($(wrk_field non_2xx) + $(wrk_field socket_errors)))|$(writes_per_sync "$requests" "$syncs")|$(per_request "$server_ticks" "$requests")|$(per_request "$client_ticks" "$requests")|$requests|$seconds|$load_before $(load)" >>"$tmp/results"
}

# --- redis -----------------------------------------------------------------

start_redis() {
    local mode=$1
    redis_port=$(free_port)
    redis_dir="$tmp/redis-$mode"
    mkdir -p "$redis_dir"
    # The AOF only: no RDB snapshots (save ""). The AOF rewrite, Redis's own
    # compaction, stays at its defaults.
    cat >"$tmp/redis-$mode.conf" <<EOF
bind 127.0.0.1
port $redis_port
protected-mode yes
daemonize no
save ""
appendonly yes
appendfsync $mode
appenddirname appendonlydir
auto-aof-rewrite-percentage 100
auto-aof-rewrite-min-size 64mb
dir $redis_dir
logfile $tmp/redis-$mode.log
EOF
    redis-server "$tmp/redis-$mode.conf" &
    redis_pid=$!
    pids+=("$redis_pid")
    wait_until 100 redis-cli -h 127.0.0.1 -p "$redis_port" ping || fail "redis-server did not start"
    echo "redis-server pid $redis_pid on 127.0.0.1:$redis_port: appendonly yes, appendfsync $mode, save \"\", dir $redis_dir"
    # The same keys and values as kvserver's.
    preload_redis 'key:%012d' x
}

# Bounded: a run that takes far longer than planned (a very slow disk) is
# stopped, and the script fails rather than waits.
redis_bench() {
    timeout $((duration * 6 + 60)) redis-benchmark -h 127.0.0.1 -p "$redis_port" -c "$connections" -t set -r "$keys" \
        -d "$value_bytes" --threads "$redis_threads" --csv "$@"
}

# How many requests make a run of about DURATION: runs growing batches
# until one lasts at least a second (this is also the warm-up).
calibrate_redis() {
    local n=1000 started seconds
    while :; do
        started=$(now)
        redis_bench -n "$n" >/dev/null
        seconds=$(elapsed "$started")
        if awk -v s="$seconds" 'BEGIN { exit !(s >= 1) }' || ((n >= 10000000)); then break; fi
        n=$((n * 4))
    done
    redis_requests=$(awk -v n="$n" -v s="$seconds" -v d="$duration" 'BEGIN { printf "%d", n / s * d }')
    echo "redis-benchmark calibration: $n requests in $seconds s; runs of $redis_requests requests"
}

# run_redis MODE ROUND: one measured redis-benchmark run.
run_redis() {
    local mode=$1 round=$2 server_before client_before started load_before requests=$redis_requests
    echo
    echo "=== redis appendfsync $mode, round $round: redis-benchmark -c $connections -n $redis_requests -t set -r $keys -d $value_bytes --threads $redis_threads (load $(load))"
    syncs_start "$redis_pid"
    server_before=$(cpu_ticks "$redis_pid")
    client_before=$(children_ticks)
    load_before=$(load)
    started=$(now)
    redis_bench -n "$requests" >"$tmp/redis-bench.out"
    local seconds server_ticks client_ticks syncs
    seconds=$(elapsed "$started")
    server_ticks=$(($(cpu_ticks "$redis_pid") - server_before))
    client_ticks=$(($(children_ticks) - client_before))
    syncs_stop
    cat "$tmp/redis-bench.out"
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    local rps p99
    rps=$(awk -F'"' '$2 == "SET" { printf "%.0f", $4 }' "$tmp/redis-bench.out")
    p99=$(awk -F'"' '$2 == "SET" { print $14 }' "$tmp/redis-bench.out")
    [[ -n $rps && -n $p99 ]] || fail "redis $mode: no SET line in redis-benchmark's output"
    # The next run's size, from this run's rate: it should last DURATION.
    redis_requests=$((rps * duration))
    echo "fsync/fdatasync calls (perf): $syncs"
    echo "$mode|$round|redis|$rps|$p99|-|$(writes_per_sync "$requests" "$syncs")|$(per_request "$server_ticks" "$requests")|$(per_request "$client_ticks" "$requests")|$requests|$seconds|$load_before $(load)" >>"$tmp/results"
}

# --- the run ---------------------------------------------------------------

install_missing wrk redis-server redis-cli:redis-tools redis-benchmark:redis-tools curl
echo "machine: $(nproc) cores; $(uptime)"
pressure() { [[ -r /proc/pressure/$1 ]] && echo "$1 pressure: $(head -1 "/proc/pressure/$1")"; }
pressure cpu || true
pressure io || true
print_revision
echo "data directories under $tmp: $(df -T "$tmp" | awk 'NR == 2 { print $1 ", " $2 ", mounted on " $7 }')"
echo "$(redis-server --version)"
build_kvserver
build_datagen
: >"$tmp/results"

for mode in $modes; do
    case $mode in always | everysec) ;; *) fail "MODES: always or everysec, not $mode" ;; esac
    echo
    echo "##### fsync $mode"
    start_kvserver "$mode"
    start_redis "$mode"
    echo "kvserver warm-up: wrk 2 s"
    wrk -t"$wrk_threads" -c"$connections" -d2s -s "$lua/kvput.lua" "$kv_url" \
        -- "keys=$keys" "value_bytes=$value_bytes" >/dev/null
    calibrate_redis
    for round in $(seq "$rounds"); do
        if ((round % 2)); then
            run_kvserver "$mode" "$round"
            run_redis "$mode" "$round"
        else
            run_redis "$mode" "$round"
            run_kvserver "$mode" "$round"
        fi
    done
    alive "$kv_pid" || fail "kvserver died during the run"
    alive "$redis_pid" || fail "redis-server died during the run"
    echo "kvserver after the runs: compactions $(kv_info_field compactions), keys $(kv_info_field keys); files: $(ls "$kv_dir" | tr '\n' ' ')"
    echo "redis after the runs: $(redis-cli -h 127.0.0.1 -p "$redis_port" info persistence | grep -E '^(aof_rewrites|aof_current_size|aof_base_size):' | tr -d '\r' | tr '\n' ' ')"
    # Stop both before the next mode, so it runs on a quiet machine.
    kill -TERM "$kv_pid" "$redis_pid"
    wait "$kv_pid" "$redis_pid" || true
done

echo
echo "machine at the end: $(uptime)"
pressure cpu || true
pressure io || true
echo
echo "=== summary: $connections connections, SET/PUT of random existing keys out of $keys, $value_bytes-byte values, ${duration}s runs; kvserver --workers $kv_workers --tuning $kv_tuning RUST_LOG=$RUST_LOG; wrk -t$wrk_threads; redis-benchmark --threads $redis_threads"
echo "errors: answers outside 2xx plus socket errors (wrk; redis-benchmark reports none)"
echo "CPU figures are microseconds per request; load is the 1-minute load average before and after each run"
echo "writes/sync: requests per fsync or fdatasync call of the server during the run (perf), how well it batches"
row() { printf '| %-8s | %5s | %-8s | %8s | %8s | %7s | %11s | %10s | %10s | %7s | %-11s |\n' "$@"; }
row fsync round server "req/s" "p99 ms" errors "writes/sync" "server CPU" "client CPU" "seconds" "load"
row -------- ----- -------- -------- -------- ------- ----------- ---------- ---------- ------- -----------
while IFS='|' read -r mode round side rps p99 non_2xx per_sync server_us client_us requests seconds loads; do
    row "$mode" "$round" "$side" "$rps" "$p99" "$non_2xx" "$per_sync" "$server_us" "$client_us" "$seconds" "$loads"
done <"$tmp/results"
echo
for mode in $modes; do
    awk -F'|' -v mode="$mode" '$1 == mode {
        rps[$3] += $4; n[$3]++
        if ($3 == "redis") redis_by_round[$2] = $4; else kv_by_round[$2] = $4
    }
    END {
        kv = rps["kvserver"] / n["kvserver"]; rd = rps["redis"] / n["redis"]
        per_round = ""; m = 0
        for (r = 1; r in kv_by_round; r++) {
            ratio[++m] = kv_by_round[r] / redis_by_round[r]
            per_round = per_round sprintf(" %.2fx", ratio[m])
        }
        # Median of the per-round ratios: each round runs both sides back
        # to back, so a slow spell of the shared disk or CPUs hits both.
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (ratio[j] < ratio[i]) { t = ratio[i]; ratio[i] = ratio[j]; ratio[j] = t }
        median = (m % 2) ? ratio[(m + 1) / 2] : (ratio[m / 2] + ratio[m / 2 + 1]) / 2
        printf "fsync %s: kvserver %.0f req/s, redis %.0f req/s (means over rounds): %.2fx; per round:%s, median %.2fx; target >= 1.0x: %s\n",
            mode, kv, rd, kv / rd, per_round, median, (median >= 1.0) ? "met" : "MISSED"
    }' "$tmp/results"
done
