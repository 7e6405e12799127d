#!/usr/bin/env bash
# kvserver on a 3-member etcd cluster against etcd's own JSON gateway on the
# same cluster (what a client calling etcd directly pays), and against
# kvserver on its embedded store: PUT, GET and range, in paired rounds of
# the same run. Results: BENCHMARKS.md, "kvserver on etcd".
#
#   bench/etcd.sh                      # build (release, --features etcd), run
#   ROUNDS=3 DURATION=10s bench/etcd.sh
#
# Targets, each loaded by wrk with the same connections and keys:
#   gateway     POST /v3/kv/put and /v3/kv/range on member 0's client port
#               (etcd 3.4's grpc-gateway: JSON over HTTP/1.1 into etcd's gRPC)
#   kv-etcd     kvserver --backend etcd, endpoints member 0 first (the one it
#               talks to while it answers), PUT/GET /v1/kv/KEY, GET /v1/kv
#   kv-embedded kvserver on its embedded store (in memory), the same requests
# Operations: put (a random key, 100-byte value), get (a random key), range
# (the 100 keys, with values, of a random prefix key00NN). Every round runs
# every target once per operation, the order of the targets reversed every
# other round; the summary gives medians over rounds and the ratio of
# kvserver-on-etcd's latency to the gateway's.
#
# Environment (default):
#   ROUNDS (2)             paired rounds
#   DURATION (5s)          wrk -d per run
#   CONNECTIONS (16)       wrk -c: moderate, so latency is not all queueing
#   WRK_THREADS (2)        wrk -t
#   KV_WORKERS (2)         kvserver --workers
#   KEYS (10000)           keys preloaded through each kvserver
#   VALUE_BYTES (100)      bytes per value
#   RUST_LOG (info,kvserver::request=warn)  kvserver log levels: no line
#                          per request, as etcd logs none
#   CARGO_TARGET_DIR, SKIP_BUILD, KEEP_TMP: as bench/http.sh
# Needs etcd (Debian: etcd-server), wrk and curl; installs missing ones.

bench_name=etcd.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rounds=${ROUNDS:-2}
duration=${DURATION:-5s}
connections=${CONNECTIONS:-16}
wrk_threads=${WRK_THREADS:-2}
kv_workers=${KV_WORKERS:-2}
keys=${KEYS:-10000}
value_bytes=${VALUE_BYTES:-100}
export RUST_LOG=${RUST_LOG:-info,kvserver::request=warn}

install_missing etcd:etcd-server wrk curl
echo "machine: $(nproc) cores; $(uptime)"
print_revision
echo "etcd: $(etcd --version | head -1); wrk -t$wrk_threads -c$connections -d$duration; $rounds rounds; keys $keys, values of $value_bytes bytes"

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    echo "building kvserver (release, --features etcd) into $target_dir"
    (cd "$repo" && CARGO_TARGET_DIR="$target_dir" cargo build --release -q -p kvserver --features etcd)
fi
[[ -x $kvserver ]] || fail "no kvserver binary at $kvserver"

# --- etcd: 3 members, etcd's default timing, data in $tmp --------------------
client_ports=() peer_ports=()
for i in 0 1 2; do
    client_ports+=("$(free_port)")
    peer_ports+=("$(free_port)")
done
initial=""
for i in 0 1 2; do initial+="${initial:+,}m$i=http://127.0.0.1:${peer_ports[$i]}"; done
endpoints=""
for i in 0 1 2; do
    client="http://127.0.0.1:${client_ports[$i]}"
    endpoints+="${endpoints:+,}$client"
    etcd --name "m$i" --data-dir "$tmp/m$i" \
        --listen-client-urls "$client" --advertise-client-urls "$client" \
        --listen-peer-urls "http://127.0.0.1:${peer_ports[$i]}" \
        --initial-advertise-peer-urls "http://127.0.0.1:${peer_ports[$i]}" \
        --initial-cluster "$initial" --initial-cluster-state new \
        --log-level warn 2>"$tmp/m$i.log" &
    pids+=("$!")
done
etcd_pids="${pids[*]}"
gateway="http://127.0.0.1:${client_ports[0]}"
wait_until 200 curl -fsS "$gateway/health" || fail "etcd did not start"
wait_until 200 curl -fsS -X POST -d '{"key":"AA=="}' "$gateway/v3/kv/range" || fail "etcd has no leader"
echo "etcd: 3 members, client URLs $endpoints; the gateway and kvserver use member 0 ($gateway)"

# --- the two kvservers -------------------------------------------------------
start_kv() { # start_kv NAME FLAGS...
    local name=$1
    shift
    "$kvserver" --addr 127.0.0.1:0 --workers "$kv_workers" "$@" 2>"$tmp/$name.log" &
    pids+=("$!")
    eval "${name}_pid=$!"
    wait_until 100 grep -q 'listening on http://' "$tmp/$name.log" ||
        { cat "$tmp/$name.log" >&2; fail "$name did not start"; }
    local url
    url=$(kv_url_from "$tmp/$name.log")
    wait_until 100 curl -fsS "$url/readyz" || fail "$name at $url is not ready"
    eval "${name}_url=$url"
    echo "$name: pid $! at $url ($*)"
}
start_kv kv_etcd --backend etcd --etcd-endpoints "$endpoints"
start_kv kv_embedded

preload() { # preload URL
    wrk -t1 -c"$connections" -d120s -s "$lua/preload.lua" "$1" \
        -- "keys=$keys" "value_bytes=$value_bytes" >"$tmp/preload.out" 2>&1 &
    local wrk_pid=$! count=0
    pids+=("$wrk_pid")
    while alive "$wrk_pid"; do
        count=$(curl -fsS "$1/v1/info" | grep -o '"keys":[0-9]*' | cut -d: -f2 || echo 0)
        ((count >= keys)) && break
        sleep 0.5
    done
    if ours "$wrk_pid"; then kill -INT "$wrk_pid" 2>/dev/null || true; fi
    wait "$wrk_pid" || true
    unset 'pids[-1]'
    ((count >= keys)) || fail "preload of $1: $count keys"
    echo "preloaded $count keys through $1"
}
preload "$kv_etcd_url"
preload "$kv_embedded_url"

# --- the rounds -----------------------------------------------------------------
# run_one TARGET OP: one wrk run; appends "TARGET|OP|rps|p50|p99|non2xx|errors".
run_one() {
    local target=$1 op=$2 url api server
    case $target in
        gateway) url=$gateway api=gateway server=$etcd_pids ;;
        kv-etcd) url=$kv_etcd_url api=v1 server="$kv_etcd_pid $etcd_pids" ;;
        kv-embedded) url=$kv_embedded_url api=v1 server=$kv_embedded_pid ;;
    esac
    wrk -t"$wrk_threads" -c"$connections" -d"$duration" --latency -s "$lua/cluster.lua" "$url" \
        -- "api=$api" "op=$op" "keys=$keys" "value_bytes=$value_bytes" >"$tmp/wrk.out"
    read_wrk_result "$target $op"
    echo "$target|$op|$(wrk_field rps)|$(wrk_field p50_ms)|$(wrk_field p99_ms)|$(wrk_field non_2xx)|$(wrk_field socket_errors)" |
        tee -a "$tmp/results"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
targets=(gateway kv-etcd kv-embedded)
for ((round = 1; round <= rounds; round++)); do
    order=("${targets[@]}")
    ((round % 2 == 0)) && order=(kv-embedded kv-etcd gateway)
    echo "=== round $round: ${order[*]}"
    for op in put get range; do
        for target in "${order[@]}"; do run_one "$target" "$op"; done
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "=== summary: medians over $rounds rounds; wrk -t$wrk_threads -c$connections -d$duration"
echo "load average (1/5/15 min) before: $load_before, after: $load_after"
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { awk -F'|' -v t="$1" -v o="$2" -v c="$3" '$1 == t && $2 == o { print $c }' "$tmp/results" | median; }
printf '| %-5s | %-11s | %8s | %8s | %8s | %7s |\n' op target "req/s" "p50 ms" "p99 ms" "non-2xx"
printf '| %-5s | %-11s | %8s | %8s | %8s | %7s |\n' ----- ----------- -------- -------- -------- -------
for op in put get range; do
    for target in "${targets[@]}"; do
        printf '| %-5s | %-11s | %8s | %8s | %8s | %7s |\n' "$op" "$target" \
            "$(field "$target" "$op" 3)" "$(field "$target" "$op" 4)" "$(field "$target" "$op" 5)" "$(field "$target" "$op" 6)"
    done
done
echo
for op in put get range; do
    awk -v op="$op" -v k50="$(field kv-etcd "$op" 4)" -v g50="$(field gateway "$op" 4)" \
        -v k99="$(field kv-etcd "$op" 5)" -v g99="$(field gateway "$op" 5)" 'BEGIN {
        verdict = (k50 / g50 < 1.2) ? "met" : "MISSED"
        printf "%s: kvserver-on-etcd latency / gateway: p50 %.2fx, p99 %.2fx (goal p50 < 1.20x: %s)\n", op, k50 / g50, k99 / g99, verdict
    }'
done
