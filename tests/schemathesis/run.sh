#!/usr/bin/env bash
# Fuzzes a real kvserver against its own OpenAPI document with schemathesis:
# every response must be no 5xx, have a documented status, content type and
# headers, and match its schema. Exits non-zero on any failure.
#
# Usage: tests/schemathesis/run.sh
# Environment:
#   CARGO_TARGET_DIR            where cargo builds (default: target/)
#   SCHEMATHESIS_MAX_EXAMPLES   test cases per operation and phase (default 100)
#   SCHEMATHESIS_SEED           generation seed (default fixed, so CI runs are
#                               repeatable; set another to explore)
set -euo pipefail
cd "$(dirname "$0")/../.."

# 4.32.5 runs on Python 3.11; newer releases may need a newer Python.
SCHEMATHESIS_VERSION=4.32.5
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
seed="${SCHEMATHESIS_SEED:-20261128}"
target_dir="${CARGO_TARGET_DIR:-target}"
venv="$target_dir/schemathesis-venv"

# Its own virtualenv, so neither the machine's packages nor another
# project's pins get in the way.
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
    echo "== installing schemathesis $SCHEMATHESIS_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION"
fi

echo "== building kvserver"
cargo build --quiet -p kvserver --bin kvserver
server="$target_dir/debug/kvserver"

work="$(mktemp -d)"
log="$work/kvserver.log"
pid=""
stop_server() {
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        wait "$pid" || true
    fi
    rm -rf "$work"
}
trap stop_server EXIT

# Port 0: the kernel picks a free port, and the server logs which. A data
# directory, so the durable write path is what gets fuzzed.
RUST_LOG="${RUST_LOG:-warn,kvserver=info}" "$server" --addr 127.0.0.1:0 --workers 2 \
    --data-dir "$work/data" >"$log" 2>&1 &
pid=$!

base=""
for _ in $(seq 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "kvserver exited before listening:" >&2
        cat "$log" >&2
        exit 1
    fi
    base="$(grep -o 'listening on http://[0-9.:]*' "$log" | head -n1 | sed 's/^listening on //')" || true
    if [[ -n "$base" ]] &&
        python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
            "$base/readyz" 2>/dev/null; then
        break
    fi
    base=""
    sleep 0.1
done
if [[ -z "$base" ]]; then
    echo "kvserver did not become ready within 30 s:" >&2
    cat "$log" >&2
    exit 1
fi
echo "== kvserver ready at $base (pid $pid)"

echo "== schemathesis $SCHEMATHESIS_VERSION: $max_examples examples per operation, seed $seed"
status=0
# GET /v1/watch is left out: a 200 there is an event stream that stays open
# by design, which schemathesis would report as a timeout (crates/kvserver
# tests/watch.rs checks it instead).
"$venv/bin/schemathesis" run "$base/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --max-examples "$max_examples" \
    --seed "$seed" \
    --exclude-operation-id watch \
    --workers 2 \
    --request-timeout 10 \
    --generation-database none \
    --no-color \
    || status=$?

# Stop by PID and expect the graceful shutdown the product promises.
kill -TERM "$pid"
server_status=0
wait "$pid" || server_status=$?
pid=""
if [[ "$status" -ne 0 ]]; then
    echo "schemathesis found failures (exit $status); server log tail:" >&2
    tail -n 20 "$log" >&2
    exit "$status"
fi
if [[ "$server_status" -ne 0 ]]; then
    echo "kvserver exited with $server_status after SIGTERM:" >&2
    tail -n 20 "$log" >&2
    exit 1
fi
echo "== schemathesis: no failures"
