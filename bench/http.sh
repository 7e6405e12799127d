#!/usr/bin/env bash
# Load benchmark of kvserver's seed API (/store) with wrk, and the same GET
# load on webdis (an HTTP front for Redis) in the same run, reporting the
# ratio. Results and the reasoning behind the defaults: BENCHMARKS.md,
# section "kvserver HTTP (wrk)".
#
#   bench/http.sh                      # build (release), run everything
#   DURATION=30s bench/http.sh         # longer scenarios
#
# Scenarios, each for DURATION with CONNECTIONS connections over KEYS
# preloaded keys (key000000, key000001, ...) with VALUE_BYTES-byte values:
#   kvserver GET    GET /store?key=K on random existing keys
#   webdis GET      GET /GET/K on the same keys preloaded into Redis
#   kvserver mix    95% GET, 5% PUT /store on random existing keys
#   kvserver PUT    PUT /store (update) on random existing keys
#   kvserver POST   POST /store (create) of new keys, unique per request
# The two GET runs go back to back, so both see the same machine load.
#
# Environment (default):
#   DURATION (10s)          wrk -d, per scenario
#   CONNECTIONS (50)        wrk -c
#   WRK_THREADS (2)         wrk -t
#   KV_WORKERS (2)          kvserver --workers (its default: one per core)
#   KV_TUNING (read-heavy)  kvserver --tuning
#   WEBDIS_THREADS (2)      webdis "threads" (HTTP event-loop threads)
#   WEBDIS_POOL (8)         webdis "pool_size": Redis connections per thread
#   KEYS (100000)           keys preloaded into each store
#   VALUE_BYTES (100)       bytes per value
#   RUST_LOG (info)         kvserver log level; info logs one line per
#                           request, as kvserver ships
#   CARGO_TARGET_DIR        where cargo builds kvserver (default: target/)
#   SKIP_BUILD (0)          1: use the kvserver binary already built
#   KEEP_TMP (0)            1: keep the temporary folder (configs, logs)
# The thread and pool defaults are each server's fastest GET setting found
# on the 2-core machine (see BENCHMARKS.md), with the same client for both.
#
# Reported per scenario: req/s, p99 latency, answers outside 2xx, socket
# errors, and the CPU time per request of the server (kvserver, or webdis +
# redis-server) and of wrk: on a shared machine req/s swings with what else
# runs, CPU per request hardly does.
#
# Every server runs on 127.0.0.1 only, on a free port, from config files in
# a temporary folder; every process this script starts is stopped by its PID
# when it exits. Needs wrk, webdis, redis-server and redis-cli; installs the
# missing ones with apt-get.

bench_name=http.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration=${DURATION:-10s}
connections=${CONNECTIONS:-50}
wrk_threads=${WRK_THREADS:-2}
kv_workers=${KV_WORKERS:-2}
kv_tuning=${KV_TUNING:-read-heavy}
webdis_threads=${WEBDIS_THREADS:-2}
webdis_pool=${WEBDIS_POOL:-8}
keys=${KEYS:-100000}
value_bytes=${VALUE_BYTES:-100}

# Shell functions shared with the other benchmarks (processes started and
# stopped by PID, temporary folder, ports, CPU time): bench/lib.sh.

# --- wrk -------------------------------------------------------------------

# Runs one scenario: run_wrk NAME URL SCRIPT "SERVER PIDS" [ARGS...]. Prints
# wrk's report and appends to results
# "NAME|rps|p99_ms|non_2xx|socket_errors|server_us|wrk_us", the last two
# being CPU microseconds per request used by the server processes and by wrk.
# On a shared machine req/s depends on what else runs; CPU per request
# hardly does.
run_wrk() {
    local name=$1 url=$2 script=$3 server_pids=$4
    shift 4
    echo
    echo "=== $name: wrk -t$wrk_threads -c$connections -d$duration --latency -s $(basename "$script")  ($(uptime | sed 's/.*load/load/'))"
    local server_before wrk_before
    # shellcheck disable=SC2086 # a list of PIDs
    server_before=$(cpu_ticks $server_pids)
    wrk_before=$(children_ticks)
    wrk -t"$wrk_threads" -c"$connections" -d"$duration" --latency -s "$script" "$url" \
        -- "keys=$keys" "value_bytes=$value_bytes" "$@" >"$tmp/wrk.out"
    # shellcheck disable=SC2086
    local server_ticks=$(($(cpu_ticks $server_pids) - server_before))
    local wrk_ticks=$(($(children_ticks) - wrk_before))
    cat "$tmp/wrk.out"
    read_wrk_result "$name"
    local requests
    requests=$(wrk_field requests)
    echo "$name|$(wrk_field rps)|$(wrk_field p99_ms)|$(wrk_field non_2xx)|$(wrk_field socket_errors)|$(per_request "$server_ticks" "$requests")|$(per_request "$wrk_ticks" "$requests")" >>"$tmp/results"
}

# --- kvserver --------------------------------------------------------------

start_kvserver() {
    build_kvserver
    RUST_LOG=${RUST_LOG:-info} "$kvserver" --addr 127.0.0.1:0 --workers "$kv_workers" \
        --tuning "$kv_tuning" 2>"$tmp/kvserver.log" &
    kv_pid=$!
    pids+=("$kv_pid")
    wait_until 100 grep -q 'listening on http://' "$tmp/kvserver.log" ||
        { cat "$tmp/kvserver.log" >&2; fail "kvserver did not start"; }
    kv_url=$(kv_url_from "$tmp/kvserver.log")
    wait_until 50 curl -fsS "$kv_url/readyz" || fail "kvserver at $kv_url is not ready"
    echo "kvserver pid $kv_pid at $kv_url: --workers $kv_workers --tuning $kv_tuning, RUST_LOG=${RUST_LOG:-info}"
}

kv_key_count() {
    curl -fsS "$kv_url/v1/info" | grep -o '"keys":[0-9]*' | cut -d: -f2
}

# POSTs every key once with wrk (one thread, all connections), stopping wrk
# as soon as the server holds them all.
preload_kvserver() {
    local started=$SECONDS wrk_pid count=0
    wrk -t1 -c"$connections" -d120s -s "$lua/preload.lua" "$kv_url" \
        -- "keys=$keys" "value_bytes=$value_bytes" >"$tmp/preload.out" 2>&1 &
    wrk_pid=$!
    pids+=("$wrk_pid")
    while alive "$wrk_pid"; do
        count=$(kv_key_count || echo 0)
        ((count >= keys)) && break
        sleep 0.2
    done
    if ours "$wrk_pid"; then kill -INT "$wrk_pid" 2>/dev/null || true; fi
    wait "$wrk_pid" || true
    unset 'pids[-1]' # the preload wrk, now gone
    count=$(kv_key_count)
    ((count == keys)) ||
        { cat "$tmp/preload.out" >&2; fail "preload: kvserver holds $count keys, expected $keys"; }
    echo "kvserver: preloaded $count keys in $((SECONDS - started)) s ($(grep -o 'non_2xx=[0-9]*' "$tmp/preload.out"))"
}

# --- redis + webdis --------------------------------------------------------

start_redis() {
    redis_port=$(free_port)
    # In memory only, like kvserver without --data-dir: no snapshots, no AOF.
    cat >"$tmp/redis.conf" <<EOF
bind 127.0.0.1
port $redis_port
protected-mode yes
daemonize no
save ""
appendonly no
dir $tmp
logfile $tmp/redis.log
EOF
    redis-server "$tmp/redis.conf" &
    redis_pid=$!
    pids+=("$redis_pid")
    wait_until 100 redis-cli -h 127.0.0.1 -p "$redis_port" ping || fail "redis-server did not start"
    echo "redis-server pid $redis_pid on 127.0.0.1:$redis_port (no persistence)"
}

start_webdis() {
    webdis_port=$(free_port)
    # threads: HTTP event-loop threads. pool_size: Redis connections per
    # thread, enough that 50 HTTP connections never queue for one.
    # verbosity 3 (info) logs start-up and errors, not each request.
    cat >"$tmp/webdis.json" <<EOF
{
    "redis_host": "127.0.0.1",
    "redis_port": $redis_port,
    "redis_auth": null,
    "http_host": "127.0.0.1",
    "http_port": $webdis_port,
    "threads": $webdis_threads,
    "pool_size": $webdis_pool,
    "daemonize": false,
    "database": 0,
    "verbosity": 3,
    "logfile": "$tmp/webdis.log"
}
EOF
    # libevent warns on stderr about connections wrk closes at the end of a
    # run ("Epoll ADD ... Bad file descriptor"); those go to a file.
    webdis "$tmp/webdis.json" 2>"$tmp/webdis.stderr" &
    webdis_pid=$!
    pids+=("$webdis_pid")
    webdis_url="http://127.0.0.1:$webdis_port"
    wait_until 100 curl -fsS "$webdis_url/PING" || fail "webdis did not start"
    [[ $(curl -fsS "$webdis_url/GET/key000000") == *'"GET":"vvv'* ]] ||
        fail "webdis does not serve the preloaded keys"
    echo "webdis pid $webdis_pid at $webdis_url: threads $webdis_threads, pool_size $webdis_pool"
}

# --- the run ---------------------------------------------------------------

install_missing wrk webdis redis-server redis-cli:redis-server curl
echo "machine: $(nproc) cores; $(uptime)"
print_revision
echo "wrk: -t$wrk_threads -c$connections -d$duration; keys $keys, values of $value_bytes bytes"

start_kvserver
preload_kvserver
start_redis
# The same keys and values as kvserver's (bench/lua/common.lua).
preload_redis 'key%06d' v
start_webdis
[[ $(curl -fsS "$kv_url/store?key=key000000") == *'"value":"vvv'* ]] ||
    fail "kvserver does not serve the preloaded keys"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
run_wrk "kvserver GET" "$kv_url" "$lua/get.lua" "$kv_pid" "path=/store?key="
run_wrk "webdis GET" "$webdis_url" "$lua/get.lua" "$webdis_pid $redis_pid" "path=/GET/"
run_wrk "kvserver mix 95/5" "$kv_url" "$lua/mix.lua" "$kv_pid" "put_percent=5"
run_wrk "kvserver PUT" "$kv_url" "$lua/put.lua" "$kv_pid"
run_wrk "kvserver POST" "$kv_url" "$lua/post.lua" "$kv_pid"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
alive "$kv_pid" || fail "kvserver died during the run"
alive "$webdis_pid" || fail "webdis died during the run"

echo
echo "=== summary: wrk -t$wrk_threads -c$connections -d$duration; kvserver --workers $kv_workers --tuning $kv_tuning; webdis threads $webdis_threads pool_size $webdis_pool"
echo "load average (1/5/15 min) before: $load_before, after: $load_after"
echo "server CPU: kvserver, or webdis + redis-server; CPU figures are microseconds per request"
row() { printf '| %-17s | %8s | %8s | %7s | %13s | %10s | %7s |\n' "$@"; }
row scenario "req/s" "p99 ms" non-2xx "socket errors" "server CPU" "wrk CPU"
row ----------------- -------- -------- ------- ------------- ---------- -------
while IFS='|' read -r name rps p99 non_2xx socket_errors server_us wrk_us; do
    row "$name" "$rps" "$p99" "$non_2xx" "$socket_errors" "$server_us" "$wrk_us"
done <"$tmp/results"
get_field() { awk -F'|' -v name="$1" -v column="$2" '$1 == name { print $column }' "$tmp/results"; }
awk -v kv="$(get_field "kvserver GET" 2)" -v wd="$(get_field "webdis GET" 2)" \
    -v p99="$(get_field "kvserver GET" 3)" \
    -v kv_cpu="$(get_field "kvserver GET" 6)" -v wd_cpu="$(get_field "webdis GET" 6)" 'BEGIN {
    ratio = kv / wd
    ratio_verdict = (ratio >= 2.5) ? "met" : "MISSED"
    p99_verdict = (p99 < 10) ? "met" : "MISSED"
    printf "GET req/s, kvserver / webdis: %.2fx (target >= 2.5x: %s)\n", ratio, ratio_verdict
    printf "GET p99, kvserver: %.2f ms (target < 10 ms: %s)\n", p99, p99_verdict
    printf "GET server CPU per request, webdis + redis / kvserver: %.2fx\n", wd_cpu / kv_cpu
}'
