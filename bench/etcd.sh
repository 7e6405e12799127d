#!/usr/bin/env bash
# kvserver on a 3-member etcd cluster against etcd's own JSON gateway on the
# same cluster (what a client calling etcd directly pays), and against
# kvserver on its embedded store: PUT, GET and range, in paired rounds of
# the same run. Results: BENCHMARKS.md, "kvserver on etcd".
#
#   bench/etcd.sh                      # build (release, --features etcd), run
#   ROUNDS=3 DURATION=10s bench/etcd.sh
#   OTHER_KVSERVER=/path/to/another/kvserver OPS=put bench/etcd.sh
#
# Targets, each loaded by wrk with the same connections and keys:
#   gateway     POST /v3/kv/put and /v3/kv/range on member 0's client port
#               (etcd 3.4's grpc-gateway: JSON over HTTP/1.1 into etcd's gRPC)
#   gateway-txn (put only) POST /v3/kv/txn: the gateway doing the very Txn
#               kvserver sends for a PUT (compare lease = 0, put with
#               prev_kv, else get), so etcd's own cost of that Txn is
#               told apart from kvserver's tier
#   kv-etcd     kvserver --backend etcd, endpoints member 0 first (the one it
#               talks to while it answers), PUT/GET /v1/kv/KEY, GET /v1/kv
#   kv-other    (with OTHER_KVSERVER) another kvserver binary (an older
#               commit, an experiment), started the same way on the same
#               cluster: both in one run
#   kv-embedded kvserver on its embedded store (in memory), the same requests
# Operations: put (a random key, 100-byte value), get (a random key), range
# (the 100 keys, with values, of a random prefix key00NN); on request (OPS)
# also put-persist (PUT ?persist=true, an unconditional write without a
# deadline: what the gateway's plain put does, so gateway runs its put) and
# put-ttl (PUT ttl-KEY?ttl=60s, keys of their own: a lease, then the write;
# kvserver targets only).
# Every round runs
# every target once per operation, the order of the targets reversed every
# other round; the summary gives medians over rounds, the CPU time per
# request of the kvserver answering and of etcd's three members, and the
# ratio of kvserver-on-etcd's latency to the gateway's (for put also to
# gateway-txn's), as the median of the rounds' ratios.
#
# Environment (default):
#   ROUNDS (2)             paired rounds
#   OPS (put get range)    the operations run (also: put-persist put-ttl)
#   OTHER_KVSERVER (none)  a second kvserver binary on the cluster (kv-other)
#   EMBEDDED (1)           0: no kv-embedded target
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
read -ra ops <<<"${OPS:-put get range}"
other_kvserver=${OTHER_KVSERVER:-}
embedded=${EMBEDDED:-1}
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
[[ -z $other_kvserver || -x $other_kvserver ]] || fail "no kvserver binary at $other_kvserver"

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
etcd_pids=("${pids[@]}")
gateway="http://127.0.0.1:${client_ports[0]}"
wait_until 200 curl -fsS "$gateway/health" || fail "etcd did not start"
wait_until 200 curl -fsS -X POST -d '{"key":"AA=="}' "$gateway/v3/kv/range" || fail "etcd has no leader"
echo "etcd: 3 members, client URLs $endpoints; the gateway and kvserver use member 0 ($gateway)"

# --- the two kvservers -------------------------------------------------------
start_kv() { # start_kv NAME BINARY FLAGS...
    local name=$1 binary=$2
    shift 2
    "$binary" --addr 127.0.0.1:0 --workers "$kv_workers" "$@" 2>"$tmp/$name.log" &
    pids+=("$!")
    eval "${name}_pid=$!"
    wait_until 100 grep -q 'listening on http://' "$tmp/$name.log" ||
        { cat "$tmp/$name.log" >&2; fail "$name did not start"; }
    local url
    url=$(kv_url_from "$tmp/$name.log")
    wait_until 100 curl -fsS "$url/readyz" || fail "$name at $url is not ready"
    eval "${name}_url=$url"
    echo "$name: pid $! at $url ($binary $*)"
}
start_kv kv_etcd "$kvserver" --backend etcd --etcd-endpoints "$endpoints"
[[ -n $other_kvserver ]] && start_kv kv_other "$other_kvserver" --backend etcd --etcd-endpoints "$endpoints"
((embedded)) && start_kv kv_embedded "$kvserver"

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
# kv-other shares kv-etcd's keys in etcd.
preload "$kv_etcd_url"
((embedded)) && preload "$kv_embedded_url"

# --- the rounds -----------------------------------------------------------------
# cpu_ticks PID... (lib.sh): user + system CPU time of the processes.
tick_us=$((1000000 / clock_hz))

# run_one TARGET OP: one wrk run; appends
# "TARGET|OP|rps|p50|p99|non2xx|errors|kvserver CPU us/req|etcd CPU us/req".
run_one() {
    local target=$1 op=$2 url api lua_op=$2 kv_pid=""
    case $target in
        gateway) url=$gateway api=gateway lua_op=${op%-persist} ;;
        gateway-txn) url=$gateway api=gateway lua_op=txn ;;
        kv-etcd) url=$kv_etcd_url api=v1 kv_pid=$kv_etcd_pid ;;
        kv-other) url=$kv_other_url api=v1 kv_pid=$kv_other_pid ;;
        kv-embedded) url=$kv_embedded_url api=v1 kv_pid=$kv_embedded_pid ;;
    esac
    local kv_before=0 etcd_before
    [[ -n $kv_pid ]] && kv_before=$(cpu_ticks "$kv_pid")
    etcd_before=$(cpu_ticks "${etcd_pids[@]}")
    wrk -t"$wrk_threads" -c"$connections" -d"$duration" --latency -s "$lua/cluster.lua" "$url" \
        -- "api=$api" "op=$lua_op" "keys=$keys" "value_bytes=$value_bytes" >"$tmp/wrk.out"
    local kv_ticks=0 etcd_ticks
    [[ -n $kv_pid ]] && kv_ticks=$(($(cpu_ticks "$kv_pid") - kv_before))
    etcd_ticks=$(($(cpu_ticks "${etcd_pids[@]}") - etcd_before))
    read_wrk_result "$target $op"
    local requests kv_cpu=- etcd_cpu
    requests=$(wrk_field requests)
    [[ -n $kv_pid ]] && kv_cpu=$((kv_ticks * tick_us / requests))
    etcd_cpu=$((etcd_ticks * tick_us / requests))
    echo "$target|$op|$(wrk_field rps)|$(wrk_field p50_ms)|$(wrk_field p99_ms)|$(wrk_field non_2xx)|$(wrk_field socket_errors)|$kv_cpu|$etcd_cpu" |
        tee -a "$tmp/results"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# targets_of OP: the targets an operation runs on, in the first round's order.
targets_of() {
    local list=()
    [[ $1 != put-ttl ]] && list+=(gateway)
    [[ $1 == put ]] && list+=(gateway-txn)
    list+=(kv-etcd)
    [[ -n $other_kvserver ]] && list+=(kv-other)
    ((embedded)) && list+=(kv-embedded)
    echo "${list[*]}"
}
for ((round = 1; round <= rounds; round++)); do
    echo "=== round $round"
    for op in "${ops[@]}"; do
        read -ra order <<<"$(targets_of "$op")"
        if ((round % 2 == 0)); then
            for ((i = ${#order[@]} - 1; i >= 0; i--)); do run_one "${order[$i]}" "$op"; done
        else
            for target in "${order[@]}"; do run_one "$target" "$op"; done
        fi
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "=== summary: medians over $rounds rounds; wrk -t$wrk_threads -c$connections -d$duration"
echo "load average (1/5/15 min) before: $load_before, after: $load_after"
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { awk -F'|' -v t="$1" -v o="$2" -v c="$3" '$1 == t && $2 == o { print $c }' "$tmp/results" | median; }
# CPU: microseconds of CPU time per request, of the kvserver answering and
# of etcd's three members together (clock ticks of /proc/PID/stat).
printf '| %-5s | %-11s | %8s | %8s | %8s | %7s | %9s | %9s |\n' op target "req/s" "p50 ms" "p99 ms" "non-2xx" "kv CPU us" "etcd CPU us"
printf '| %-5s | %-11s | %8s | %8s | %8s | %7s | %9s | %9s |\n' ----- ----------- -------- -------- -------- ------- --------- ---------
for op in "${ops[@]}"; do
    for target in $(targets_of "$op"); do
        kv_cpu=-
        [[ $target == kv-* ]] && kv_cpu=$(field "$target" "$op" 8)
        printf '| %-5s | %-11s | %8s | %8s | %8s | %7s | %9s | %9s |\n' "$op" "$target" \
            "$(field "$target" "$op" 3)" "$(field "$target" "$op" 4)" "$(field "$target" "$op" 5)" "$(field "$target" "$op" 6)" \
            "$kv_cpu" "$(field "$target" "$op" 9)"
    done
done
echo
# paired OP TARGET REFERENCE COLUMN: TARGET's figure over REFERENCE's, one
# line per round (a target's Nth run of an operation is in round N).
paired() {
    paste -d' ' \
        <(awk -F'|' -v t="$2" -v o="$1" -v c="$4" '$1 == t && $2 == o { print $c }' "$tmp/results") \
        <(awk -F'|' -v t="$3" -v o="$1" -v c="$4" '$1 == t && $2 == o { print $c }' "$tmp/results") |
        awk '{ print $1 / $2 }'
}
# ratio OP TARGET REFERENCE LABEL [GOAL]: TARGET's latency over REFERENCE's,
# the median of the rounds' ratios: the load on a shared machine drifts
# between rounds, and both runs of a round see about the same.
ratio() {
    awk -v op="$1" -v label="$4" -v goal="${5:-0}" \
        -v r50="$(paired "$1" "$2" "$3" 4 | median)" -v r99="$(paired "$1" "$2" "$3" 5 | median)" 'BEGIN {
        printf "%s: %s: p50 %.2fx, p99 %.2fx", op, label, r50, r99
        if (goal) printf " (goal p50 < 1.20x: %s)", (r50 < 1.2) ? "met" : "MISSED"
        printf "\n"
    }'
}
echo "ratios: medians over the rounds of each round's ratio"
for op in "${ops[@]}"; do
    [[ $op != put-ttl ]] && ratio "$op" kv-etcd gateway "kvserver-on-etcd latency / gateway" goal
    if [[ $op == put ]]; then
        ratio put gateway-txn gateway "gateway's Txn / gateway's Put (etcd's own cost of the Txn)"
        ratio put kv-etcd gateway-txn "kvserver-on-etcd / gateway doing the same Txn (kvserver's tier)"
    fi
    if [[ -n $other_kvserver ]]; then
        [[ $op != put-ttl ]] && ratio "$op" kv-other gateway "kv-other latency / gateway"
        ratio "$op" kv-etcd kv-other "kv-etcd / kv-other"
    fi
done
