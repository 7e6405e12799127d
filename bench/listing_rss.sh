#!/usr/bin/env bash
# Memory of a /v1/kv listing with values=true: the server's peak resident
# memory (VmHWM) while a client pages through KEYS values of VALUE_BYTES
# each. A page stops at a byte budget (4 MiB of JSON, plus one item), so the
# peak should stay a few budgets above the data itself, whatever KEYS is;
# before the budget, 1000 values of 1 MiB made one 419 MB body and 1.57 GB
# of RSS per request.
#
#   bench/listing_rss.sh                      # build (release), 1000 x 1 MiB
#   KEYS=200 SKIP_BUILD=1 bench/listing_rss.sh
#
# Environment (default):
#   KEYS (1000)             values written
#   VALUE_BYTES (1048576)   bytes per value
#   LISTINGS (3)            full listings, one after the other
#   CARGO_TARGET_DIR        where cargo builds (default: target/)
#   KVSERVER                a kvserver binary to use instead of the release build
#   SKIP_BUILD (0)          1: use the binary already built
#   KEEP_TMP (0)            1: keep the temporary folder

bench_name=listing-rss
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

keys=${KEYS:-1000}
value_bytes=${VALUE_BYTES:-1048576}
listings=${LISTINGS:-3}
install_missing curl
if [[ -n ${KVSERVER:-} ]]; then
    kvserver=$KVSERVER
else
    build_kvserver
fi

port=$(free_port)
base="http://127.0.0.1:$port"
RUST_LOG=warn "$kvserver" --addr "127.0.0.1:$port" >"$tmp/server.log" 2>&1 &
pids+=($!)
server=$!
wait_until 100 curl -fsS "$base/readyz" || fail "the server did not start: $(cat "$tmp/server.log")"

kb() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$server/status"; }

head -c "$value_bytes" /dev/zero | tr '\0' 'v' >"$tmp/value"
echo "writing $keys values of $value_bytes bytes"
for ((n = 0; n < keys; n++)); do
    curl -fsS -o /dev/null -X PUT --data-binary @"$tmp/value" "$base/v1/kv/big/$(printf %06d "$n")"
done
rss_before=$(kb VmRSS)

largest=0
pages=0
for ((run = 0; run < listings; run++)); do
    cursor=""
    while :; do
        url="$base/v1/kv?values=true&limit=1000${cursor:+&cursor=$cursor}"
        curl -fsS -o "$tmp/page.json" "$url"
        size=$(stat -c %s "$tmp/page.json")
        ((size > largest)) && largest=$size
        pages=$((pages + 1))
        cursor=$(grep -o '"next":"[^"]*"' "$tmp/page.json" | cut -d'"' -f4 || true)
        [[ -n $cursor ]] || break
    done
done
peak=$(kb VmHWM)

data_mib=$((keys * value_bytes / 1048576))
echo "data:                  $data_mib MiB in $keys values"
echo "pages:                 $((pages / listings)) per listing, largest $((largest / 1048576)) MiB"
echo "RSS before listing:    $((rss_before / 1024)) MiB"
echo "peak RSS (VmHWM):      $((peak / 1024)) MiB"
echo "RESULT listing_rss data_mib=$data_mib pages=$((pages / listings)) largest_page_bytes=$largest rss_before_kb=$rss_before peak_kb=$peak growth_kb=$((peak - rss_before))"
