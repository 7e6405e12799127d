#!/usr/bin/env bash
# The change feed under load: do watchers slow writers down, and how many
# events a second reach 100 watchers? Results: BENCHMARKS.md, section
# "kvserver: watch (change feed)".
#
#   bench/watch.sh                     # build (release), run every phase
#   DURATION=20s bench/watch.sh        # longer phases
#
# One kvserver (in memory, --watch-history 10000, --workers 2), and wrk
# writing PUT /v1/kv/key:NNN (random keys among KEYS, VALUE_BYTES-byte
# values) over CONNECTIONS connections for DURATION, in four phases, in
# this order, in the same run:
#   A1   writes alone
#   B    writes with 1,000 idle watchers (a prefix no write touches: they
#        get keep-alives only) and 1 slow watcher of every key that never
#        reads (so its socket fills and the server must cut it off)
#   A2   writes alone again (A1 and A2 bracket B: their spread is the noise)
#   R    writes with 100 watchers of every key that read everything
# Reported: writes/s and p99 of each phase, B's writes/s over the mean of
# A1 and A2, the events/s the 100 watchers received (summed), and the
# server's kv_watchers_cut_off_total.
#
# Environment (default):
#   DURATION (10s)        each phase
#   CONNECTIONS (16)      wrk -c (wrk -t1)
#   KEYS (10000)          keys written
#   VALUE_BYTES (100)     bytes per value
#   CARGO_TARGET_DIR      where cargo builds kvserver (default: target/)
#   SKIP_BUILD (0)        1: use the kvserver binary already built
# Needs wrk (installed with apt-get if missing) and python3. Every process
# it starts is stopped by its PID at exit.

bench_name=watch.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration=${DURATION:-10s}
connections=${CONNECTIONS:-16}
keys=${KEYS:-10000}
value_bytes=${VALUE_BYTES:-100}
seconds=${duration%s}

install_missing wrk
build_kvserver
print_revision
# 1,000 watchers and the server's own connections.
ulimit -n 8192

RUST_LOG=warn,kvserver::app=info "$kvserver" --addr 127.0.0.1:0 --workers 2 --watch-history 10000 \
    >"$tmp/server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
wait_until 100 grep -q 'listening on' "$tmp/server.log" || fail "kvserver did not start"
url=$(kv_url_from "$tmp/server.log")
echo "kvserver at $url (pid $server_pid)"

metric() {
    curl -sS "$url/metrics" | sed -n "s/^$1 //p"
}

# Runs wrk for one phase; prints "rps p99_ms".
writes() {
    wrk -t1 -c"$connections" -d"$duration" -s "$lua/kvput.lua" "$url" \
        -- keys="$keys" value_bytes="$value_bytes" >"$tmp/wrk.out" 2>&1
    read_wrk_result "$1"
    echo "$(wrk_field rps) $(wrk_field p99_ms)"
}

# Starts watch_clients.py in the background and waits until its
# connections are open: clients MODE COUNT.
clients() {
    python3 "$here/watch_clients.py" "$url" "$1" "$2" "$((seconds + 5))" >"$tmp/clients-$1.out" 2>&1 &
    pids+=($!)
    wait_until 300 grep -q '^OPEN' "$tmp/clients-$1.out" || {
        cat "$tmp/clients-$1.out" >&2
        fail "$1 watchers did not open"
    }
}

echo "== warm-up (writes alone, 2 s)"
wrk -t1 -c"$connections" -d2s -s "$lua/kvput.lua" "$url" \
    -- keys="$keys" value_bytes="$value_bytes" >/dev/null 2>&1

echo "== A1: writes alone"
result=$(writes A1)
read -r a1_rps a1_p99 <<<"$result"
echo "   $a1_rps writes/s, p99 $a1_p99 ms"

echo "== B: writes with 1000 idle watchers and 1 slow one"
clients idle 1000
clients slow 1
echo "   watchers open: $(metric kv_watchers)"
result=$(writes B)
read -r b_rps b_p99 <<<"$result"
echo "   $b_rps writes/s, p99 $b_p99 ms; watchers cut off so far: $(metric kv_watchers_cut_off_total)"
wait_until 400 test "$(metric kv_watchers)" = 0 || echo "   (watchers still open: $(metric kv_watchers))"

echo "== A2: writes alone"
result=$(writes A2)
read -r a2_rps a2_p99 <<<"$result"
echo "   $a2_rps writes/s, p99 $a2_p99 ms"

echo "== R: writes with 100 watchers reading every event"
clients read 100
result=$(writes R)
read -r r_rps r_p99 <<<"$result"
wait_until 200 grep -q '^EVENTS' "$tmp/clients-read.out" || fail "the reading watchers printed no count"
events=$(sed -n 's/^EVENTS .*per_second=\([0-9]*\).*/\1/p' "$tmp/clients-read.out")
echo "   $r_rps writes/s, p99 $r_p99 ms; $events events/s received by 100 watchers"

echo
echo "| phase | writes/s | p99 ms |"
echo "|---|---:|---:|"
echo "| A1 writes alone | $a1_rps | $a1_p99 |"
echo "| B 1000 idle + 1 slow watcher | $b_rps | $b_p99 |"
echo "| A2 writes alone | $a2_rps | $a2_p99 |"
echo "| R 100 reading watchers | $r_rps | $r_p99 |"
echo
awk -v b="$b_rps" -v a1="$a1_rps" -v a2="$a2_rps" -v r="$r_rps" 'BEGIN {
    a = (a1 + a2) / 2
    printf "B / mean(A1, A2) = %.2f (A1 / A2 = %.2f: the noise); R / mean(A1, A2) = %.2f\n", b / a, a1 / a2, r / a
}'
echo "events/s to 100 watchers: $events (per watcher: $((events / 100))); watchers cut off: $(metric kv_watchers_cut_off_total)"
